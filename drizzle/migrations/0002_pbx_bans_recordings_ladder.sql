CREATE TABLE `sip_bans` (
	`address` text PRIMARY KEY NOT NULL,
	`level` integer NOT NULL,
	`reason` text NOT NULL,
	`failures` integer DEFAULT 0 NOT NULL,
	`banned_at` integer NOT NULL,
	`until` integer NOT NULL,
	`lifted_at` integer,
	`lifted_by` text,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `relay_bans` (
	`address` text PRIMARY KEY NOT NULL,
	`level` integer DEFAULT 1 NOT NULL,
	`reason` text NOT NULL,
	`failures` integer DEFAULT 0 NOT NULL,
	`banned_at` integer NOT NULL,
	`until` integer NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `relay_recordings` (
	`id` text PRIMARY KEY NOT NULL,
	`call_id` text NOT NULL,
	`device_id` text,
	`trigger` text NOT NULL,
	`status` text DEFAULT 'recording' NOT NULL,
	`path` text,
	`content_type` text,
	`size_bytes` integer,
	`sha256` text,
	`duration_seconds` integer,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`confirmed_at` integer,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `relay_recordings_status_idx` ON `relay_recordings` (`status`);--> statement-breakpoint
ALTER TABLE `cdrs` ADD `hangup_by` text;--> statement-breakpoint
ALTER TABLE `cdrs` ADD `sip_ladder` text;
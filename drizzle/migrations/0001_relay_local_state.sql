CREATE TABLE `relay_devices` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text,
	`name` text NOT NULL,
	`extension` text NOT NULL,
	`sip_username` text NOT NULL,
	`ha1_md5` text NOT NULL,
	`ha1_sha256` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`dnd` integer DEFAULT false NOT NULL,
	`record_always` integer DEFAULT false NOT NULL,
	`outbound_policy` text NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `relay_devices_extension_unique` ON `relay_devices` (`extension`);--> statement-breakpoint
CREATE UNIQUE INDEX `relay_devices_sip_username_unique` ON `relay_devices` (`sip_username`);--> statement-breakpoint
CREATE TABLE `relay_registrations` (
	`id` text PRIMARY KEY NOT NULL,
	`device_id` text NOT NULL,
	`contact_uri` text NOT NULL,
	`source_address` text NOT NULL,
	`source_port` integer NOT NULL,
	`transport` text NOT NULL,
	`user_agent` text,
	`instance_id` text,
	`call_id` text,
	`cseq` integer,
	`expires_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`device_id`) REFERENCES `relay_devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `relay_registrations_device_contact_uq` ON `relay_registrations` (`device_id`,`contact_uri`);--> statement-breakpoint
CREATE INDEX `relay_registrations_expires_idx` ON `relay_registrations` (`expires_at`);--> statement-breakpoint
CREATE TABLE `relay_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);

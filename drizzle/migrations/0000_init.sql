CREATE TABLE `login_attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`scope` text NOT NULL,
	`subject` text NOT NULL,
	`succeeded` integer NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `login_attempts_scope_subject_at_idx` ON `login_attempts` (`scope`,`subject`,`at`);--> statement-breakpoint
CREATE TABLE `relay_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `relay_tokens_token_hash_unique` ON `relay_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`last_seen_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`ip` text,
	`user_agent` text,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `sessions_expires_idx` ON `sessions` (`expires_at`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`name` text NOT NULL,
	`role` text DEFAULT 'user' NOT NULL,
	`password_hash` text NOT NULL,
	`password_changed_at` integer NOT NULL,
	`dnd` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	CONSTRAINT "users_email_lowercase" CHECK("users"."email" = lower("users"."email")),
	CONSTRAINT "users_role_valid" CHECK("users"."role" in ('admin', 'user'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);--> statement-breakpoint
CREATE TABLE `cdrs` (
	`id` text PRIMARY KEY NOT NULL,
	`direction` text NOT NULL,
	`from_number` text NOT NULL,
	`to_number` text NOT NULL,
	`did_id` text,
	`device_id` text,
	`user_id` text,
	`status` text DEFAULT 'ringing' NOT NULL,
	`disposition` text,
	`reason` text,
	`rule_id` text,
	`started_at` integer NOT NULL,
	`answered_at` integer,
	`ended_at` integer,
	`duration_seconds` integer DEFAULT 0 NOT NULL,
	`spam_score` real,
	`twilio_call_sid` text,
	`relay_call_id` text,
	`sip_status` integer,
	`recording_id` text,
	`voicemail_id` text,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`rule_id`) REFERENCES `routing_rules`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`recording_id`) REFERENCES `recordings`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`voicemail_id`) REFERENCES `voicemails`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `cdrs_twilio_call_sid_unique` ON `cdrs` (`twilio_call_sid`);--> statement-breakpoint
CREATE UNIQUE INDEX `cdrs_relay_call_id_unique` ON `cdrs` (`relay_call_id`);--> statement-breakpoint
CREATE INDEX `cdrs_started_idx` ON `cdrs` (`started_at`);--> statement-breakpoint
CREATE INDEX `cdrs_user_started_idx` ON `cdrs` (`user_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cdrs_did_started_idx` ON `cdrs` (`did_id`,`started_at`);--> statement-breakpoint
CREATE INDEX `cdrs_from_idx` ON `cdrs` (`from_number`);--> statement-breakpoint
CREATE INDEX `cdrs_status_idx` ON `cdrs` (`status`);--> statement-breakpoint
CREATE TABLE `recordings` (
	`id` text PRIMARY KEY NOT NULL,
	`cdr_id` text,
	`device_id` text,
	`user_id` text,
	`trigger` text NOT NULL,
	`status` text DEFAULT 'recording' NOT NULL,
	`blob_key` text,
	`content_type` text,
	`size_bytes` integer,
	`duration_seconds` integer,
	`error` text,
	`relay_recording_id` text,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`cdr_id`) REFERENCES `cdrs`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `recordings_blob_key_unique` ON `recordings` (`blob_key`);--> statement-breakpoint
CREATE UNIQUE INDEX `recordings_relay_recording_id_unique` ON `recordings` (`relay_recording_id`);--> statement-breakpoint
CREATE INDEX `recordings_user_created_idx` ON `recordings` (`user_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `recordings_cdr_idx` ON `recordings` (`cdr_id`);--> statement-breakpoint
CREATE TABLE `voicemails` (
	`id` text PRIMARY KEY NOT NULL,
	`did_id` text,
	`user_id` text,
	`cdr_id` text,
	`from_number` text NOT NULL,
	`duration_seconds` integer NOT NULL,
	`audio_status` text DEFAULT 'pending' NOT NULL,
	`blob_key` text,
	`content_type` text,
	`size_bytes` integer,
	`transcript` text,
	`transcript_status` text DEFAULT 'pending' NOT NULL,
	`twilio_recording_sid` text,
	`twilio_call_sid` text,
	`twilio_deleted_at` integer,
	`read_at` integer,
	`deleted_at` integer,
	`received_at` integer NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`cdr_id`) REFERENCES `cdrs`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `voicemails_blob_key_unique` ON `voicemails` (`blob_key`);--> statement-breakpoint
CREATE UNIQUE INDEX `voicemails_twilio_recording_sid_unique` ON `voicemails` (`twilio_recording_sid`);--> statement-breakpoint
CREATE INDEX `voicemails_user_received_idx` ON `voicemails` (`user_id`,`received_at`);--> statement-breakpoint
CREATE INDEX `voicemails_did_received_idx` ON `voicemails` (`did_id`,`received_at`);--> statement-breakpoint
CREATE TABLE `contact_numbers` (
	`id` text PRIMARY KEY NOT NULL,
	`contact_id` text NOT NULL,
	`e164` text NOT NULL,
	`label` text DEFAULT '' NOT NULL,
	FOREIGN KEY (`contact_id`) REFERENCES `contacts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contact_numbers_contact_e164_uq` ON `contact_numbers` (`contact_id`,`e164`);--> statement-breakpoint
CREATE INDEX `contact_numbers_e164_idx` ON `contact_numbers` (`e164`);--> statement-breakpoint
CREATE TABLE `contacts` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_user_id` text,
	`name` text NOT NULL,
	`note` text DEFAULT '' NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`owner_user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `contacts_owner_idx` ON `contacts` (`owner_user_id`);--> statement-breakpoint
CREATE TABLE `devices` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`name` text NOT NULL,
	`extension` text NOT NULL,
	`sip_username` text NOT NULL,
	`ha1_md5` text NOT NULL,
	`ha1_sha256` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`record_always` integer DEFAULT false NOT NULL,
	`outbound_policy` text NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "devices_extension_digits" CHECK("devices"."extension" glob '[0-9]*' and "devices"."extension" not glob '*[^0-9]*')
);
--> statement-breakpoint
CREATE UNIQUE INDEX `devices_extension_unique` ON `devices` (`extension`);--> statement-breakpoint
CREATE UNIQUE INDEX `devices_sip_username_unique` ON `devices` (`sip_username`);--> statement-breakpoint
CREATE INDEX `devices_user_idx` ON `devices` (`user_id`);--> statement-breakpoint
CREATE TABLE `holidays` (
	`id` text PRIMARY KEY NOT NULL,
	`date` text NOT NULL,
	`name` text NOT NULL,
	`recurring` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `holidays_date_uq` ON `holidays` (`date`);--> statement-breakpoint
CREATE TABLE `auto_replies` (
	`id` text PRIMARY KEY NOT NULL,
	`did_id` text NOT NULL,
	`trigger` text NOT NULL,
	`keyword` text,
	`text` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`priority` integer DEFAULT 100 NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `auto_replies_did_idx` ON `auto_replies` (`did_id`,`priority`);--> statement-breakpoint
CREATE TABLE `auto_reply_ledger` (
	`did_id` text NOT NULL,
	`sender` text NOT NULL,
	`last_sent_at` integer NOT NULL,
	PRIMARY KEY(`did_id`, `sender`),
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `message_media` (
	`id` text PRIMARY KEY NOT NULL,
	`message_id` text NOT NULL,
	`blob_key` text NOT NULL,
	`content_type` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`twilio_media_sid` text,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`message_id`) REFERENCES `messages`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `message_media_blob_key_unique` ON `message_media` (`blob_key`);--> statement-breakpoint
CREATE INDEX `message_media_message_idx` ON `message_media` (`message_id`);--> statement-breakpoint
CREATE TABLE `messages` (
	`id` text PRIMARY KEY NOT NULL,
	`direction` text NOT NULL,
	`did_id` text,
	`from_number` text NOT NULL,
	`to_number` text NOT NULL,
	`peer_number` text NOT NULL,
	`body` text DEFAULT '' NOT NULL,
	`status` text NOT NULL,
	`error_code` integer,
	`error_message` text,
	`twilio_message_sid` text,
	`sent_by_user_id` text,
	`is_auto_reply` integer DEFAULT false NOT NULL,
	`read_at` integer,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`sent_by_user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `messages_twilio_message_sid_unique` ON `messages` (`twilio_message_sid`);--> statement-breakpoint
CREATE INDEX `messages_conversation_idx` ON `messages` (`did_id`,`peer_number`,`created_at`);--> statement-breakpoint
CREATE INDEX `messages_created_idx` ON `messages` (`created_at`);--> statement-breakpoint
CREATE TABLE `blocklist` (
	`id` text PRIMARY KEY NOT NULL,
	`pattern` text NOT NULL,
	`match_type` text NOT NULL,
	`action` text DEFAULT 'reject' NOT NULL,
	`note` text DEFAULT '' NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `blocklist_pattern_match_type_uq` ON `blocklist` (`pattern`,`match_type`);--> statement-breakpoint
CREATE TABLE `dids` (
	`id` text PRIMARY KEY NOT NULL,
	`e164` text NOT NULL,
	`label` text DEFAULT '' NOT NULL,
	`twilio_sid` text,
	`default_targets` text NOT NULL,
	`dnd` integer DEFAULT false NOT NULL,
	`greeting` text,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dids_e164_unique` ON `dids` (`e164`);--> statement-breakpoint
CREATE UNIQUE INDEX `dids_twilio_sid_unique` ON `dids` (`twilio_sid`);--> statement-breakpoint
CREATE TABLE `routing_rules` (
	`id` text PRIMARY KEY NOT NULL,
	`did_id` text,
	`name` text NOT NULL,
	`priority` integer DEFAULT 100 NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`rule` text NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`did_id`) REFERENCES `dids`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `routing_rules_did_priority_idx` ON `routing_rules` (`did_id`,`priority`);--> statement-breakpoint
CREATE TABLE `device_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`device_id` text NOT NULL,
	`type` text NOT NULL,
	`severity` text DEFAULT 'info' NOT NULL,
	`data` text NOT NULL,
	`at` integer NOT NULL,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `device_events_device_at_idx` ON `device_events` (`device_id`,`at`);--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`payload` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer DEFAULT 10 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`locked_until` integer,
	`last_error` text,
	`idempotency_key` text NOT NULL,
	`completed_at` integer,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_idempotency_key_unique` ON `jobs` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `jobs_due_idx` ON `jobs` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `jobs_kind_idx` ON `jobs` (`kind`,`status`);--> statement-breakpoint
CREATE TABLE `notification_preferences` (
	`user_id` text NOT NULL,
	`event_type` text NOT NULL,
	`email` integer DEFAULT true NOT NULL,
	`gotify` integer DEFAULT false NOT NULL,
	`quiet_hours_start` text,
	`quiet_hours_end` text,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	PRIMARY KEY(`user_id`, `event_type`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "notification_preferences_quiet_hours_pair" CHECK(("notification_preferences"."quiet_hours_start" is null) = ("notification_preferences"."quiet_hours_end" is null))
);
--> statement-breakpoint
CREATE TABLE `processed_webhooks` (
	`kind` text NOT NULL,
	`sid` text NOT NULL,
	`processed_at` integer NOT NULL,
	PRIMARY KEY(`kind`, `sid`)
);
--> statement-breakpoint
CREATE INDEX `processed_webhooks_at_idx` ON `processed_webhooks` (`processed_at`);--> statement-breakpoint
CREATE TABLE `relay_outbox` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`idempotency_key` text NOT NULL,
	`event` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`acked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `relay_outbox_idempotency_key_unique` ON `relay_outbox` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `relay_outbox_pending_idx` ON `relay_outbox` (`acked_at`,`seq`);--> statement-breakpoint
CREATE TABLE `system_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`type` text NOT NULL,
	`severity` text DEFAULT 'info' NOT NULL,
	`data` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `system_events_at_idx` ON `system_events` (`at`);--> statement-breakpoint
CREATE INDEX `system_events_type_at_idx` ON `system_events` (`type`,`at`);--> statement-breakpoint
CREATE TABLE `provisioning_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`device_id` text NOT NULL,
	`format` text NOT NULL,
	`token_hash` text NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `provisioning_tokens_token_hash_unique` ON `provisioning_tokens` (`token_hash`);--> statement-breakpoint
CREATE INDEX `provisioning_tokens_device_idx` ON `provisioning_tokens` (`device_id`);--> statement-breakpoint
CREATE TABLE `registrations` (
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
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `registrations_device_contact_uq` ON `registrations` (`device_id`,`contact_uri`);--> statement-breakpoint
CREATE INDEX `registrations_expires_idx` ON `registrations` (`expires_at`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL
);

CREATE TABLE `revisions` (
	`name` text PRIMARY KEY NOT NULL,
	`revision` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
INSERT INTO `revisions` (`name`, `revision`) VALUES ('routing', 0) ON CONFLICT DO NOTHING;
--> statement-breakpoint
CREATE TRIGGER `blocklist_insert_bumps_routing` AFTER INSERT ON `blocklist` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `blocklist_update_bumps_routing` AFTER UPDATE ON `blocklist` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `blocklist_delete_bumps_routing` AFTER DELETE ON `blocklist` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `routing_rules_insert_bumps_routing` AFTER INSERT ON `routing_rules` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `routing_rules_update_bumps_routing` AFTER UPDATE ON `routing_rules` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `routing_rules_delete_bumps_routing` AFTER DELETE ON `routing_rules` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `holidays_insert_bumps_routing` AFTER INSERT ON `holidays` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `holidays_update_bumps_routing` AFTER UPDATE ON `holidays` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `holidays_delete_bumps_routing` AFTER DELETE ON `holidays` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contacts_insert_bumps_routing` AFTER INSERT ON `contacts` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contacts_update_bumps_routing` AFTER UPDATE ON `contacts` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contacts_delete_bumps_routing` AFTER DELETE ON `contacts` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contact_numbers_insert_bumps_routing` AFTER INSERT ON `contact_numbers` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contact_numbers_update_bumps_routing` AFTER UPDATE ON `contact_numbers` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `contact_numbers_delete_bumps_routing` AFTER DELETE ON `contact_numbers` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `settings_insert_bumps_routing` AFTER INSERT ON `settings` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `settings_update_bumps_routing` AFTER UPDATE ON `settings` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;
--> statement-breakpoint
CREATE TRIGGER `settings_delete_bumps_routing` AFTER DELETE ON `settings` BEGIN UPDATE `revisions` SET `revision` = `revision` + 1 WHERE `name` = 'routing'; END;

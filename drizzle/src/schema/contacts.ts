// Address book: names for numbers, used by caller-ID rules ("caller is a contact"),
// call history and SMS conversations.
import { index, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./auth.ts";
import { createdAt, idColumn, updatedAt } from "./columns.ts";

export const contacts = sqliteTable(
  "contacts",
  {
    id: idColumn(),
    /** null = shared by the installation; otherwise a user's private contact. */
    ownerUserId: text("owner_user_id").references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    note: text("note").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("contacts_owner_idx").on(t.ownerUserId)],
);

/** The numbers of a contact; looked up by number for every inbound call. */
export const contactNumbers = sqliteTable(
  "contact_numbers",
  {
    id: idColumn(),
    contactId: text("contact_id")
      .notNull()
      .references(() => contacts.id, { onDelete: "cascade" }),
    e164: text("e164").notNull(),
    label: text("label").notNull().default(""),
  },
  (t) => [
    uniqueIndex("contact_numbers_contact_e164_uq").on(t.contactId, t.e164),
    index("contact_numbers_e164_idx").on(t.e164),
  ],
);

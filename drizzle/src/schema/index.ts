// Every table of the GoSIP database, for drizzle (`createDb`) and drizzle-kit.
export * from "./auth.ts";
export * from "./calls.ts";
export * from "./contacts.ts";
export * from "./devices.ts";
export * from "./holidays.ts";
export * from "./messaging.ts";
export * from "./numbers.ts";
export * from "./operations.ts";
export * from "./provisioning.ts";
export * from "./registrations.ts";
export * from "./relay-local.ts";
export * from "./settings.ts";

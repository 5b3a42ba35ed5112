// Every table of the GoSIP database, for drizzle (`createDb`) and drizzle-kit.
export * from "./auth.ts";
export * from "./devices.ts";
export * from "./numbers.ts";
export * from "./settings.ts";

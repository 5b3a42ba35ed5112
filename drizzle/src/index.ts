// @gosip/drizzle: the GoSIP data model (tables, JSON document schemas) shared by
// the edge and the relay.
export * from "./db.ts";
export * from "./dialplan/numbers.ts";
export * from "./dialplan/policy.ts";
export * from "./json/call-ladder.ts";
export * from "./json/common.ts";
export * from "./json/device.ts";
export * from "./json/did.ts";
export * from "./json/operations.ts";
export * from "./json/registry.ts";
export * from "./json/routing-rule.ts";
export * from "./json/settings.ts";
export * from "./json/time-windows.ts";
export * from "./json/versioned.ts";
export * from "./migrate.ts";
export type { BundledMigration } from "./migration-types.ts";
export * from "./schema/index.ts";
export * from "./sip-credentials.ts";
export * from "./sync/protocol.ts";
export * from "./zod.ts";

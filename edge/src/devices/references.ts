/**
 * Where devices are used as ring targets (DID defaults, ring rules). Those
 * references live in JSON documents without foreign keys, so deleting a device
 * (or its owner) checks here first instead of leaving rules that ring nobody.
 */
import { type Db, dids, routingRules } from "@gosip/drizzle";
import { sql } from "drizzle-orm";

export interface DeviceReference {
  kind: "did" | "rule";
  id: string;
  /** DID number or rule name, for the message the admin sees. */
  label: string;
}

/** Every DID and routing rule that names one of `deviceIds` as a target. */
export async function deviceReferences(db: Db, deviceIds: readonly string[]): Promise<DeviceReference[]> {
  if (deviceIds.length === 0) return [];
  const ids = JSON.stringify(deviceIds);
  const didRows = await db
    .select({ id: dids.id, label: dids.e164 })
    .from(dids)
    .where(
      sql`exists (select 1 from json_each(${dids.defaultTargets}, '$.deviceIds') t where t.value in (select value from json_each(${ids})))`,
    );
  const ruleRows = await db
    .select({ id: routingRules.id, label: routingRules.name })
    .from(routingRules)
    .where(
      sql`exists (select 1 from json_each(${routingRules.rule}, '$.action.deviceIds') t where t.value in (select value from json_each(${ids})))`,
    );
  return [
    ...didRows.map((r) => ({ kind: "did" as const, ...r })),
    ...ruleRows.map((r) => ({ kind: "rule" as const, ...r })),
  ];
}

/**
 * Checks of a routing rule that the document schema cannot make alone: the DID,
 * devices and contacts it names must exist, and caller-ID regexes must be safe
 * to run on every inbound call (the blocklist's ReDoS checks).
 */
import { contacts, type Db, devices, dids, type RoutingRule } from "@gosip/drizzle";
import { eq, inArray } from "drizzle-orm";
import { checkRegex } from "../blocklist/pattern.ts";

export interface RuleIssue {
  path: string;
  message: string;
}

async function missingIds(
  db: Db,
  table: typeof devices | typeof contacts,
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const found = await db
    .select({ id: table.id })
    .from(table)
    .where(inArray(table.id, [...ids]));
  const known = new Set(found.map((r) => r.id));
  return new Set(ids.filter((id) => !known.has(id)));
}

/** Problems with `rule` (and its DID) against the database; empty when it can be stored. */
export async function ruleReferenceIssues(
  db: Db,
  rule: RoutingRule,
  didId: string | null | undefined,
): Promise<RuleIssue[]> {
  const issues: RuleIssue[] = [];
  if (didId) {
    const [did] = await db.select({ id: dids.id }).from(dids).where(eq(dids.id, didId));
    if (!did) issues.push({ path: "didId", message: `no DID ${didId}` });
  }

  if (rule.action.type === "ring") {
    const missing = await missingIds(db, devices, rule.action.deviceIds);
    rule.action.deviceIds.forEach((id, i) => {
      if (missing.has(id)) issues.push({ path: `rule.action.deviceIds.${i}`, message: `no device ${id}` });
    });
  }

  for (const [i, condition] of rule.conditions.entries()) {
    if (condition.type !== "callerId") continue;
    const match = condition.match;
    if (match.by === "regex") {
      const problem = checkRegex(match.pattern);
      if (problem) issues.push({ path: `rule.conditions.${i}.match.pattern`, message: problem });
    } else if (match.by === "contacts" && match.contactIds) {
      const ids = match.contactIds;
      const missing = await missingIds(db, contacts, ids);
      ids.forEach((id, j) => {
        if (missing.has(id)) {
          issues.push({ path: `rule.conditions.${i}.match.contactIds.${j}`, message: `no contact ${id}` });
        }
      });
    }
  }
  return issues;
}

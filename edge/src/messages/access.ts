/**
 * Who may see which SMS conversations: a user sees the conversations of "their"
 * DIDs, the DIDs whose default ring targets include one of their devices; an
 * admin sees every conversation, including messages to numbers that are not (or
 * no longer) a DID. Everything else answers 404, never 403, so ids of other
 * people's messages reveal nothing.
 */
import { type Db, devices, dids, users } from "@gosip/drizzle";
import { eq, inArray, sql } from "drizzle-orm";
import type { AuthUser } from "../env.ts";

export interface DidRef {
  id: string;
  e164: string;
}

/** SQL true for DIDs that ring one of `userId`'s devices by default. */
function ringsDevicesOf(userId: string) {
  return sql`exists (select 1 from json_each(${dids.defaultTargets}, '$.deviceIds') t
    where t.value in (select ${devices.id} from ${devices} where ${devices.userId} = ${userId}))`;
}

/** The DIDs `me` may message from and read: all for an admin, else those ringing their devices. */
export async function visibleDids(db: Db, me: AuthUser): Promise<DidRef[]> {
  const query = db.select({ id: dids.id, e164: dids.e164 }).from(dids);
  return me.role === "admin"
    ? query.orderBy(dids.e164)
    : query.where(ringsDevicesOf(me.id)).orderBy(dids.e164);
}

/**
 * The users a DID's inbound messages are for: owners of its default devices, or
 * every admin when it rings nobody (or the message reached no DID).
 */
export async function recipientsOfDid(db: Db, didId: string | null): Promise<string[]> {
  if (didId) {
    const [did] = await db.select({ targets: dids.defaultTargets }).from(dids).where(eq(dids.id, didId));
    const deviceIds = did?.targets.deviceIds ?? [];
    if (deviceIds.length > 0) {
      const owners = await db
        .selectDistinct({ userId: devices.userId })
        .from(devices)
        .where(inArray(devices.id, deviceIds));
      if (owners.length > 0) return owners.map((o) => o.userId).sort();
    }
  }
  const admins = await db.select({ id: users.id }).from(users).where(eq(users.role, "admin"));
  return admins.map((a) => a.id).sort();
}

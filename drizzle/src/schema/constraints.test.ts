// What the database itself guarantees, on a real migrated libSQL file: cascades,
// unique keys the webhook/outbox idempotency relies on, CHECKs and typed JSON columns.
import { and, eq, sql } from "drizzle-orm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { computeDeviceHa1 } from "../sip-credentials.ts";
import { createTempDb, type TempDb } from "../test-support/temp-db.ts";
import {
  autoReplyLedger,
  cdrs,
  devices,
  dids,
  jobs,
  messages,
  processedWebhooks,
  registrations,
  relayDevices,
  relayRegistrations,
  routingRules,
  sessions,
  settings,
  users,
} from "./index.ts";

let t: TempDb;
beforeEach(async () => {
  t = await createTempDb();
});
afterEach(async () => {
  await t.close();
});

async function addUser(email = "ann@example.com") {
  const [user] = await t.db
    .insert(users)
    .values({ email, name: "Ann", role: "admin", passwordHash: "$argon2id$x" })
    .returning();
  if (!user) throw new Error("insert returned nothing");
  return user;
}

async function addDevice(userId: string, extension = "101", sipUsername = `u${extension}`) {
  const [device] = await t.db
    .insert(devices)
    .values({
      userId,
      name: "Desk",
      extension,
      sipUsername,
      ...computeDeviceHa1(sipUsername, "gosip", "secret123"),
    })
    .returning();
  if (!device) throw new Error("insert returned nothing");
  return device;
}

/** libSQL wraps SQLite errors; the constraint message is on the error or its cause. */
function constraintMessage(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e instanceof Error) {
    parts.push(e.message);
    e = e.cause;
  }
  return parts.join(" | ");
}

async function expectConstraint(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected the database to refuse the write").toBeInstanceOf(Error);
  expect(constraintMessage(err)).toMatch(pattern);
}

describe("users and sessions", () => {
  it("fills id and timestamps, and deleting a user logs out all their sessions", async () => {
    const user = await addUser();
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(user.createdAt).toBeInstanceOf(Date);
    expect(user.role).toBe("admin");
    const expiresAt = new Date(Date.now() + 86_400_000);
    await t.db.insert(sessions).values([
      { id: "a".repeat(64), userId: user.id, expiresAt },
      { id: "b".repeat(64), userId: user.id, expiresAt },
    ]);
    await t.db.delete(users).where(eq(users.id, user.id));
    expect(await t.db.select().from(sessions)).toEqual([]);
  });

  it("refuses a second account with the same email and an email that is not lowercased", async () => {
    await addUser("ann@example.com");
    await expectConstraint(addUser("ann@example.com"), /UNIQUE constraint failed: users\.email/);
    await expectConstraint(addUser("Bob@Example.com"), /CHECK constraint failed: users_email_lowercase/);
  });

  it("refuses a session for a user that does not exist", async () => {
    await expectConstraint(
      t.db.insert(sessions).values({ id: "c".repeat(64), userId: "nobody", expiresAt: new Date() }),
      /FOREIGN KEY constraint failed/,
    );
  });
});

describe("devices", () => {
  it("keeps extensions and SIP usernames unique and stores the outbound policy as typed JSON", async () => {
    const user = await addUser();
    const device = await addDevice(user.id, "101");
    expect(device.enabled).toBe(true);
    expect(device.recordAlways).toBe(false);
    expect(device.outboundPolicy).toEqual({
      v: 1,
      allowOutbound: true,
      allowedPrefixes: ["+1"],
      blockedPrefixes: [],
      blockPremiumRate: true,
    });
    await expectConstraint(
      addDevice(user.id, "101", "other"),
      /UNIQUE constraint failed: devices\.extension/,
    );
    await expectConstraint(
      addDevice(user.id, "102", "u101"),
      /UNIQUE constraint failed: devices\.sip_username/,
    );
    const raw = await t.client.execute("SELECT outbound_policy FROM devices");
    expect(JSON.parse(String(raw.rows[0]?.outbound_policy))).toMatchObject({ v: 1, blockPremiumRate: true });
  });

  it("moves updatedAt forward on every update", async () => {
    const user = await addUser();
    const device = await addDevice(user.id);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const [changed] = await t.db
      .update(devices)
      .set({ name: "Kitchen" })
      .where(eq(devices.id, device.id))
      .returning();
    expect(changed?.name).toBe("Kitchen");
    expect(changed?.updatedAt.getTime()).toBeGreaterThan(device.updatedAt.getTime());
    expect(changed?.createdAt.getTime()).toBe(device.createdAt.getTime());
  });

  it("refuses an extension that is not all digits", async () => {
    const user = await addUser();
    await expectConstraint(addDevice(user.id, "10a"), /CHECK constraint failed: devices_extension_digits/);
  });

  it("removing a user removes their devices and registrations but keeps call history", async () => {
    const user = await addUser();
    const device = await addDevice(user.id);
    await t.db.insert(registrations).values({
      deviceId: device.id,
      contactUri: "sip:u101@192.0.2.10:5062",
      sourceAddress: "198.51.100.7",
      sourcePort: 40000,
      transport: "udp",
      expiresAt: new Date(Date.now() + 120_000),
    });
    const [cdr] = await t.db
      .insert(cdrs)
      .values({
        direction: "outbound",
        fromNumber: "101",
        toNumber: "+15551230000",
        deviceId: device.id,
        userId: user.id,
        startedAt: new Date(),
      })
      .returning();
    await t.db.delete(users).where(eq(users.id, user.id));
    expect(await t.db.select().from(devices)).toEqual([]);
    expect(await t.db.select().from(registrations)).toEqual([]);
    const [kept] = await t.db.select().from(cdrs);
    expect(kept?.id).toBe(cdr?.id);
    expect(kept?.deviceId).toBeNull();
    expect(kept?.userId).toBeNull();
  });
});

describe("numbers and rules", () => {
  it("deleting a DID removes its rules but keeps global ones", async () => {
    const [did] = await t.db.insert(dids).values({ e164: "+15551234567", label: "Main" }).returning();
    if (!did) throw new Error("no did");
    expect(did.defaultTargets).toEqual({ v: 1, deviceIds: [] });
    expect(did.greeting).toBeNull();
    const rule = {
      v: 1 as const,
      conditions: [{ type: "default" as const }],
      action: { type: "voicemail" as const },
      record: false,
    };
    await t.db.insert(routingRules).values([
      { didId: did.id, name: "DID rule", rule },
      { didId: null, name: "Global rule", rule },
    ]);
    await t.db.delete(dids).where(eq(dids.id, did.id));
    const left = await t.db.select().from(routingRules);
    expect(left.map((r) => r.name)).toEqual(["Global rule"]);
    expect(left[0]?.rule).toEqual(rule);
  });

  it("refuses the same DID twice", async () => {
    await t.db.insert(dids).values({ e164: "+15551234567" });
    await expectConstraint(
      t.db.insert(dids).values({ e164: "+15551234567" }),
      /UNIQUE constraint failed: dids\.e164/,
    );
  });
});

describe("idempotency keys", () => {
  it("a duplicate Twilio webhook is detected by the insert itself", async () => {
    const first = await t.db
      .insert(processedWebhooks)
      .values({ kind: "sms", sid: "SM123" })
      .onConflictDoNothing()
      .returning();
    const second = await t.db
      .insert(processedWebhooks)
      .values({ kind: "sms", sid: "SM123" })
      .onConflictDoNothing()
      .returning();
    const otherKind = await t.db
      .insert(processedWebhooks)
      .values({ kind: "sms-status", sid: "SM123" })
      .onConflictDoNothing()
      .returning();
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(0);
    expect(otherKind).toHaveLength(1);
  });

  it("a MessageSid can be stored only once", async () => {
    const msg = {
      direction: "inbound" as const,
      fromNumber: "+15550001111",
      toNumber: "+15551234567",
      peerNumber: "+15550001111",
      body: "hi",
      status: "received" as const,
      twilioMessageSid: "SMabc",
    };
    await t.db.insert(messages).values(msg);
    await expectConstraint(
      t.db.insert(messages).values(msg),
      /UNIQUE constraint failed: messages\.twilio_message_sid/,
    );
  });

  it("enqueueing the same outbox job twice keeps one job", async () => {
    const job = {
      kind: "email.send",
      payload: { v: 1 as const, to: "ann@example.com" },
      idempotencyKey: "vm-1:email",
    };
    await t.db.insert(jobs).values(job).onConflictDoNothing();
    await t.db.insert(jobs).values(job).onConflictDoNothing();
    const rows = await t.db.select().from(jobs);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: "pending",
      attempts: 0,
      payload: { v: 1, to: "ann@example.com" },
    });
  });

  it("the auto-reply ledger lets one claim win per sender per 30 minutes", async () => {
    const [did] = await t.db.insert(dids).values({ e164: "+15551234567" }).returning();
    if (!did) throw new Error("no did");
    const windowMs = 30 * 60_000;
    const claim = async (now: Date) => {
      const rows = await t.db
        .insert(autoReplyLedger)
        .values({ didId: did.id, sender: "+15550001111", lastSentAt: now })
        .onConflictDoUpdate({
          target: [autoReplyLedger.didId, autoReplyLedger.sender],
          set: { lastSentAt: now },
          setWhere: sql`${autoReplyLedger.lastSentAt} <= ${now.getTime() - windowMs}`,
        })
        .returning();
      return rows.length === 1;
    };
    const t0 = new Date("2026-01-01T10:00:00Z");
    expect(await claim(t0)).toBe(true);
    expect(await claim(new Date(t0.getTime() + 5 * 60_000))).toBe(false);
    expect(await claim(new Date(t0.getTime() + 31 * 60_000))).toBe(true);
    const [row] = await t.db
      .select()
      .from(autoReplyLedger)
      .where(and(eq(autoReplyLedger.didId, did.id), eq(autoReplyLedger.sender, "+15550001111")));
    expect(row?.lastSentAt.getTime()).toBe(t0.getTime() + 31 * 60_000);
  });
});

describe("relay local state", () => {
  it("a device removed from the relay cache takes its registrations with it", async () => {
    const [device] = await t.db
      .insert(relayDevices)
      .values({
        id: "dev-1",
        name: "Desk",
        extension: "101",
        sipUsername: "u101",
        ...computeDeviceHa1("u101", "gosip", "pw123456"),
        outboundPolicy: {
          v: 1,
          allowOutbound: false,
          allowedPrefixes: [],
          blockedPrefixes: [],
          blockPremiumRate: true,
        },
      })
      .returning();
    if (!device) throw new Error("no device");
    await t.db.insert(relayRegistrations).values({
      deviceId: device.id,
      contactUri: "sip:u101@10.0.0.5:5060",
      sourceAddress: "10.0.0.5",
      sourcePort: 5060,
      transport: "udp",
      expiresAt: new Date(Date.now() + 60_000),
    });
    await t.db.delete(relayDevices).where(eq(relayDevices.id, device.id));
    expect(await t.db.select().from(relayRegistrations)).toEqual([]);
  });
});

describe("settings", () => {
  it("stores a JSON document per key and reads it back typed", async () => {
    await t.db.insert(settings).values({ key: "callScreening", value: { v: 1, spamThreshold: 0.5 } });
    const [row] = await t.db.select().from(settings).where(eq(settings.key, "callScreening"));
    expect(row?.value).toEqual({ v: 1, spamThreshold: 0.5 });
    expect(row?.updatedAt).toBeInstanceOf(Date);
  });
});

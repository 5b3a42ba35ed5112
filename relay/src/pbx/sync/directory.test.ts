// The device directory over a real libSQL file: snapshots and deltas are stored
// before they are applied, survive a restart, and tell the features what changed.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DirectoryChange } from "../context.ts";
import { LocalDirectory } from "./directory.ts";
import { captureLog, delta, device, settings, snapshot, type TempRelayDb, tempRelayDb } from "./fixtures.ts";

let tmp: TempRelayDb;
beforeEach(async () => {
  tmp = await tempRelayDb();
});
afterEach(async () => {
  await tmp.close();
});

/** A second process over the same file: what a relay restart sees. */
function reopen() {
  return tmp.reopen();
}

async function addRegistration(deviceId: string, contactUri: string): Promise<void> {
  await tmp.client.execute({
    sql: "INSERT INTO relay_registrations (id, device_id, contact_uri, source_address, source_port, transport, expires_at, last_seen_at) VALUES (?, ?, ?, '192.0.2.1', 5060, 'udp', ?, ?)",
    args: [crypto.randomUUID(), deviceId, contactUri, Date.now() + 60_000, Date.now()],
  });
}

async function registrationsOf(deviceId: string): Promise<number> {
  const rs = await tmp.client.execute({
    sql: "SELECT count(*) AS n FROM relay_registrations WHERE device_id = ?",
    args: [deviceId],
  });
  return Number(rs.rows[0]?.n);
}

describe("LocalDirectory", () => {
  it("starts empty on a fresh database: no settings, no version", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    expect(dir.all()).toEqual([]);
    expect(dir.settings()).toBeUndefined();
    expect(dir.configVersion()).toBeUndefined();
  });

  it("applies a snapshot then a delta, and a restarted relay finds both in its file", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    const changes: DirectoryChange[] = [];
    dir.onChange((c) => changes.push(c));
    const d1 = device(1, { callerIdE164: "+15550001111" });
    const d2 = device(2);
    await dir.applyConfig(
      snapshot(10, [d1, d2], { mailboxes: [{ deviceId: "dev-1", newMessages: 2, oldMessages: 5 }] }),
    );
    expect(dir.bySipUsername("phone1")).toEqual(d1);
    expect(dir.byExtension("102")).toEqual(d2);
    expect(changes).toEqual([{ upserted: [d1, d2], removed: [], settingsChanged: true }]);

    const d2dnd = { ...d2, dnd: true, extension: "202" };
    const d3 = device(3);
    const newSettings = { ...settings, defaultCountry: "GB" };
    await dir.applyConfig(
      delta(11, { upsertDevices: [d2dnd, d3], removeDevices: ["dev-1"], settings: newSettings }),
    );
    expect(changes[1]).toEqual({ upserted: [d2dnd, d3], removed: ["dev-1"], settingsChanged: true });
    expect(dir.byExtension("102")).toBeUndefined();
    expect(dir.byExtension("202")?.dnd).toBe(true);
    expect(dir.bySipUsername("phone1")).toBeUndefined();

    const restarted = await LocalDirectory.load(await reopen(), captureLog().log);
    expect(restarted.configVersion()).toBe(11);
    expect(restarted.settings()).toEqual(newSettings);
    expect([...restarted.all()].sort((a, b) => a.id.localeCompare(b.id))).toEqual([d2dnd, d3]);
    expect(restarted.byExtension("103")).toEqual(d3);
    expect(restarted.mailbox("dev-1")).toEqual({ deviceId: "dev-1", newMessages: 2, oldMessages: 5 });
  });

  it("keeps caller IDs (not a relay_devices column) across a restart", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    await dir.applyConfig(snapshot(1, [device(1, { callerIdE164: "+15550001111" }), device(2)]));
    const restarted = await LocalDirectory.load(await reopen(), captureLog().log);
    expect(restarted.byId("dev-1")?.callerIdE164).toBe("+15550001111");
    expect(restarted.byId("dev-2")?.callerIdE164).toBeNull();
  });

  it("a snapshot replaces everything: devices not in it go, with their registrations; the others keep theirs", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    await dir.applyConfig(snapshot(1, [device(1), device(2), device(3)]));
    await addRegistration("dev-1", "sip:phone1@192.0.2.1");
    await addRegistration("dev-2", "sip:phone2@192.0.2.2");
    const changes: DirectoryChange[] = [];
    dir.onChange((c) => changes.push(c));

    const d2 = { ...device(2), name: "Kitchen" };
    await dir.applyConfig(snapshot(2, [d2, device(3)]));
    // Only what changed is reported: a reconnect's snapshot of an unchanged config is quiet.
    expect(changes).toEqual([{ upserted: [d2], removed: ["dev-1"], settingsChanged: false }]);
    expect(await registrationsOf("dev-1")).toBe(0);
    expect(await registrationsOf("dev-2")).toBe(1);

    await dir.applyConfig(snapshot(3, [d2, device(3)]));
    expect(changes).toHaveLength(1);
    expect(dir.configVersion()).toBe(3);
  });

  it("two devices can swap extensions in one delta", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    await dir.applyConfig(snapshot(1, [device(1), device(2)]));
    await dir.applyConfig(
      delta(2, { upsertDevices: [device(1, { extension: "102" }), device(2, { extension: "101" })] }),
    );
    expect(dir.byExtension("101")?.id).toBe("dev-2");
    expect(dir.byExtension("102")?.id).toBe("dev-1");
    const restarted = await LocalDirectory.load(await reopen(), captureLog().log);
    expect(restarted.byExtension("101")?.id).toBe("dev-2");
  });

  it("a delta that collides with a device it does not mention changes nothing, in memory or on disk", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    await dir.applyConfig(snapshot(1, [device(1), device(2)]));
    await expect(
      dir.applyConfig(
        delta(2, { upsertDevices: [device(3, { extension: "101" })], removeDevices: ["dev-2"] }),
      ),
    ).rejects.toThrow(/UNIQUE/i);
    expect(dir.configVersion()).toBe(1);
    expect(dir.byId("dev-2")).toBeDefined();
    expect(dir.byId("dev-3")).toBeUndefined();
    const restarted = await LocalDirectory.load(await reopen(), captureLog().log);
    expect(restarted.configVersion()).toBe(1);
    expect(
      restarted
        .all()
        .map((d) => d.id)
        .sort(),
    ).toEqual(["dev-1", "dev-2"]);
    // The directory still takes the next message.
    await dir.applyConfig(delta(3, { removeDevices: ["dev-2"] }));
    expect(dir.byId("dev-2")).toBeUndefined();
  });

  it("stores mwi counts from the edge's command", async () => {
    const dir = await LocalDirectory.load(tmp.db, captureLog().log);
    await dir.applyConfig(snapshot(1, [device(1)]));
    await dir.applyMailboxes([{ deviceId: "dev-1", newMessages: 1, oldMessages: 0 }]);
    expect(dir.mailbox("dev-1")?.newMessages).toBe(1);
    const restarted = await LocalDirectory.load(await reopen(), captureLog().log);
    expect(restarted.mailbox("dev-1")).toEqual({ deviceId: "dev-1", newMessages: 1, oldMessages: 0 });
  });

  it("a listener that throws does not stop the change or the other listeners", async () => {
    const { log, text } = captureLog();
    const dir = await LocalDirectory.load(tmp.db, log);
    let heard = 0;
    dir.onChange(() => {
      throw new Error("feature bug");
    });
    dir.onChange(() => heard++);
    await dir.applyConfig(snapshot(1, [device(1)]));
    expect(heard).toBe(1);
    expect(text()).toMatch(/listener failed/);
  });
});

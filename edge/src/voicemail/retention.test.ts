// Voicemail retention: the daily run deletes voicemails older than retention.voicemailsDays
// like a user would (hidden, audio gone, Twilio removal queued), removes long-deleted rows
// for good, keeps everything when retention is off, and schedules the next day's run.
import { jobs, voicemails } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { runDueJobs } from "../jobs/runner.ts";
import { writeSetting } from "../settings/store.ts";
import { TestClock, type TestEdge, useAdminEdge } from "../test-support.ts";
import { makeWav, sid } from "./fake-twilio.test-support.ts";
import { applyRetention, scheduleRetention } from "./retention.ts";

const DAY = 86_400_000;
const clock = new TestClock(Date.UTC(2026, 2, 10, 12, 0, 0));
let t: TestEdge;
useAdminEdge(
  (edge) => {
    t = edge.t;
    clock.set(Date.UTC(2026, 2, 10, 12, 0, 0));
  },
  { clock },
);

async function voicemailAged(days: number, opts: { deletedDaysAgo?: number } = {}): Promise<string> {
  const id = crypto.randomUUID();
  const blobKey = `voicemails/${id}.wav`;
  await t.deps.blobs.put(blobKey, makeWav(0.5), { contentType: "audio/x-wav" });
  await t.db.insert(voicemails).values({
    id,
    fromNumber: "+15557654321",
    durationSeconds: 5,
    audioStatus: "stored",
    blobKey,
    twilioRecordingSid: sid("RE"),
    receivedAt: new Date(clock.now() - days * DAY),
    deletedAt: opts.deletedDaysAgo === undefined ? null : new Date(clock.now() - opts.deletedDaysAgo * DAY),
  });
  return id;
}

describe("voicemail retention", () => {
  it("keeps everything while retention is off (the default)", async () => {
    const ancient = await voicemailAged(4000);
    expect(await applyRetention(t.deps)).toEqual({ expired: 0, purged: 0 });
    const [row] = await t.db.select().from(voicemails).where(eq(voicemails.id, ancient));
    expect(row?.deletedAt).toBeNull();
    expect(await t.deps.blobs.head(`voicemails/${ancient}.wav`)).not.toBeNull();
  });

  it("deletes what is older than the period, purges long-deleted rows, and keeps the rest", async () => {
    await writeSetting(t.deps, "retention", { v: 1, voicemailsDays: 30 });
    const old = await voicemailAged(31);
    const recent = await voicemailAged(29);
    const longDeleted = await voicemailAged(100, { deletedDaysAgo: 31 });
    const justDeleted = await voicemailAged(100, { deletedDaysAgo: 2 });
    expect(await applyRetention(t.deps)).toEqual({ expired: 1, purged: 1 });

    const rows = new Map((await t.db.select().from(voicemails)).map((r) => [r.id, r]));
    expect(rows.get(old)?.deletedAt).not.toBeNull();
    expect(await t.deps.blobs.head(`voicemails/${old}.wav`)).toBeNull();
    expect(rows.get(recent)?.deletedAt).toBeNull();
    expect(await t.deps.blobs.head(`voicemails/${recent}.wav`)).not.toBeNull();
    expect(rows.has(longDeleted)).toBe(false);
    expect(rows.has(justDeleted)).toBe(true);
    const queued = await t.db.select({ kind: jobs.kind, payload: jobs.payload }).from(jobs);
    expect(queued).toMatchObject([{ kind: "voicemail.twilio-delete", payload: { voicemailId: old } }]);
  });

  it("runs as a daily job that schedules the next day's run", async () => {
    await writeSetting(t.deps, "retention", { v: 1, voicemailsDays: 7 });
    const old = await voicemailAged(8);
    expect(await scheduleRetention(t.deps)).toEqual({ created: true });
    expect(await scheduleRetention(t.deps)).toEqual({ created: false });
    await runDueJobs(t.deps);
    expect((await t.db.select().from(voicemails).where(eq(voicemails.id, old)))[0]?.deletedAt).toBeNull();

    clock.set(Date.UTC(2026, 2, 11, 3, 0, 0));
    await runDueJobs(t.deps, { random: () => 0 });
    expect((await t.db.select().from(voicemails).where(eq(voicemails.id, old)))[0]?.deletedAt).not.toBeNull();
    const runs = await t.db
      .select({ key: jobs.idempotencyKey, status: jobs.status, at: jobs.nextAttemptAt })
      .from(jobs)
      .where(eq(jobs.kind, "voicemail.retention"));
    expect(runs).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: "voicemail.retention:2026-03-11", status: "succeeded" }),
        { key: "voicemail.retention:2026-03-12", status: "pending", at: new Date(Date.UTC(2026, 2, 12, 3)) },
      ]),
    );
  });
});

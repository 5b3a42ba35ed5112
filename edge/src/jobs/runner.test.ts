// The outbox runner over a real libSQL database with test handlers: outcomes,
// backoff and its cap, Retry-After, permanent failures, the ambiguous flag, lease
// recovery, unknown kinds, two runners at once, and the per-service breaker and alert.
import { jobs, systemEvents } from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { writeSetting } from "../settings/store.ts";
import { createTestEdge, createUser, TestClock, type TestEdge } from "../test-support.ts";
import { TwilioApiError, TwilioNetworkError } from "../twilio/rest.ts";
import { ServiceBreakers } from "./breaker.ts";
import { enqueueJob } from "./queue.ts";
import { AMBIGUOUS_PREFIX, BACKOFF_CAP_MS, type RunDueJobsOptions, runDueJobs } from "./runner.ts";
import { outboxStatus } from "./status.ts";
import { type JobContext, type JobHandler, PermanentJobError, RetryableJobError } from "./types.ts";

let t: TestEdge;
let clock: TestClock;

beforeEach(async () => {
  clock = new TestClock();
  t = await createTestEdge({ clock });
  return () => t.close();
});

/** A handler whose behaviour per call is scripted by the test; records every context it saw. */
function scripted(
  service: JobHandler["service"],
  behave: (ctx: JobContext, call: number) => void | Promise<void>,
  extra: Partial<JobHandler> = {},
): JobHandler & { calls: JobContext[] } {
  const calls: JobContext[] = [];
  return {
    service,
    ...extra,
    calls,
    run: async (ctx) => {
      calls.push(ctx);
      await behave(ctx, calls.length);
    },
  };
}

async function job(kind: string, key = `${kind}:${crypto.randomUUID()}`, maxAttempts?: number) {
  await enqueueJob(t.deps, {
    kind,
    payload: { v: 1, note: key },
    idempotencyKey: key,
    ...(maxAttempts !== undefined ? { maxAttempts } : {}),
  });
  const [row] = await t.db.select().from(jobs).where(eq(jobs.idempotencyKey, key));
  if (!row) throw new Error("job not stored");
  return row;
}

async function rowOf(id: string) {
  const [row] = await t.db.select().from(jobs).where(eq(jobs.id, id));
  if (!row) throw new Error("job vanished");
  return row;
}

/** Options with a breaker that never opens, for tests about one job's retries. */
function quiet(handlers: Record<string, JobHandler>, extra: RunDueJobsOptions = {}): RunDueJobsOptions {
  return { handlers, breakers: new ServiceBreakers({ openAfter: 1_000, alertAfter: 1_000 }), ...extra };
}

describe("a job's life", () => {
  it("runs a due job once and records success; a job due later waits", async () => {
    const h = scripted("internal", () => undefined);
    const now = await job("test.ok");
    await enqueueJob(t.deps, {
      kind: "test.ok",
      payload: { v: 1 },
      idempotencyKey: "later",
      runAt: new Date(clock.now() + 60_000),
    });
    expect(await runDueJobs(t.deps, quiet({ "test.ok": h }))).toEqual({
      ran: 1,
      succeeded: 1,
      retried: 0,
      dead: 0,
    });
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]?.job).toMatchObject({
      id: now.id,
      attempts: 0,
      payload: { v: 1, note: now.idempotencyKey },
    });
    expect(h.calls[0]?.ambiguous).toBe(false);
    const row = await rowOf(now.id);
    expect(row).toMatchObject({ status: "succeeded", attempts: 1, lastError: null, lockedUntil: null });
    expect(row.completedAt?.getTime()).toBe(clock.now());
    // Nothing more is due until the later job's time.
    expect((await runDueJobs(t.deps, quiet({ "test.ok": h }))).ran).toBe(0);
    clock.advance(60_000);
    expect((await runDueJobs(t.deps, quiet({ "test.ok": h }))).succeeded).toBe(1);
  });

  it("backs off exponentially with full jitter and caps the delay at 30 s", async () => {
    const h = scripted("twilio", () => {
      throw new RetryableJobError("503 from upstream");
    });
    const row = await job("test.flaky", "flaky", 20);
    const delays: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      const before = clock.now();
      expect(await runDueJobs(t.deps, quiet({ "test.flaky": h }, { random: () => 0.999_999 }))).toMatchObject(
        {
          ran: 1,
          retried: 1,
        },
      );
      const next = (await rowOf(row.id)).nextAttemptAt.getTime();
      delays.push(next - before);
      clock.set(next);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(Math.max(...delays)).toBe(BACKOFF_CAP_MS);
    expect(h.calls.map((c) => c.job.attempts)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("draws the jitter over [0, ceiling): half the random gives half the delay", async () => {
    const h = scripted("twilio", () => {
      throw new Error("boom");
    });
    const row = await job("test.flaky");
    await runDueJobs(t.deps, quiet({ "test.flaky": h }, { random: () => 0 }));
    expect((await rowOf(row.id)).nextAttemptAt.getTime()).toBe(clock.now());
    await runDueJobs(t.deps, quiet({ "test.flaky": h }, { random: () => 0.5 }));
    // Second failure: ceiling 2 s, half of it.
    expect((await rowOf(row.id)).nextAttemptAt.getTime()).toBe(clock.now() + 1000);
  });

  it("a handler's backoffBaseMs is the smallest delay (email: about 20 minutes)", async () => {
    const h = scripted(
      "email",
      () => {
        throw new RetryableJobError("SMTP 451");
      },
      { backoffBaseMs: 20 * 60_000 },
    );
    const row = await job("test.slow");
    await runDueJobs(t.deps, quiet({ "test.slow": h }, { random: () => 0 }));
    expect((await rowOf(row.id)).nextAttemptAt.getTime() - clock.now()).toBe(20 * 60_000);
    clock.advance(20 * 60_000);
    await runDueJobs(t.deps, quiet({ "test.slow": h }, { random: () => 0.5 }));
    expect((await rowOf(row.id)).nextAttemptAt.getTime() - clock.now()).toBe(20 * 60_000 + 1000);
  });

  it("honours Retry-After from a RetryableJobError and from Twilio's 429", async () => {
    let n = 0;
    const h = scripted("twilio", () => {
      n += 1;
      if (n === 1) throw new RetryableJobError("throttled", { retryAfterMs: 7_000 });
      throw new TwilioApiError(429, 20429, "Too Many Requests", undefined, 45_000);
    });
    const row = await job("test.throttled");
    await runDueJobs(t.deps, quiet({ "test.throttled": h }, { random: () => 0.999 }));
    expect((await rowOf(row.id)).nextAttemptAt.getTime() - clock.now()).toBe(7_000);
    clock.advance(7_000);
    await runDueJobs(t.deps, quiet({ "test.throttled": h }, { random: () => 0.999 }));
    // Longer than the 30 s cap: the server's word wins.
    expect((await rowOf(row.id)).nextAttemptAt.getTime() - clock.now()).toBe(45_000);
    expect((await rowOf(row.id)).status).toBe("pending");
  });

  it("gives up at once on a Twilio 4xx (not 429) or a PermanentJobError, and records it", async () => {
    const bad = scripted("twilio", () => {
      throw new TwilioApiError(
        400,
        21211,
        "The 'To' number is not a valid phone number.",
        undefined,
        undefined,
      );
    });
    const perm = scripted("internal", () => {
      throw new PermanentJobError("voicemail row is gone");
    });
    const a = await job("test.bad");
    const b = await job("test.perm");
    expect(await runDueJobs(t.deps, quiet({ "test.bad": bad, "test.perm": perm }))).toEqual({
      ran: 2,
      succeeded: 0,
      retried: 0,
      dead: 2,
    });
    expect(await rowOf(a.id)).toMatchObject({ status: "dead", attempts: 1 });
    expect((await rowOf(a.id)).lastError).toContain("not a valid phone number");
    expect((await rowOf(b.id)).lastError).toContain("voicemail row is gone");
    const events = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "job.dead"));
    expect(events.map((e) => e.data.kind).sort()).toEqual(["test.bad", "test.perm"]);
    clock.advance(3_600_000);
    expect((await runDueJobs(t.deps, quiet({ "test.bad": bad, "test.perm": perm }))).ran).toBe(0);
  });

  it("stops after maxAttempts: onGiveUp runs once; a silent handler leaves no event", async () => {
    const givenUp: string[] = [];
    const loud = scripted(
      "email",
      () => {
        throw new RetryableJobError("SMTP down");
      },
      { maxAttempts: 3, onGiveUp: async (_ctx, error) => void givenUp.push(error) },
    );
    const silent = scripted(
      "gotify",
      () => {
        throw new RetryableJobError("gotify down");
      },
      { maxAttempts: 3, silent: true },
    );
    const a = await job("test.loud");
    const b = await job("test.silent");
    const handlers = { "test.loud": loud, "test.silent": silent };
    for (let i = 0; i < 5; i += 1) {
      await runDueJobs(t.deps, quiet(handlers, { random: () => 0 }));
      clock.advance(1_000);
    }
    expect(loud.calls).toHaveLength(3);
    expect(silent.calls).toHaveLength(3);
    expect(await rowOf(a.id)).toMatchObject({ status: "dead", attempts: 3 });
    expect(await rowOf(b.id)).toMatchObject({ status: "dead", attempts: 3 });
    expect(givenUp).toHaveLength(1);
    expect(givenUp[0]).toContain("gave up after 3 attempts");
    expect(await t.db.select().from(systemEvents)).toEqual([]);
  });
});

describe("ambiguous attempts and leases", () => {
  it("an ambiguous failure reaches the next attempt (and every later one) as ctx.ambiguous", async () => {
    const h = scripted("twilio", (_ctx, call) => {
      if (call === 1) throw new TwilioNetworkError("Twilio did not answer within 10000 ms", true);
      if (call === 2) throw new TwilioApiError(503, undefined, "Service Unavailable", undefined, undefined);
    });
    const row = await job("test.sms");
    await runDueJobs(t.deps, quiet({ "test.sms": h }, { random: () => 0 }));
    expect((await rowOf(row.id)).lastError?.startsWith(AMBIGUOUS_PREFIX)).toBe(true);
    await runDueJobs(t.deps, quiet({ "test.sms": h }, { random: () => 0 }));
    await runDueJobs(t.deps, quiet({ "test.sms": h }, { random: () => 0 }));
    expect(h.calls.map((c) => c.ambiguous)).toEqual([false, true, true]);
    expect(await rowOf(row.id)).toMatchObject({ status: "succeeded", lastError: null });
  });

  it("a connection refused before sending is not ambiguous", async () => {
    const h = scripted("twilio", (_ctx, call) => {
      if (call === 1) throw new TwilioNetworkError("Twilio unreachable (ECONNREFUSED)", false);
    });
    await job("test.sms");
    await runDueJobs(t.deps, quiet({ "test.sms": h }, { random: () => 0 }));
    await runDueJobs(t.deps, quiet({ "test.sms": h }, { random: () => 0 }));
    expect(h.calls.map((c) => c.ambiguous)).toEqual([false, false]);
  });

  it("a crashed runner's job is picked up again once its lease expires, flagged ambiguous", async () => {
    const h = scripted("twilio", () => undefined);
    const row = await job("test.sms");
    // A runner claimed it and died: status running with a lease 2 minutes out.
    await t.db
      .update(jobs)
      .set({ status: "running", attempts: 1, lockedUntil: new Date(clock.now() + 120_000) })
      .where(eq(jobs.id, row.id));
    expect((await runDueJobs(t.deps, quiet({ "test.sms": h }))).ran).toBe(0);
    clock.advance(120_001);
    expect(await runDueJobs(t.deps, quiet({ "test.sms": h }))).toMatchObject({ ran: 1, succeeded: 1 });
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]?.ambiguous).toBe(true);
    expect(h.calls[0]?.job.attempts).toBe(1);
    expect(await rowOf(row.id)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("an attempt that outlives its lease does not overwrite the runner that took over", async () => {
    let release: () => void = () => undefined;
    const slow = scripted("twilio", (_ctx, call) =>
      call === 1 ? new Promise<void>((resolve) => (release = resolve)) : undefined,
    );
    const row = await job("test.slow");
    const first = runDueJobs(t.deps, quiet({ "test.slow": slow }, { leaseMs: 60_000 }));
    await vi.waitFor(() => expect(slow.calls).toHaveLength(1));
    clock.advance(60_001);
    expect(await runDueJobs(t.deps, quiet({ "test.slow": slow }))).toMatchObject({ succeeded: 1 });
    release();
    await first;
    // The second runner's success stands; the late first attempt changed nothing.
    expect(await rowOf(row.id)).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(t.logs.some((l) => l.msg.includes("lease expired"))).toBe(true);
  });

  it("a hung attempt is abandoned after its timeout and counted ambiguous, so the outbox moves on", async () => {
    const hung = scripted("twilio", (_ctx, call) =>
      call === 1 ? new Promise<void>(() => undefined) : undefined,
    );
    const other = scripted("internal", () => undefined);
    const row = await job("test.hung");
    await job("test.other");
    const res = await runDueJobs(
      t.deps,
      quiet({ "test.hung": hung, "test.other": other }, { attemptTimeoutMs: 50, random: () => 0 }),
    );
    expect(res).toMatchObject({ ran: 2, retried: 1, succeeded: 1 });
    expect((await rowOf(row.id)).lastError).toMatch(/^ambiguous: .*did not finish within 50 ms/);
    await runDueJobs(t.deps, quiet({ "test.hung": hung }, { random: () => 0 }));
    expect(hung.calls.map((c) => c.ambiguous)).toEqual([false, true]);
    expect((await rowOf(row.id)).status).toBe("succeeded");
  });

  it("parks a job of an unknown kind as dead with a clear error, without running anything", async () => {
    const row = await job("nobody.handles.this");
    expect(await runDueJobs(t.deps, quiet({}))).toEqual({ ran: 1, succeeded: 0, retried: 0, dead: 1 });
    const parked = await rowOf(row.id);
    expect(parked.status).toBe("dead");
    expect(parked.lastError).toContain('unknown job kind "nobody.handles.this"');
    const [event] = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "job.dead"));
    expect(event?.data).toMatchObject({ kind: "nobody.handles.this", jobId: row.id });
  });

  it("two runners at once run every job exactly once", async () => {
    const runs = new Map<string, number>();
    const h = scripted("internal", async (ctx) => {
      runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 1));
    });
    for (let i = 0; i < 30; i += 1) await job("test.once");
    const [a, b] = await Promise.all([
      runDueJobs(t.deps, quiet({ "test.once": h })),
      runDueJobs(t.deps, quiet({ "test.once": h })),
    ]);
    expect((a?.ran ?? 0) + (b?.ran ?? 0)).toBe(30);
    expect(runs.size).toBe(30);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });
});

describe("circuit breaker and the degraded alert", () => {
  it("opens after 5 consecutive failures, waits, half-opens with one trial, closes on success", async () => {
    let failing = true;
    const h = scripted("twilio", () => {
      if (failing) throw new TwilioApiError(500, undefined, "Internal Server Error", undefined, undefined);
    });
    const breakers = new ServiceBreakers({ alertAfter: 1_000 });
    const handlers = { "test.twilio": h };
    for (let i = 0; i < 8; i += 1) await job("test.twilio");
    // Five calls fail; the breaker opens and the other three jobs wait: no call made.
    expect(await runDueJobs(t.deps, { handlers, breakers, random: () => 0 })).toMatchObject({
      ran: 5,
      retried: 5,
    });
    expect(h.calls).toHaveLength(5);
    expect(breakers.state("twilio", clock.now())).toBe("open");
    clock.advance(10_000);
    expect((await runDueJobs(t.deps, { handlers, breakers, random: () => 0 })).ran).toBe(0);
    expect(h.calls).toHaveLength(5);
    // After the 30 s cool-down: exactly one trial; it fails and the breaker opens for twice as long.
    clock.advance(20_000);
    expect((await runDueJobs(t.deps, { handlers, breakers, random: () => 0 })).ran).toBe(1);
    expect(h.calls).toHaveLength(6);
    clock.advance(59_000);
    expect((await runDueJobs(t.deps, { handlers, breakers, random: () => 0 })).ran).toBe(0);
    // The service is back: the next trial succeeds, the breaker closes, everything else runs.
    failing = false;
    clock.advance(1_000);
    const after = await runDueJobs(t.deps, { handlers, breakers, random: () => 0 });
    expect(after).toMatchObject({ ran: 8, succeeded: 8 });
    expect(breakers.state("twilio", clock.now())).toBe("closed");
    const left = await t.db.select().from(jobs).where(eq(jobs.status, "pending"));
    expect(left).toEqual([]);
  });

  it("other services keep working while one breaker is open", async () => {
    const twilio = scripted("twilio", () => {
      throw new TwilioNetworkError("Twilio unreachable (ECONNREFUSED)", false);
    });
    const email = scripted("email", () => undefined);
    const breakers = new ServiceBreakers({ openAfter: 2, alertAfter: 1_000 });
    for (let i = 0; i < 4; i += 1) await job("test.twilio");
    await job("test.email");
    const res = await runDueJobs(t.deps, {
      handlers: { "test.twilio": twilio, "test.email": email },
      breakers,
      random: () => 0,
    });
    expect(twilio.calls).toHaveLength(2);
    expect(email.calls).toHaveLength(1);
    expect(res).toMatchObject({ ran: 3, succeeded: 1, retried: 2 });
  });

  it("alerts the admins exactly once after 3 consecutive failures, and records the recovery", async () => {
    const admin = await createUser(t, { role: "admin" });
    await createUser(t, { role: "user" });
    await writeSetting(t.deps, "email", {
      v: 1,
      provider: "postmark",
      from: "pbx@example.test",
      postmarkToken: "test-token",
    });
    let failing = true;
    const twilio = scripted("twilio", () => {
      if (failing) throw new TwilioApiError(503, undefined, "Service Unavailable", undefined, undefined);
    });
    const mail = scripted("email", () => undefined);
    const handlers = { "test.twilio": twilio, "email.send": mail };
    const breakers = new ServiceBreakers({ openAfter: 1_000 });
    for (let i = 0; i < 6; i += 1) await job("test.twilio");

    // Two failures: no alert yet.
    await runDueJobs(t.deps, { handlers, breakers, random: () => 0, maxJobs: 2 });
    expect(twilio.calls).toHaveLength(2);
    expect(await t.db.select().from(systemEvents)).toEqual([]);
    expect(mail.calls).toHaveLength(0);
    // The third consecutive failure raises it; the rest of the run adds none.
    await runDueJobs(t.deps, { handlers, breakers, random: () => 0 });
    expect(twilio.calls).toHaveLength(8);
    const degraded = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "twilio.degraded"));
    expect(degraded).toHaveLength(1);
    expect(degraded[0]?.severity).toBe("error");
    // One alert email, to the admin only, sent through the outbox in the same run.
    expect(mail.calls).toHaveLength(1);
    expect(mail.calls[0]?.job.payload).toMatchObject({ to: admin.email, type: "service_degraded" });

    // More failures in the same episode: no second alert.
    clock.advance(1_000);
    await runDueJobs(t.deps, { handlers, breakers, random: () => 0 });
    expect(
      await t.db.select().from(systemEvents).where(eq(systemEvents.type, "twilio.degraded")),
    ).toHaveLength(1);
    expect(mail.calls).toHaveLength(1);

    failing = false;
    clock.advance(1_000);
    await runDueJobs(t.deps, { handlers, breakers, random: () => 0 });
    const recovered = await t.db.select().from(systemEvents).where(eq(systemEvents.type, "twilio.recovered"));
    expect(recovered).toHaveLength(1);
  });

  it("two failures, a success, two failures: no alert (the failures were not consecutive)", async () => {
    const script = [true, true, false, true, true];
    const h = scripted("twilio", (_ctx, call) => {
      if (script[call - 1]) throw new RetryableJobError("503");
    });
    for (let i = 0; i < 5; i += 1) await job("test.twilio");
    await runDueJobs(t.deps, {
      handlers: { "test.twilio": h },
      breakers: new ServiceBreakers(),
      random: () => 0,
    });
    expect(h.calls).toHaveLength(5);
    expect(await t.db.select().from(systemEvents)).toEqual([]);
  });

  it("internal jobs have no breaker and no alert: one bad job does not hold back the others", async () => {
    const bad = scripted("internal", () => {
      throw new TypeError("cannot read properties of undefined");
    });
    const good = scripted("internal", () => undefined);
    const breakers = new ServiceBreakers();
    for (let i = 0; i < 6; i += 1) await job("test.bad");
    await job("test.good");
    const res = await runDueJobs(t.deps, {
      handlers: { "test.bad": bad, "test.good": good },
      breakers,
      random: () => 0,
    });
    expect(res).toMatchObject({ ran: 7, retried: 6, succeeded: 1 });
    expect(breakers.state("internal", clock.now())).toBe("closed");
    expect(await t.db.select().from(systemEvents)).toEqual([]);
  });

  it("reports each service's breaker for the health page", async () => {
    const h = scripted("gotify", () => {
      throw new RetryableJobError("down");
    });
    const breakers = new ServiceBreakers({ openAfter: 2 });
    for (let i = 0; i < 2; i += 1) await job("test.gotify");
    await runDueJobs(t.deps, { handlers: { "test.gotify": h }, breakers, random: () => 0 });
    expect(breakers.snapshot(clock.now())).toEqual([
      {
        service: "gotify",
        state: "open",
        consecutiveFailures: 2,
        openUntil: clock.now() + 30_000,
        degraded: false,
      },
    ]);
  });

  it("silent (Gotify) failures never raise the admin alert", async () => {
    const h = scripted(
      "gotify",
      () => {
        throw new RetryableJobError("gotify down");
      },
      { silent: true },
    );
    for (let i = 0; i < 4; i += 1) await job("test.gotify");
    await runDueJobs(t.deps, {
      handlers: { "test.gotify": h },
      breakers: new ServiceBreakers(),
      random: () => 0,
    });
    expect(h.calls).toHaveLength(4);
    expect(await t.db.select().from(systemEvents)).toEqual([]);
  });
});

describe("outboxStatus", () => {
  it("counts waiting, due and given-up work and shows the breakers", async () => {
    const failing = scripted("email", () => {
      throw new PermanentJobError("bad address");
    });
    await job("test.dead");
    await runDueJobs(t.deps, { handlers: { "test.dead": failing } });
    await job("test.waiting");
    await enqueueJob(t.deps, {
      kind: "test.waiting",
      payload: { v: 1 },
      idempotencyKey: "tomorrow",
      runAt: new Date(clock.now() + 86_400_000),
    });
    clock.advance(5_000);
    expect(await outboxStatus(t.deps)).toEqual({
      pending: 2,
      running: 0,
      due: 1,
      oldestDueMs: 5_000,
      deadLastDay: 1,
      services: [
        { service: "email", state: "closed", consecutiveFailures: 0, openUntil: null, degraded: false },
      ],
    });
  });
});

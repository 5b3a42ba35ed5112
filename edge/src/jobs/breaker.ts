/**
 * Per-service circuit breakers and the "degraded" alert of the outbox runner.
 *
 * After OPEN_AFTER consecutive failures of a service its breaker opens: its jobs
 * wait (no calls are made) for a cool-down, then one trial job runs (half-open);
 * a success closes the breaker, a failure opens it again for twice as long (up to
 * COOLDOWN_MAX_MS). Independently, ALERT_AFTER consecutive failures raise one admin
 * alert per episode, and the first success after it records "recovered".
 *
 * "internal" work (database-only jobs) has no breaker and no alert: its failures are
 * bugs or bad rows of one job, not an outage, and must not hold back the other jobs.
 *
 * The state lives in memory, one set per database handle (one per Node process,
 * per Workers isolate, per test edge). That is enough: the breaker only saves
 * pointless calls; the jobs themselves and their backoff are durable in the table.
 * A restart forgets an open breaker, costs at most OPEN_AFTER more failed calls,
 * and may alert once more for the same outage, which is acceptable for a PBX.
 */
import type { EdgeDeps } from "../platform/types.ts";
import type { JobService } from "./types.ts";

export const OPEN_AFTER = 5;
export const ALERT_AFTER = 3;
export const COOLDOWN_MS = 30_000;
export const COOLDOWN_MAX_MS = 5 * 60_000;

/** What a recorded outcome means for the alerts: a new degraded episode, its end, or nothing. */
export type BreakerTransition = "none" | "degraded" | "recovered";

/** "go": run it (for a half-open breaker: it is the trial); otherwise wait, until `until` when known. */
export type Admission = "go" | { until: number | undefined };

export type BreakerState = "closed" | "open" | "half-open";

interface ServiceState {
  state: BreakerState;
  consecutiveFailures: number;
  openUntil: number;
  cooldownMs: number;
  trialInFlight: boolean;
  alerted: boolean;
}

/** Services without a breaker or alert (see the module comment). */
const EXEMPT: ReadonlySet<JobService> = new Set(["internal"]);

/** One service's breaker as a dashboard shows it. */
export interface BreakerSnapshot {
  service: JobService;
  state: BreakerState;
  consecutiveFailures: number;
  /** While open: when the next trial may run (ms since the epoch). */
  openUntil: number | null;
  /** A degraded alert was raised and the service has not recovered since. */
  degraded: boolean;
}

export class ServiceBreakers {
  private readonly services = new Map<JobService, ServiceState>();

  constructor(
    private readonly options: {
      openAfter?: number;
      alertAfter?: number;
      cooldownMs?: number;
      cooldownMaxMs?: number;
    } = {},
  ) {}

  private get(service: JobService): ServiceState {
    let s = this.services.get(service);
    if (!s) {
      s = {
        state: "closed",
        consecutiveFailures: 0,
        openUntil: 0,
        cooldownMs: this.options.cooldownMs ?? COOLDOWN_MS,
        trialInFlight: false,
        alerted: false,
      };
      this.services.set(service, s);
    }
    return s;
  }

  /** The breaker's state as the dashboard would show it. */
  state(service: JobService, now: number): BreakerState {
    const s = this.get(service);
    if (s.state === "open" && now >= s.openUntil) return "half-open";
    return s.state;
  }

  /** Every service seen so far, for the health page. */
  snapshot(now: number): BreakerSnapshot[] {
    return [...this.services.entries()].map(([service, s]) => {
      const state = this.state(service, now);
      return {
        service,
        state,
        consecutiveFailures: s.consecutiveFailures,
        openUntil: state === "open" ? s.openUntil : null,
        degraded: s.alerted,
      };
    });
  }

  /** May a job of `service` run now? A "go" on a half-open breaker reserves the one trial. */
  admit(service: JobService, now: number): Admission {
    if (EXEMPT.has(service)) return "go";
    const s = this.get(service);
    if (s.state === "closed") return "go";
    if (s.state === "open") {
      if (now < s.openUntil) return { until: s.openUntil };
      s.state = "half-open";
      s.trialInFlight = false;
    }
    if (s.trialInFlight) return { until: undefined };
    s.trialInFlight = true;
    return "go";
  }

  /** The admitted job did not run after all (another runner claimed it): free the trial slot. */
  release(service: JobService): void {
    const s = this.get(service);
    if (s.state === "half-open") s.trialInFlight = false;
  }

  /** The service answered: the breaker closes and a degraded episode ends. */
  success(service: JobService, _now: number): BreakerTransition {
    if (EXEMPT.has(service)) return "none";
    const s = this.get(service);
    s.consecutiveFailures = 0;
    s.state = "closed";
    s.trialInFlight = false;
    s.cooldownMs = this.options.cooldownMs ?? COOLDOWN_MS;
    if (s.alerted) {
      s.alerted = false;
      return "recovered";
    }
    return "none";
  }

  /**
   * The service failed (5xx, 429, unreachable). `silent` failures (Gotify) open the
   * breaker like any other but never raise the admin alert.
   */
  failure(service: JobService, now: number, silent = false): BreakerTransition {
    if (EXEMPT.has(service)) return "none";
    const s = this.get(service);
    s.consecutiveFailures += 1;
    const cooldownMax = this.options.cooldownMaxMs ?? COOLDOWN_MAX_MS;
    if (s.state === "half-open") {
      s.cooldownMs = Math.min(cooldownMax, s.cooldownMs * 2);
      s.state = "open";
      s.openUntil = now + s.cooldownMs;
      s.trialInFlight = false;
    } else if (s.state === "closed" && s.consecutiveFailures >= (this.options.openAfter ?? OPEN_AFTER)) {
      s.state = "open";
      s.openUntil = now + s.cooldownMs;
    }
    if (!silent && !s.alerted && s.consecutiveFailures >= (this.options.alertAfter ?? ALERT_AFTER)) {
      s.alerted = true;
      return "degraded";
    }
    return "none";
  }

  /** The attempt failed for a reason that says nothing about the service (bad input, missing config). */
  neutral(service: JobService): BreakerTransition {
    this.release(service);
    return "none";
  }
}

const byDatabase = new WeakMap<object, ServiceBreakers>();

/** The breakers of this process/isolate (keyed by its database handle, so each test edge has its own). */
export function breakersFor(deps: Pick<EdgeDeps, "db">): ServiceBreakers {
  let b = byDatabase.get(deps.db);
  if (!b) {
    b = new ServiceBreakers();
    byDatabase.set(deps.db, b);
  }
  return b;
}

/**
 * Login throttling (SPEC §7): 5 failed logins within 15 minutes lock the
 * account, and separately the client IP, for 15 minutes from the 5th failure,
 * even for the right password. A success resets the account's count, not the
 * IP's (else one valid account would let an attacker keep guessing others).
 *
 * Every attempt is written as a failure *before* the password is checked and
 * only turned into a success afterwards, and each attempt decides using only
 * the attempts recorded before it (lower row id). So a burst of parallel
 * guesses is throttled like a sequence: at most 5 reach the password check.
 * Attempts refused while locked are not recorded, so hammering a locked
 * account does not extend its lock.
 */
import { loginAttempts } from "@gosip/drizzle";
import { and, desc, eq, inArray, lt } from "drizzle-orm";
import { AppError } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";

export const LOCKOUT_THRESHOLD = 5;
/** The failures must fall within this window to count towards a lock. */
export const LOCKOUT_WINDOW_MS = 15 * 60 * 1000;
export const LOCKOUT_DURATION_MS = 15 * 60 * 1000;
/** Attempts older than this are deleted (housekeeping). */
const ATTEMPT_RETENTION_MS = 24 * 60 * 60 * 1000;

type Scope = "account" | "ip";

/** An attempt admitted to the password check; settle it with `attemptSucceeded`. */
export interface LoginAttempt {
  account: { id: number; subject: string };
  ip: { id: number; subject: string };
}

/**
 * Record an attempt for `email` from `ip` and refuse it while either is locked:
 * 423 locked for the account, 429 rate_limited for the IP, with Retry-After.
 */
export async function beginLoginAttempt(
  deps: EdgeDeps,
  email: string,
  clientIp: string,
): Promise<LoginAttempt> {
  const ip = ipSubject(clientIp);
  const now = deps.clock.now();
  const at = new Date(now);
  const rows = await deps.db
    .insert(loginAttempts)
    .values([
      { scope: "account", subject: email, succeeded: false, at },
      { scope: "ip", subject: ip, succeeded: false, at },
    ])
    .returning({ id: loginAttempts.id, scope: loginAttempts.scope });
  const accountId = rows.find((r) => r.scope === "account")?.id;
  const ipId = rows.find((r) => r.scope === "ip")?.id;
  if (accountId === undefined || ipId === undefined) throw new Error("login attempt was not recorded");

  const [accountUntil, ipUntil] = await Promise.all([
    lockedUntil(deps, "account", email, accountId),
    lockedUntil(deps, "ip", ip, ipId),
  ]);
  if (accountUntil > now || ipUntil > now) {
    await deps.db.delete(loginAttempts).where(inArray(loginAttempts.id, [accountId, ipId]));
    const accountLocked = accountUntil > now;
    const until = Math.max(accountUntil, ipUntil);
    const retryAfter = Math.ceil((until - now) / 1000);
    const minutes = Math.ceil(retryAfter / 60);
    deps.logger.warn({ scope: accountLocked ? "account" : "ip", retryAfter }, "login refused: locked out");
    throw new AppError(
      accountLocked ? 423 : 429,
      accountLocked ? "locked" : "rate_limited",
      `Too many failed sign-in attempts. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
      { retryAfterSeconds: retryAfter },
      { "Retry-After": String(retryAfter) },
    );
  }
  return { account: { id: accountId, subject: email }, ip: { id: ipId, subject: ip } };
}

/** The password was right: reset the account's failures, count the IP's attempt as a success. */
export async function attemptSucceeded(deps: EdgeDeps, attempt: LoginAttempt): Promise<void> {
  await deps.db
    .delete(loginAttempts)
    .where(and(eq(loginAttempts.scope, "account"), eq(loginAttempts.subject, attempt.account.subject)));
  await deps.db.update(loginAttempts).set({ succeeded: true }).where(eq(loginAttempts.id, attempt.ip.id));
  await deps.db
    .delete(loginAttempts)
    .where(lt(loginAttempts.at, new Date(deps.clock.now() - ATTEMPT_RETENTION_MS)));
}

/** When the lock caused by the failures recorded before `beforeId` ends (ms), or 0 if not locked. */
async function lockedUntil(deps: EdgeDeps, scope: Scope, subject: string, beforeId: number): Promise<number> {
  const failures = await deps.db
    .select({ at: loginAttempts.at })
    .from(loginAttempts)
    .where(
      and(
        eq(loginAttempts.scope, scope),
        eq(loginAttempts.subject, subject),
        eq(loginAttempts.succeeded, false),
        lt(loginAttempts.id, beforeId),
      ),
    )
    .orderBy(desc(loginAttempts.id))
    .limit(LOCKOUT_THRESHOLD);
  const newest = failures[0]?.at.getTime();
  const oldest = failures[LOCKOUT_THRESHOLD - 1]?.at.getTime();
  if (newest === undefined || oldest === undefined) return 0;
  if (newest - oldest >= LOCKOUT_WINDOW_MS) return 0;
  return newest + LOCKOUT_DURATION_MS;
}

/**
 * What the per-IP count is kept for: the IPv4 address, or the /64 prefix of an
 * IPv6 address (one subscriber usually gets a whole /64, so counting single
 * IPv6 addresses would let one client rotate past the limit).
 */
export function ipSubject(ip: string): string {
  const address = (ip.split("%")[0] ?? ip).toLowerCase();
  if (!address.includes(":")) return address;
  const compressed = address.includes("::");
  const [head = "", tail = ""] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = compressed && tail ? tail.split(":") : [];
  const fill = compressed ? Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0") : [];
  const groups = [...left, ...fill, ...right];
  // Anything else (e.g. an IPv4-mapped form) is counted as it is.
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return address;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}

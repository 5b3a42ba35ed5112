// Who is calling: the srf middleware that digest-authenticates REGISTER (401), INVITE and SUBSCRIBE (407)
// and tells the handlers after it who the caller is. Install it after the defence chain:
//
//   for (const fn of defence.middleware()) srf.use(fn);      // bans → scanner filter → rate limit
//   for (const fn of authChain(ctx, defence)) srf.use(fn);   // identify + digest challenge (REGISTER, INVITE, SUBSCRIBE)
//   srf.use("register", registrar.middleware()); srf.invite(...); srf.subscribe(...)
//
// On success the request carries `req.locals.caller` (read it with `callerOf(req)`):
//
//   { kind: "device", device: SyncDevice, username: string }   a phone, by its sipUsername (enabled devices only)
//   { kind: "trunk", username: string }                        Twilio, with settings().inbound credentials (INVITE only)
//
// A request that does not authenticate never reaches the next handler: it gets a fresh challenge (stale=true
// when only the nonce was out of date), and the same answer whether the username exists or not (no
// enumeration: unknown users are checked against a dummy HA1, disabled devices fail like a wrong password,
// the trunk username is unknown outside INVITE). Each failure is reported to the defence with the source
// address; each success clears that source's failure count. Other methods pass through untouched.
import { computeDeviceHa1, type SyncDevice } from "@gosip/drizzle";
import type Srf from "drachtio-srf";
import type { PbxContext } from "../context.ts";
import { type AuthOutcome, DigestAuth, type DigestCredentials } from "./digest.ts";

export type SrfRequest = Srf.SrfRequest;
export type SrfResponse = Srf.SrfResponse;
/**
 * An srf middleware function (`srf.use(fn)` / `srf.use(method, fn)`); `next` typed as drachtio-srf declares it,
 * so these pass `srf.use` as they are. srf's declarations take one function per `use` call: install a list with
 * `for (const fn of list) srf.use(fn)`.
 */
// biome-ignore lint/complexity/noBannedTypes: drachtio-srf's own declaration of `next`
export type SrfMiddleware = (req: SrfRequest, res: SrfResponse, next: Function) => void;

/** The authenticated party of a request. */
export type Caller =
  | { kind: "device"; device: SyncDevice; username: string }
  | { kind: "trunk"; username: string };

/** What the PBX features keep on `req.locals` (srf does not define it; features add their own keys). */
export interface PbxLocals {
  caller?: Caller;
  [key: string]: unknown;
}

/** `req.locals`, created on first use. */
export function pbxLocals(req: SrfRequest): PbxLocals {
  const r = req as SrfRequest & { locals?: PbxLocals };
  if (r.locals === undefined) r.locals = {};
  return r.locals;
}

/** The caller the auth middleware identified, or undefined when the request was not authenticated. */
export function callerOf(req: SrfRequest): Caller | undefined {
  return (req as SrfRequest & { locals?: PbxLocals }).locals?.caller;
}

/** What the auth step tells the scanner defence. */
export interface AuthReporter {
  /** A failed attempt from `source`; `device` when the username named an existing device. */
  authFailed(source: string, attempt: { username: string | undefined; device: SyncDevice | undefined }): void;
  /** `source` proved it knows the credentials: forgive its earlier failures. */
  authSucceeded(source: string, caller: Caller): void;
}

export type AuthDeps = Pick<PbxContext, "directory" | "log">;

const AUTHENTICATED_METHODS = new Set(["REGISTER", "INVITE", "SUBSCRIBE"]);

/**
 * User agents that give up on a response carrying a challenge they cannot compute, even when an MD5 one
 * comes first: libre-based clients (baresip up to 1.x) answer a SHA-256 challenge next to the MD5 one with
 * "Function not implemented" and never register. They get the MD5 challenge alone.
 */
const MD5_ONLY_AGENTS = /\b(baresip|libre)\b/i;

/** Whether this request's User-Agent only copes with a lone MD5 challenge. */
export function wantsMd5Only(userAgent: string | undefined): boolean {
  return userAgent !== undefined && MD5_ONLY_AGENTS.test(userAgent);
}

/** The HA1 pair of the inbound trunk, cached while realm, username and password stay the same. */
function trunkHa1Cache(): (realm: string, username: string, password: string) => DigestCredentials<Caller> {
  let key = "";
  let value: DigestCredentials<Caller> | undefined;
  return (realm, username, password) => {
    const k = `${realm}\u0000${username}\u0000${password}`;
    if (value === undefined || k !== key) {
      key = k;
      value = { ...computeDeviceHa1(username, realm, password), subject: { kind: "trunk", username } };
    }
    return value;
  };
}

export interface AuthChainOptions {
  /** Injected digest server (tests: clock, nonce lifetime). */
  digest?: DigestAuth;
}

/**
 * The auth middleware list for `srf.use(...)`: challenges and verifies REGISTER, INVITE and SUBSCRIBE
 * (new requests; in-dialog requests are handled by srf's dialog layer before any middleware).
 */
export function authChain(
  deps: AuthDeps,
  reporter: AuthReporter,
  options: AuthChainOptions = {},
): SrfMiddleware[] {
  const realm = (): string => deps.directory.settings()?.realm ?? "gosip";
  const digest = options.digest ?? new DigestAuth({ realm });
  const trunkHa1 = trunkHa1Cache();

  const lookup =
    (method: string) =>
    (username: string): DigestCredentials<Caller> | undefined => {
      const device = deps.directory.bySipUsername(username);
      if (device !== undefined) {
        if (!device.enabled) return undefined;
        return {
          ha1Md5: device.ha1Md5,
          ha1Sha256: device.ha1Sha256,
          subject: { kind: "device", device, username },
        };
      }
      const inbound = deps.directory.settings()?.inbound;
      if (method === "INVITE" && inbound && inbound.username === username)
        return trunkHa1(realm(), inbound.username, inbound.password);
      return undefined;
    };

  const authenticate: SrfMiddleware = (req, res, next) => {
    const method = req.method;
    if (!AUTHENTICATED_METHODS.has(method)) {
      next();
      return;
    }
    const status = method === "REGISTER" ? 401 : 407;
    const header = req.get(status === 401 ? "Authorization" : "Proxy-Authorization");
    let outcome: AuthOutcome<Caller>;
    try {
      outcome = digest.verify({ method, uri: req.uri }, header, lookup(method));
    } catch (err) {
      // fail closed: an error while checking is a refusal, never a pass
      deps.log.error({ err: (err as Error).message }, "digest verification failed");
      digest.challenge(res, { status, md5Only: wantsMd5Only(req.get("User-Agent")) });
      return;
    }
    const source = req.source_address;
    if (outcome.ok) {
      pbxLocals(req).caller = outcome.subject;
      reporter.authSucceeded(source, outcome.subject);
      next();
      return;
    }
    if (!outcome.stale && outcome.reason !== "missing" && outcome.reason !== "bad_nonce") {
      const device =
        outcome.username !== undefined ? deps.directory.bySipUsername(outcome.username) : undefined;
      reporter.authFailed(source, { username: outcome.username, device });
    }
    digest.challenge(res, { status, stale: outcome.stale, md5Only: wantsMd5Only(req.get("User-Agent")) });
  };
  return [authenticate];
}

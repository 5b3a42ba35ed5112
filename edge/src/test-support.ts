/**
 * Helpers for edge tests: a real edge app over a fresh libSQL file database
 * (migrations applied) in a temp directory, driven with `app.request()`; users,
 * sessions and requests that carry the session cookie and the CSRF header the
 * way the browser UI does. Node only (tests); never imported by the app.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDb, type Db, migrate, users } from "@gosip/drizzle";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Client } from "@libsql/client";
import { beforeEach } from "vitest";
import { createApp } from "./app.ts";
import { CSRF_HEADER, CSRF_HEADER_VALUE } from "./auth/middleware.ts";
import { hashPassword, type ScryptParams } from "./auth/password.ts";
import { createSession, SESSION_COOKIE } from "./auth/sessions.ts";
import { FsBlobStore } from "./blobs/fs.ts";
import { loadConfig } from "./config.ts";
import type { AppEnv, Role } from "./env.ts";
import { openNodeClient } from "./platform/node/database.ts";
import { nodeSmtpTransport } from "./platform/node/smtp.ts";
import type { Clock, EdgeDeps, Logger } from "./platform/types.ts";
import { systemClock } from "./platform/types.ts";
import { NodeRelayLink } from "./relay/node-link.ts";

/** Client IP that `request()` reports when the test does not choose one. */
export const TEST_CLIENT_IP = "192.0.2.10";

/** Cheap scrypt cost for test users, so creating many users stays fast. Login still verifies it for real. */
export const TEST_KDF_PARAMS: ScryptParams = { ln: 4, r: 8, p: 1 };

/** A clock tests move by hand (lockout windows, session expiry). */
export class TestClock implements Clock {
  constructor(private ms: number = Date.UTC(2026, 0, 15, 12, 0, 0)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}

export interface LogEntry {
  level: "debug" | "info" | "warn" | "error";
  data: Record<string, unknown>;
  msg: string;
}

export interface TestEdge {
  app: OpenAPIHono<AppEnv>;
  deps: EdgeDeps;
  db: Db;
  client: Client;
  /** Temp directory holding the database (GOSIP_DATA_DIR). */
  dataDir: string;
  /** Everything the app logged, for assertions (e.g. that no secret was logged). */
  logs: LogEntry[];
  close(): Promise<void>;
}

export interface TestEdgeOptions {
  clock?: Clock;
  /** PUBLIC_URL; default http://localhost:8080 (https:// turns on Secure cookies). */
  publicUrl?: string;
  /** Extra environment variables for loadConfig. */
  env?: Record<string, string>;
}

/**
 * A real edge app on a fresh libSQL file database with migrations applied.
 * The client IP of each request comes from the `clientIp` binding passed as
 * `app.request()`'s env (see `request()`), standing in for the socket address.
 */
export async function createTestEdge(opts: TestEdgeOptions = {}): Promise<TestEdge> {
  const dataDir = await mkdtemp(join(tmpdir(), "gosip-edge-test-"));
  const config = loadConfig({
    GOSIP_DATA_DIR: dataDir,
    PUBLIC_URL: opts.publicUrl ?? "http://localhost:8080",
    ...opts.env,
  });
  const client = await openNodeClient(config);
  await migrate(client);
  const db = createDb(client);
  const logs: LogEntry[] = [];
  const logger: Logger = {
    debug: (data, msg) => logs.push({ level: "debug", data, msg }),
    info: (data, msg) => logs.push({ level: "info", data, msg }),
    warn: (data, msg) => logs.push({ level: "warn", data, msg }),
    error: (data, msg) => logs.push({ level: "error", data, msg }),
  };
  const deps: EdgeDeps = {
    db,
    clock: opts.clock ?? systemClock,
    config,
    logger,
    runtime: "node",
    relayChannel: new NodeRelayLink(),
    blobs: new FsBlobStore(join(dataDir, "blobs")),
    // Real SMTP as on Node (tests point settings.email at a loopback server: notifications/test-smtp.ts).
    mail: nodeSmtpTransport,
  };
  const app = createApp(deps, {
    clientIp: (_req, env) => {
      const ip = (env as { clientIp?: unknown } | undefined)?.clientIp;
      return typeof ip === "string" ? ip : TEST_CLIENT_IP;
    },
  });
  return {
    app,
    deps,
    db,
    client,
    dataDir,
    logs,
    close: async () => {
      client.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  /** The plaintext password, for login tests. */
  password: string;
}

let userCounter = 0;

/** Insert a user directly (cheap KDF cost). Email defaults to a unique address. */
export async function createUser(
  t: TestEdge,
  opts: { role?: Role; email?: string; password?: string; name?: string } = {},
): Promise<TestUser> {
  userCounter += 1;
  const role = opts.role ?? "user";
  const email = (
    opts.email ?? `${role}${userCounter}-${crypto.randomUUID().slice(0, 8)}@example.test`
  ).toLowerCase();
  const password = opts.password ?? `password-${userCounter}-long`;
  const name = opts.name ?? `Test ${role} ${userCounter}`;
  const now = new Date(t.deps.clock.now());
  const [row] = await t.db
    .insert(users)
    .values({
      email,
      name,
      role,
      passwordHash: await hashPassword(password, TEST_KDF_PARAMS),
      passwordChangedAt: now,
      createdAt: now,
      updatedAt: now,
    })
    .returning({ id: users.id });
  if (!row) throw new Error("createUser: insert returned nothing");
  return { id: row.id, email, name, role, password };
}

/** What a signed-in browser sends: the session cookie, plus the CSRF header on writes. */
export interface TestSession {
  token: string;
  /** `gosip_session=<token>`, for a Cookie header. */
  cookie: string;
  /** Cookie + CSRF header, ready to spread into fetch/app.request headers. */
  headers: Record<string, string>;
}

function sessionBag(token: string): TestSession {
  const cookie = `${SESSION_COOKIE}=${token}`;
  return { token, cookie, headers: { cookie, [CSRF_HEADER]: CSRF_HEADER_VALUE } };
}

/** Sign in through POST /api/auth/login (the real route); throws unless it answers 200. */
export async function login(
  t: TestEdge,
  email: string,
  password: string,
  opts: { ip?: string } = {},
): Promise<TestSession> {
  const res = await request(t, "POST", "/api/auth/login", { body: { email, password }, ip: opts.ip });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const token = sessionTokenFrom(res);
  if (!token) throw new Error("login answered 200 without a session cookie");
  return sessionBag(token);
}

/** A session for `user` created directly in the database (no KDF work): fast setup for resource tests. */
export async function signIn(t: TestEdge, user: { id: string }): Promise<TestSession> {
  const { token } = await createSession(t.deps, user.id, { ip: TEST_CLIENT_IP });
  return sessionBag(token);
}

/** Create a user with `role` and a session for it. */
export async function loginAs(
  t: TestEdge,
  role: Role,
  opts: { email?: string; password?: string; name?: string } = {},
): Promise<{ user: TestUser; session: TestSession }> {
  const user = await createUser(t, { ...opts, role });
  return { user, session: await signIn(t, user) };
}

/** A fresh edge per test and a signed-in admin: the set-up every resource test starts from. */
export interface AdminEdge {
  t: TestEdge;
  admin: { user: TestUser; session: TestSession };
}

/**
 * Registers the per-test fixture: before each test a new edge (own database) with
 * a signed-in admin, handed to `use` (assign it to the test file's variables);
 * after each test that edge is closed and its database removed.
 */
export function useAdminEdge(use: (edge: AdminEdge) => void, opts: TestEdgeOptions = {}): void {
  beforeEach(async () => {
    const t = await createTestEdge(opts);
    use({ t, admin: await loginAs(t, "admin") });
    return () => t.close();
  });
}

/** The error envelope of every failed API call, as tests read it. */
export interface ErrorJson {
  error: {
    code: string;
    message: string;
    /** Validation failures list `{ path, message }`; other errors carry their own shape. */
    details?: { path: string; message: string }[];
  };
}

/** The session token a response set, if any (empty when the response cleared it). */
export function sessionTokenFrom(res: Response): string | undefined {
  for (const header of res.headers.getSetCookie()) {
    const [pair] = header.split(";");
    const [name, value] = (pair ?? "").split("=");
    if (name?.trim() === SESSION_COOKIE) return value ?? "";
  }
  return undefined;
}

export interface RequestOptions {
  /** JSON body (sent with content-type application/json). */
  body?: unknown;
  /** Session to send (cookie + CSRF header). */
  as?: TestSession;
  /** Client IP as the platform would report it (socket address / CF-Connecting-IP). */
  ip?: string | undefined;
  /** Extra headers (they win over the defaults). */
  headers?: Record<string, string>;
  /** Send the CSRF header; default true, set false to test the CSRF defence. */
  csrf?: boolean;
}

/** Send a request to the test app like the browser UI would. */
export function request(
  t: TestEdge,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (opts.as) headers.cookie = opts.as.cookie;
  if (opts.csrf !== false) headers[CSRF_HEADER] = CSRF_HEADER_VALUE;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  Object.assign(headers, opts.headers);
  return Promise.resolve(
    t.app.request(
      `http://localhost:8080${path}`,
      { method, headers, body },
      { clientIp: opts.ip ?? TEST_CLIENT_IP },
    ),
  );
}

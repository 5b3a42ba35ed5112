/**
 * A small Hrana-over-HTTP server (protocol versions 2 and 3, JSON encoding) backed by
 * the `libsql` package on a file database. It stands in for Turso/sqld, which is not
 * installable here, so the edge can run inside workerd against `@libsql/client/web`
 * exactly as it does in production.
 *
 * Streams: one libSQL connection per stream, tied together by a single-use random
 * baton. Abandoned streams are rolled back and closed after `streamIdleMs`.
 * Spec: docs/HRANA_3_SPEC.md in tursodatabase/libsql; request shapes as sent by
 * `@libsql/hrana-client` (v2/pipeline JSON).
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import Database from "libsql";

export interface HranaServerOptions {
  /** Path of the SQLite file; created when missing. */
  dbPath: string;
  /** When set, every request must carry `Authorization: Bearer <authToken>`. */
  authToken?: string;
  /** Idle time after which an unclosed stream is rolled back and dropped (sqld uses ~10 s). */
  streamIdleMs?: number;
  /** How long a statement waits for another stream's write lock before failing with SQLITE_BUSY. */
  busyTimeoutMs?: number;
}

export interface HranaServer {
  /** Base URL for `@libsql/client`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Number of streams currently open (for tests of stream cleanup). */
  openStreams(): number;
  close(): Promise<void>;
}

// ---- protocol structures (JSON encoding) -----------------------------------------

type Value =
  | { type: "null" }
  | { type: "integer"; value: string }
  | { type: "float"; value: number }
  | { type: "text"; value: string }
  | { type: "blob"; base64: string };

interface Stmt {
  sql?: string | null;
  sql_id?: number | null;
  args?: Value[];
  named_args?: { name: string; value: Value }[];
  want_rows?: boolean;
}

interface StmtResult {
  cols: { name: string | null; decltype: string | null }[];
  rows: Value[][];
  affected_row_count: number;
  last_insert_rowid: string | null;
}

type BatchCond =
  | { type: "ok"; step: number }
  | { type: "error"; step: number }
  | { type: "not"; cond: BatchCond }
  | { type: "and"; conds: BatchCond[] }
  | { type: "or"; conds: BatchCond[] }
  | { type: "is_autocommit" };

interface Batch {
  steps: { condition?: BatchCond | null; stmt: Stmt }[];
}

type StreamRequest =
  | { type: "close" }
  | { type: "execute"; stmt: Stmt }
  | { type: "batch"; batch: Batch }
  | { type: "sequence"; sql?: string | null; sql_id?: number | null }
  | { type: "describe"; sql?: string | null; sql_id?: number | null }
  | { type: "store_sql"; sql_id: number; sql: string }
  | { type: "close_sql"; sql_id: number }
  | { type: "get_autocommit" };

interface ProtoError {
  message: string;
  code: string | null;
}

type StreamResult =
  | { type: "ok"; response: { type: string } & Record<string, unknown> }
  | { type: "error"; error: ProtoError };

/** An error reported to the client as a Hrana `Error` structure. */
class HranaError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

// ---- values ----------------------------------------------------------------------

type SqlValue = null | bigint | number | string | Buffer;

function valueFromProto(v: Value): SqlValue {
  switch (v.type) {
    case "null":
      return null;
    case "integer":
      return BigInt(v.value);
    case "float":
      return Number(v.value);
    case "text":
      return v.value;
    case "blob":
      return Buffer.from(v.base64, "base64");
    default:
      throw new HranaError(
        `Unknown value type ${JSON.stringify((v as { type: unknown }).type)}`,
        "HRANA_PROTO_ERROR",
      );
  }
}

function valueToProto(v: unknown): Value {
  if (v === null || v === undefined) return { type: "null" };
  if (typeof v === "bigint") return { type: "integer", value: v.toString() };
  if (typeof v === "number") {
    // safeIntegers() makes SQLite integers bigints, so a number is always a REAL.
    return { type: "float", value: v };
  }
  if (typeof v === "string") return { type: "text", value: v };
  if (v instanceof Uint8Array) return { type: "blob", base64: Buffer.from(v).toString("base64") };
  throw new HranaError(`Cannot encode value of type ${typeof v}`, "HRANA_PROTO_ERROR");
}

// ---- streams ---------------------------------------------------------------------

interface Stream {
  conn: Database.Database;
  sqls: Map<number, string>;
  timer: NodeJS.Timeout | undefined;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function sqlErrorCode(e: unknown): string | undefined {
  if (e instanceof Error && "code" in e && typeof e.code === "string") return e.code;
  return undefined;
}

function toProtoError(e: unknown): ProtoError {
  if (e instanceof HranaError) return { message: e.message, code: e.code };
  const message = e instanceof Error ? e.message : String(e);
  return { message, code: sqlErrorCode(e) ?? "UNKNOWN" };
}

/** Start the server on 127.0.0.1 with an ephemeral port. */
export async function startHranaServer(options: HranaServerOptions): Promise<HranaServer> {
  const streamIdleMs = options.streamIdleMs ?? 10_000;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
  const streams = new Map<string, Stream>();

  // WAL lets readers of one stream run beside another stream's open write transaction.
  const admin = new Database(options.dbPath);
  admin.exec("PRAGMA journal_mode = WAL");
  admin.close();

  function openConnection(): Database.Database {
    const conn = new Database(options.dbPath);
    conn.defaultSafeIntegers(true);
    // Never block the event loop in SQLite's own busy handler: the stream holding the
    // lock can only finish through another HTTP request. Waits happen in `withBusyRetry`.
    conn.exec("PRAGMA busy_timeout = 0");
    return conn;
  }

  function closeStream(stream: Stream): void {
    if (stream.timer) clearTimeout(stream.timer);
    if (!stream.conn.open) return;
    // Roll back explicitly: libsql releases the connection (and its write lock) only
    // when its prepared statements are garbage-collected, not on close().
    if (stream.conn.inTransaction) stream.conn.exec("ROLLBACK");
    stream.conn.close();
  }

  function newBaton(): string {
    return randomBytes(18).toString("base64url");
  }

  async function withBusyRetry<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + busyTimeoutMs;
    for (;;) {
      try {
        return fn();
      } catch (e) {
        if (!sqlErrorCode(e)?.startsWith("SQLITE_BUSY") || Date.now() >= deadline) throw e;
        await sleep(5);
      }
    }
  }

  function resolveSql(
    stream: Stream,
    sql: string | null | undefined,
    sqlId: number | null | undefined,
  ): string {
    if (typeof sql === "string") return sql;
    if (typeof sqlId === "number") {
      const stored = stream.sqls.get(sqlId);
      if (stored === undefined) throw new HranaError(`SQL text ${sqlId} was not stored`, "SQL_NOT_FOUND");
      return stored;
    }
    throw new HranaError("Exactly one of sql and sql_id must be given", "HRANA_PROTO_ERROR");
  }

  function bindParams(stmt: Stmt): SqlValue[] | Record<string, SqlValue> {
    const args = (stmt.args ?? []).map(valueFromProto);
    const named = stmt.named_args ?? [];
    if (named.length === 0) return args;
    if (args.length > 0) {
      throw new HranaError("Mixing positional and named arguments is not supported", "ARGS_INVALID");
    }
    const out: Record<string, SqlValue> = {};
    // libsql expects names without the SQLite prefix sign.
    for (const { name, value } of named) out[name.replace(/^[:@$]/, "")] = valueFromProto(value);
    return out;
  }

  async function executeStmt(stream: Stream, stmt: Stmt): Promise<StmtResult> {
    const sql = resolveSql(stream, stmt.sql, stmt.sql_id);
    const conn = stream.conn;
    const prepared = conn.prepare(sql);
    const params = bindParams(stmt);
    const counters = conn.prepare("SELECT changes(), total_changes(), last_insert_rowid()").raw(true);
    const before = (counters.get() as unknown[])[1];
    let rows: unknown[][] = [];
    // The trailing [] keeps libsql from mistaking a single null/blob argument for a
    // named-parameter object (which aborts the process).
    const run = (): void => {
      if (prepared.reader) {
        const raw = prepared.raw(true);
        rows = (Array.isArray(params) ? raw.all(...params, []) : raw.all(params)) as unknown[][];
      } else if (Array.isArray(params)) {
        prepared.run(...params, []);
      } else {
        prepared.run(params);
      }
    };
    await withBusyRetry(run);
    const [changes, total, lastRowid] = counters.get() as [bigint, bigint, bigint];
    const cols = prepared.reader ? prepared.columns() : [];
    return {
      cols: cols.map((c) => ({ name: c.name, decltype: c.type })),
      rows: stmt.want_rows === false ? [] : rows.map((r) => r.map(valueToProto)),
      affected_row_count: total !== before ? Number(changes) : 0,
      last_insert_rowid: lastRowid.toString(),
    };
  }

  function evalCond(stream: Stream, cond: BatchCond, outcome: ("ok" | "error" | "skipped")[]): boolean {
    switch (cond.type) {
      case "ok":
        return outcome[cond.step] === "ok";
      case "error":
        return outcome[cond.step] === "error";
      case "not":
        return !evalCond(stream, cond.cond, outcome);
      case "and":
        return cond.conds.every((c) => evalCond(stream, c, outcome));
      case "or":
        return cond.conds.some((c) => evalCond(stream, c, outcome));
      case "is_autocommit":
        return !stream.conn.inTransaction;
      default:
        throw new HranaError("Unknown batch condition", "HRANA_PROTO_ERROR");
    }
  }

  async function executeBatch(stream: Stream, batch: Batch) {
    const outcome: ("ok" | "error" | "skipped")[] = [];
    const stepResults: (StmtResult | null)[] = [];
    const stepErrors: (ProtoError | null)[] = [];
    for (const step of batch.steps) {
      if (step.condition && !evalCond(stream, step.condition, outcome)) {
        outcome.push("skipped");
        stepResults.push(null);
        stepErrors.push(null);
        continue;
      }
      try {
        stepResults.push(await executeStmt(stream, step.stmt));
        stepErrors.push(null);
        outcome.push("ok");
      } catch (e) {
        stepResults.push(null);
        stepErrors.push(toProtoError(e));
        outcome.push("error");
      }
    }
    return { step_results: stepResults, step_errors: stepErrors };
  }

  function describe(stream: Stream, sql: string) {
    const prepared = stream.conn.prepare(sql);
    // libsql exposes no parameter metadata; list the named/numbered parameters from the
    // SQL text with string literals and comments removed.
    const stripped = sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|\/\*[\s\S]*?\*\//g, " ");
    const params = [...stripped.matchAll(/\?\d*|[:@$][A-Za-z_][A-Za-z0-9_]*/g)].map((m) => ({
      name: m[0] === "?" ? null : m[0],
    }));
    return {
      params,
      cols: prepared.reader ? prepared.columns().map((c) => ({ name: c.name, decltype: c.type })) : [],
      is_explain: /^\s*explain\b/i.test(stripped),
      is_readonly: prepared.reader && !/^\s*(insert|update|delete|replace|with)\b/i.test(stripped),
    };
  }

  async function handleRequest(stream: Stream, req: StreamRequest): Promise<StreamResult> {
    try {
      switch (req.type) {
        case "close":
          closeStream(stream);
          return { type: "ok", response: { type: "close" } };
        case "execute":
          return { type: "ok", response: { type: "execute", result: await executeStmt(stream, req.stmt) } };
        case "batch":
          return { type: "ok", response: { type: "batch", result: await executeBatch(stream, req.batch) } };
        case "sequence": {
          const sql = resolveSql(stream, req.sql, req.sql_id);
          await withBusyRetry(() => stream.conn.exec(sql));
          return { type: "ok", response: { type: "sequence" } };
        }
        case "describe":
          return {
            type: "ok",
            response: { type: "describe", result: describe(stream, resolveSql(stream, req.sql, req.sql_id)) },
          };
        case "store_sql":
          if (stream.sqls.has(req.sql_id)) {
            throw new HranaError(`SQL text ${req.sql_id} is already stored`, "SQL_ID_IN_USE");
          }
          stream.sqls.set(req.sql_id, req.sql);
          return { type: "ok", response: { type: "store_sql" } };
        case "close_sql":
          stream.sqls.delete(req.sql_id);
          return { type: "ok", response: { type: "close_sql" } };
        case "get_autocommit":
          return {
            type: "ok",
            response: { type: "get_autocommit", is_autocommit: !stream.conn.inTransaction },
          };
        default:
          throw new HranaError(
            `Unknown request type ${JSON.stringify((req as { type: unknown }).type)}`,
            "HRANA_PROTO_ERROR",
          );
      }
    } catch (e) {
      return { type: "error", error: toProtoError(e) };
    }
  }

  async function pipeline(body: unknown): Promise<{ status: number; json: unknown }> {
    if (!isObject(body) || !Array.isArray(body.requests)) {
      return { status: 400, json: { message: "Body must be {baton, requests}", code: "HRANA_PROTO_ERROR" } };
    }
    let stream: Stream;
    if (typeof body.baton === "string") {
      const found = streams.get(body.baton);
      if (!found) {
        return { status: 400, json: { message: "Unknown or expired baton", code: "STREAM_EXPIRED" } };
      }
      // Batons are single-use: the next request must carry the one returned below.
      streams.delete(body.baton);
      stream = found;
      if (stream.timer) clearTimeout(stream.timer);
    } else {
      stream = { conn: openConnection(), sqls: new Map(), timer: undefined };
    }
    const results: StreamResult[] = [];
    for (const req of body.requests as StreamRequest[]) {
      if (!stream.conn.open) {
        results.push({ type: "error", error: { message: "Stream is closed", code: "STREAM_CLOSED" } });
        continue;
      }
      results.push(await handleRequest(stream, req));
    }
    let baton: string | null = null;
    if (stream.conn.open) {
      baton = newBaton();
      streams.set(baton, stream);
      const key = baton;
      stream.timer = setTimeout(() => {
        streams.delete(key);
        closeStream(stream);
      }, streamIdleMs);
      stream.timer.unref();
    }
    return { status: 200, json: { baton, base_url: null, results } };
  }

  async function readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  function send(res: ServerResponse, status: number, json: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(json));
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "");
    if (options.authToken !== undefined && req.headers.authorization !== `Bearer ${options.authToken}`) {
      send(res, 401, { message: "Authentication required", code: "UNAUTHORIZED" });
      return;
    }
    if (req.method === "GET" && (path === "" || path === "/health" || path === "/v2" || path === "/v3")) {
      res.writeHead(200).end();
      return;
    }
    if (req.method === "POST" && (path === "/v2/pipeline" || path === "/v3/pipeline")) {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        send(res, 400, { message: "Body is not valid JSON", code: "HRANA_PROTO_ERROR" });
        return;
      }
      const out = await pipeline(body);
      send(res, out.status, out.json);
      return;
    }
    // v3-protobuf and cursors are not implemented: a 404 makes clients fall back to v2 JSON.
    send(res, 404, { message: `No such endpoint: ${req.method} ${path}`, code: "NOT_FOUND" });
  }

  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { message: toProtoError(e).message, code: "INTERNAL" });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    openStreams: () => streams.size,
    close: async () => {
      for (const stream of streams.values()) closeStream(stream);
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Manual use (e.g. with `wrangler dev`): `npx tsx tests/hrana/server.ts ./data/hrana.db`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dbPath = process.argv[2] ?? "hrana.db";
  const server = await startHranaServer({ dbPath, authToken: process.env.HRANA_AUTH_TOKEN });
  console.log(server.url);
}

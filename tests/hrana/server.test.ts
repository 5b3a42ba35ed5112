/**
 * The Hrana test server, driven by the same client the Worker uses (`@libsql/client/web`):
 * typed values, batches as transactions, interactive transactions, isolation between
 * streams, errors, auth and abandoned-stream cleanup.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient, LibsqlError } from "@libsql/client/web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HranaServer, startHranaServer } from "./server.ts";

let dir: string;
let server: HranaServer;
let client: Client;
const token = "test-token";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-hrana-"));
  server = await startHranaServer({ dbPath: join(dir, "db.sqlite"), authToken: token, streamIdleMs: 300 });
  client = createClient({ url: server.url, authToken: token });
  await client.execute(
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, score REAL, data BLOB)",
  );
});

afterAll(async () => {
  client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function count(): Promise<number> {
  const rs = await client.execute("SELECT count(*) AS n FROM items");
  return Number(rs.rows[0]?.n);
}

describe("hrana server", () => {
  it("round-trips every value type and reports rowid and affected rows", async () => {
    const ins = await client.execute({
      sql: "INSERT INTO items (name, score, data) VALUES (?, ?, ?)",
      args: ["alpha", 1.5, new Uint8Array([0, 1, 254])],
    });
    expect(ins.rowsAffected).toBe(1);
    expect(ins.lastInsertRowid).toBe(1n);

    const rs = await client.execute({
      sql: "SELECT id, name, score, data, NULL AS empty FROM items WHERE name = :n",
      args: { n: "alpha" },
    });
    expect(rs.columns).toEqual(["id", "name", "score", "data", "empty"]);
    expect(rs.columnTypes.slice(0, 4)).toEqual(["INTEGER", "TEXT", "REAL", "BLOB"]);
    const row = rs.rows[0];
    expect(row?.id).toBe(1);
    expect(row?.name).toBe("alpha");
    expect(row?.score).toBe(1.5);
    expect(new Uint8Array(row?.data as ArrayBuffer)).toEqual(new Uint8Array([0, 1, 254]));
    expect(row?.empty).toBeNull();

    // intMode "number" refuses unsafe integers rather than silently rounding.
    await expect(client.execute({ sql: "SELECT ? AS v", args: [9007199254740993n] })).rejects.toThrow(
      RangeError,
    );
    const bigClient = createClient({ url: server.url, authToken: token, intMode: "bigint" });
    const exact = await bigClient.execute({ sql: "SELECT ? AS v", args: [9007199254740993n] });
    expect(exact.rows[0]?.v).toBe(9007199254740993n);
    bigClient.close();

    const sel = await client.execute("SELECT * FROM items");
    expect(sel.rowsAffected).toBe(0);
    const upd = await client.execute("UPDATE items SET score = 2 WHERE id > 100");
    expect(upd.rowsAffected).toBe(0);
  });

  it("runs a batch atomically: a failing statement rolls the whole batch back", async () => {
    const before = await count();
    const results = await client.batch(
      [
        { sql: "INSERT INTO items (name) VALUES (?)", args: ["b1"] },
        { sql: "INSERT INTO items (name) VALUES (?) RETURNING id, name", args: ["b2"] },
      ],
      "write",
    );
    expect(results).toHaveLength(2);
    expect(results[1]?.rows[0]?.name).toBe("b2");
    expect(await count()).toBe(before + 2);

    await expect(
      client.batch(
        [
          { sql: "INSERT INTO items (name) VALUES (?)", args: ["b3"] },
          { sql: "INSERT INTO items (name) VALUES (?)", args: ["b1"] },
        ],
        "write",
      ),
    ).rejects.toMatchObject({ code: "SQLITE_CONSTRAINT_UNIQUE" });
    expect(await count()).toBe(before + 2);
    const b3 = await client.execute({ sql: "SELECT 1 FROM items WHERE name = ?", args: ["b3"] });
    expect(b3.rows).toHaveLength(0);
  });

  it("keeps an interactive transaction on one stream, isolated until commit", async () => {
    const before = await count();
    const tx = await client.transaction("write");
    await tx.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["tx1"] });
    const inside = await tx.execute("SELECT count(*) AS n FROM items");
    expect(Number(inside.rows[0]?.n)).toBe(before + 1);
    // Another stream does not see the uncommitted row.
    expect(await count()).toBe(before);
    await tx.commit();
    expect(await count()).toBe(before + 1);

    const tx2 = await client.transaction("write");
    await tx2.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["tx2"] });
    await tx2.rollback();
    expect(await count()).toBe(before + 1);
  });

  it("makes a writer on another stream wait for an open write transaction", async () => {
    const tx = await client.transaction("write");
    await tx.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["held"] });
    const blocked = client.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["waiting"] });
    await new Promise((r) => setTimeout(r, 50));
    await tx.commit();
    const rs = await blocked;
    expect(rs.rowsAffected).toBe(1);
    const names = await client.execute(
      "SELECT name FROM items WHERE name IN ('held', 'waiting') ORDER BY id",
    );
    expect(names.rows.map((r) => r.name)).toEqual(["held", "waiting"]);
  });

  it("surfaces SQL errors as LibsqlError with the SQLite code", async () => {
    const err = await client.execute("SELEC nonsense").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibsqlError);
    expect((err as LibsqlError).code).toBe("SQLITE_ERROR");
    expect((err as LibsqlError).message).toMatch(/syntax error/);

    await expect(
      client.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: [null] }),
    ).rejects.toMatchObject({
      code: "SQLITE_CONSTRAINT_NOTNULL",
    });
  });

  it("runs multi-statement scripts (executeMultiple) and migrations", async () => {
    await client.executeMultiple(
      "CREATE TABLE m1 (a INTEGER); INSERT INTO m1 VALUES (1); INSERT INTO m1 VALUES (2);",
    );
    const rs = await client.execute("SELECT sum(a) AS s FROM m1");
    expect(rs.rows[0]?.s).toBe(3);
    await client.migrate(["CREATE TABLE m2 (b TEXT)", "INSERT INTO m2 VALUES ('x')"]);
    expect((await client.execute("SELECT b FROM m2")).rows[0]?.b).toBe("x");
    await expect(
      client.executeMultiple("INSERT INTO m1 VALUES (3); INSERT INTO nope VALUES (1);"),
    ).rejects.toThrow(/no such table/);
  });

  it("rejects a client without the auth token", async () => {
    const anon = createClient({ url: server.url });
    await expect(anon.execute("SELECT 1")).rejects.toThrow(/Authentication required/);
    anon.close();
  });

  it("rolls back and drops an abandoned stream after the idle timeout", async () => {
    const before = await count();
    const tx = await client.transaction("write");
    await tx.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["abandoned"] });
    expect(server.openStreams()).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(server.openStreams()).toBe(0);
    // The write lock is released and the row is gone.
    await client.execute({ sql: "INSERT INTO items (name) VALUES (?)", args: ["after"] });
    expect(await count()).toBe(before + 1);
    await expect(tx.execute("SELECT 1")).rejects.toThrow();
  });

  it("speaks the wire protocol: stored SQL, describe, autocommit, batch conditions, single-use batons", async () => {
    async function pipeline(baton: string | null, requests: unknown[]): Promise<Response> {
      return fetch(`${server.url}/v2/pipeline`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ baton, requests }),
      });
    }
    type Body = { baton: string | null; results: { type: string; response?: Record<string, unknown> }[] };

    const first = await pipeline(null, [
      { type: "store_sql", sql_id: 1, sql: "SELECT ? AS n" },
      { type: "execute", stmt: { sql_id: 1, args: [{ type: "integer", value: "7" }] } },
      { type: "get_autocommit" },
      { type: "describe", sql: "SELECT :a AS x, 'literal :b' AS y" },
      { type: "store_sql", sql_id: 1, sql: "SELECT 2" },
    ]);
    expect(first.status).toBe(200);
    const one = (await first.json()) as Body;
    expect(one.results.map((r) => r.type)).toEqual(["ok", "ok", "ok", "ok", "error"]);
    expect(one.results[1]?.response?.result).toMatchObject({ rows: [[{ type: "integer", value: "7" }]] });
    expect(one.results[2]?.response?.is_autocommit).toBe(true);
    expect(one.results[3]?.response?.result).toMatchObject({
      params: [{ name: ":a" }],
      cols: [{ name: "x" }, { name: "y" }],
      is_readonly: true,
      is_explain: false,
    });
    expect(typeof one.baton).toBe("string");

    const second = await pipeline(one.baton, [
      { type: "execute", stmt: { sql: "BEGIN" } },
      { type: "get_autocommit" },
      {
        type: "batch",
        batch: {
          steps: [
            { stmt: { sql: "SELECT 1" } },
            { condition: { type: "error", step: 0 }, stmt: { sql: "SELECT 2" } },
            {
              condition: { type: "not", cond: { type: "is_autocommit" } },
              stmt: { sql: "SELECT nope FROM nowhere" },
            },
            {
              condition: {
                type: "and",
                conds: [
                  { type: "ok", step: 0 },
                  { type: "error", step: 2 },
                ],
              },
              stmt: { sql: "ROLLBACK" },
            },
          ],
        },
      },
      { type: "get_autocommit" },
      { type: "close" },
    ]);
    const two = (await second.json()) as Body;
    expect(two.results[1]?.response?.is_autocommit).toBe(false);
    const batch = two.results[2]?.response?.result as { step_results: unknown[]; step_errors: unknown[] };
    expect(batch.step_results.map((r) => r !== null)).toEqual([true, false, false, true]);
    expect(batch.step_errors.map((e) => e !== null)).toEqual([false, false, true, false]);
    expect(two.results[3]?.response?.is_autocommit).toBe(true);
    expect(two.baton).toBeNull();

    // Batons are single-use: replaying one is refused.
    const replay = await pipeline(one.baton, [{ type: "get_autocommit" }]);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ code: "STREAM_EXPIRED" });
  });
});

// The statement-reusing file client answers exactly like @libsql/client (rows, codes, errors),
// sees the other connection's writes and schema changes, and refuses interactive transactions.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient, LibsqlError } from "@libsql/client";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openNodeClient } from "./database.ts";

let dir: string;
let cached: Client;
let plain: Client;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "gosip-stmt-cache-"));
  const url = `file:${join(dir, "db.sqlite")}`;
  cached = await openNodeClient({ databaseUrl: url, databaseAuthToken: undefined });
  plain = createClient({ url });
  await cached.executeMultiple(
    "create table t (id integer primary key, name text unique, n integer, data blob, x real);" +
      "insert into t (name, n, data, x) values ('a', 9007199254740991, x'0102', 1.5), ('b', null, null, null);",
  );
});
afterEach(async () => {
  cached.close();
  plain.close();
  await rm(dir, { recursive: true, force: true });
});

const statements = [
  "select * from t order by id",
  { sql: "select name, n from t where id = ?", args: [1] },
  { sql: "select name from t where name = :name", args: { name: "b" } },
  { sql: "select count(*) as c, ? as flag, ? as day from t", args: [true, new Date(86_400_000)] },
  "pragma journal_mode",
  "select a.id, b.id, a.name as length, b.name from t a join t b on b.id = a.id + 1",
];

it("returns the same result sets as @libsql/client, also when a statement is reused", async () => {
  for (const stmt of statements) {
    const expected = JSON.stringify(await plain.execute(stmt));
    expect(JSON.stringify(await cached.execute(stmt))).toBe(expected);
    expect(JSON.stringify(await cached.execute(stmt))).toBe(expected);
  }
  const [row] = (await cached.execute("select * from t where id = 1")).rows;
  expect(row?.length).toBe(5);
  expect(row?.[1]).toBe("a");
  expect(row?.name).toBe("a");
  expect(Object.keys(row ?? {})).toEqual(["id", "name", "n", "data", "x"]);
  expect(row?.n).toBe(Number.MAX_SAFE_INTEGER);
  expect(new Uint8Array(row?.data as ArrayBuffer)).toEqual(new Uint8Array([1, 2]));

  // Repeated column names: every value by index, the first by name, as @libsql/client does.
  const joined = "select a.id, b.id, a.name as length, b.name from t a join t b on b.id = a.id + 1";
  const [mine] = (await cached.execute(joined)).rows;
  const [theirs] = (await plain.execute(joined)).rows;
  expect(Array.prototype.slice.call(mine)).toEqual([1, 2, "a", "b"]);
  expect(Array.prototype.slice.call(theirs)).toEqual([1, 2, "a", "b"]);
  expect({ ...mine }).toEqual({ ...theirs });
  expect(mine?.id).toBe(1);
});

it("reports writes like @libsql/client: rows affected, last rowid, LibsqlError codes", async () => {
  const inserted = await cached.execute({ sql: "insert into t (name) values (?)", args: ["c"] });
  expect(inserted.rowsAffected).toBe(1);
  expect(inserted.lastInsertRowid).toBe(3n);
  const updated = await cached.execute("update t set n = 1");
  expect(updated.rowsAffected).toBe(3);

  const err = await cached
    .execute({ sql: "insert into t (name) values (?)", args: ["a"] })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(LibsqlError);
  expect((err as LibsqlError).code).toBe("SQLITE_CONSTRAINT");
  expect((err as LibsqlError).extendedCode).toBe("SQLITE_CONSTRAINT_UNIQUE");
  expect((err as LibsqlError).message).toMatch(/UNIQUE constraint failed: t\.name/);
});

it("sees writes made through batch and schema changes made through executeMultiple", async () => {
  const select = "select * from t order by id";
  await cached.execute(select);
  await cached.batch([{ sql: "insert into t (name) values (?)", args: ["from-batch"] }]);
  await cached.executeMultiple("alter table t add column extra text default 'e'");
  const after = await cached.execute(select);
  expect(after.columns).toContain("extra");
  expect(after.rows.map((r) => r.name)).toEqual(["a", "b", "from-batch"]);
  expect(after.rows[2]?.extra).toBe("e");
});

it("runs every connection with WAL and synchronous=NORMAL, and refuses interactive transactions", async () => {
  expect((await cached.execute("pragma synchronous")).rows[0]?.[0]).toBe(1);
  expect((await cached.batch(["pragma synchronous"]))[0]?.rows[0]?.[0]).toBe(1);
  const err = await cached.transaction().catch((e: unknown) => e);
  expect((err as LibsqlError).code).toBe("TRANSACTION_UNSUPPORTED");
});

it("reads integers beyond 2^53 exactly: an unsafe integer fails as with @libsql/client, large reals pass", async () => {
  await cached.execute({
    sql: "insert into t (name, n, x) values (?, ?, ?)",
    args: ["big", 2n ** 60n, 1e20],
  });
  const bigInt = { sql: "select name, n from t where name = ?", args: ["big"] };
  const expected = await plain.execute(bigInt).catch((e: unknown) => e);
  expect(expected).toBeInstanceOf(RangeError);
  // Twice: the first read meets the value as a (rounded) number, the second reads exactly from the start.
  for (let i = 0; i < 2; i++) {
    const err = await cached.execute(bigInt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe((expected as Error).message);
  }
  // The same statement still answers rows whose integers are safe.
  const [safe] = (await cached.execute({ ...bigInt, args: ["a"] })).rows;
  expect(safe?.n).toBe(Number.MAX_SAFE_INTEGER);

  const real = { sql: "select x from t where name = ?", args: ["big"] };
  expect(JSON.stringify(await cached.execute(real))).toBe(JSON.stringify(await plain.execute(real)));
  expect((await cached.execute(real)).rows[0]?.x).toBe(1e20);

  // A write's RETURNING is always read exactly (it cannot be run twice).
  const returning = { sql: "update t set n = n where name = ? returning n", args: ["big"] };
  expect(await cached.execute(returning).catch((e: unknown) => e)).toBeInstanceOf(RangeError);
});

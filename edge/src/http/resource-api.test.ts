// Database errors from resource writes carry no SQL parameters (which can be
// HA1s, password hashes or secrets) and still map UNIQUE violations to 409.
import { dids, relayTokens, settings } from "@gosip/drizzle";
import { eq, ne, sql } from "drizzle-orm";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createTestEdge, type TestEdge } from "../test-support.ts";
import { AppError } from "./errors.ts";
import {
  DatabaseWriteError,
  deleteByIdOr404,
  findByIdOr404,
  isoFromMs,
  isUniqueViolation,
  listPage,
  prepareFind,
  preparePage,
  safeWrite,
  uniqueOr409,
} from "./resource-api.ts";

let t: TestEdge;
beforeEach(async () => {
  t = await createTestEdge();
});
afterEach(async () => {
  await t.close();
});

it("safeWrite drops the parameters from a failed statement but keeps the reason", async () => {
  await t.db.insert(settings).values({ key: "k", value: { v: 1 } });
  const secret = "super-secret-value-123";
  const err = await safeWrite(() =>
    t.db.insert(settings).values({ key: "k", value: { v: 1, secret } }),
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DatabaseWriteError);
  const text = `${(err as Error).message} ${String((err as Error).cause ?? "")} ${(err as Error).stack ?? ""}`;
  expect(text).not.toContain(secret);
  expect((err as Error).message).toMatch(/UNIQUE constraint failed: settings\.key/);
  expect(isUniqueViolation(err)).toBe(true);
});

it("uniqueOr409 turns a UNIQUE violation into a 409 AppError", async () => {
  await t.db.insert(settings).values({ key: "k", value: { v: 1 } });
  const err = await uniqueOr409(
    () => t.db.insert(settings).values({ key: "k", value: { v: 1 } }),
    "taken",
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).status).toBe(409);
  expect((err as AppError).message).toBe("taken");
});

it("listPage returns one page in order with the total over all pages", async () => {
  for (const key of ["c", "a", "d", "b", "e"]) await t.db.insert(settings).values({ key, value: { v: 1 } });
  const page = await listPage(
    t.db,
    settings,
    { where: ne(settings.key, "e"), orderBy: [settings.key], limit: 2, offset: 1 },
    (row) => row.key,
  );
  expect(page).toEqual({ items: ["b", "c"], total: 4, limit: 2, offset: 1 });
  const pastTheEnd = await listPage(
    t.db,
    settings,
    { orderBy: [settings.key], limit: 2, offset: 9 },
    (r) => r.key,
  );
  expect(pastTheEnd).toEqual({ items: [], total: 5, limit: 2, offset: 9 });
  const none = await listPage(
    t.db,
    settings,
    { where: eq(settings.key, "z"), orderBy: [settings.key], limit: 2, offset: 0 },
    (r) => r.key,
  );
  expect(none).toEqual({ items: [], total: 0, limit: 2, offset: 0 });
});

it("findByIdOr404 and deleteByIdOr404 answer 404 for a missing row or one outside the scope", async () => {
  const [token] = await t.db
    .insert(relayTokens)
    .values({ name: "home", tokenHash: "h".repeat(64) })
    .returning();
  if (!token) throw new Error("no row");
  expect((await findByIdOr404(t.db, relayTokens, token.id, "Relay token")).name).toBe("home");
  const outside = eq(relayTokens.name, "office");
  for (const attempt of [
    findByIdOr404(t.db, relayTokens, "no-such-id", "Relay token"),
    findByIdOr404(t.db, relayTokens, token.id, "Relay token", outside),
    deleteByIdOr404(t.db, relayTokens, token.id, "Relay token", outside),
  ]) {
    const err = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(404);
    expect((err as AppError).message).toBe("Relay token not found");
  }
  await deleteByIdOr404(t.db, relayTokens, token.id, "Relay token");
  expect(await t.db.select().from(relayTokens)).toEqual([]);
});

it("listPage and findByIdOr404 decode rows as drizzle's own select does (JSON, booleans, dates, nulls)", async () => {
  await t.db.insert(dids).values([
    { e164: "+15550100001", dnd: true, greeting: { v: 1, source: { kind: "tts", text: "Hi" } } },
    { e164: "+15550100002", label: "Office", twilioSid: "PN123", defaultTargets: { v: 1, deviceIds: ["x"] } },
  ]);
  const drizzleRows = await t.db.select().from(dids).orderBy(dids.e164);
  const page = await listPage(t.db, dids, { orderBy: [dids.e164], limit: 10, offset: 0 }, (row) => row);
  expect(page.items).toEqual(drizzleRows);
  expect(page.items[0]?.createdAt).toBeInstanceOf(Date);
  expect(page.items[1]?.greeting).toBeNull();
  const second = drizzleRows[1];
  if (!second) throw new Error("no row");
  expect(await findByIdOr404(t.db, dids, second.id, "DID")).toEqual(second);
});

it("preparePage builds its SQL once and lists with the values of each call", async () => {
  for (const key of ["c", "a", "d", "b", "e"]) await t.db.insert(settings).values({ key, value: { v: 1 } });
  const prepared = preparePage(
    settings,
    { key: settings.key },
    { where: ne(settings.key, sql.placeholder("skip")), orderBy: [settings.key] },
  );
  const keyOf = (row: { key: string }) => row.key;
  expect(await prepared.list(t.db, { skip: "e" }, { limit: 2, offset: 1 }, keyOf)).toEqual({
    items: ["b", "c"],
    total: 4,
    limit: 2,
    offset: 1,
  });
  expect(await prepared.list(t.db, { skip: "a" }, { limit: 3, offset: 0 }, keyOf)).toEqual({
    items: ["b", "c", "d"],
    total: 4,
    limit: 3,
    offset: 0,
  });
  expect(await prepared.list(t.db, { skip: "a" }, { limit: 2, offset: 9 }, keyOf)).toEqual({
    items: [],
    total: 4,
    limit: 2,
    offset: 9,
  });
});

it("isoFromMs writes what toISOString writes, including leap days, the year ends and invalid times", () => {
  const samples = [
    0, 1, 999, 86_399_999, 86_400_000, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 1_767_225_599_999,
    253_402_300_799_999, 253_402_300_800_000, -1, -62_198_755_200_000, 1.5,
  ];
  for (let i = 0; i < 20_000; i++) samples.push(Math.floor(Math.random() * 253_402_300_800_000));
  for (const ms of samples) expect(isoFromMs(ms)).toBe(new Date(ms).toISOString());
  expect(() => isoFromMs(Number.NaN)).toThrow(RangeError);
});

it("prepareFind finds by id within its scope's values, and answers 404 outside it", async () => {
  const [home, office] = await t.db
    .insert(relayTokens)
    .values([
      { name: "home", tokenHash: "h".repeat(64) },
      { name: "office", tokenHash: "o".repeat(64) },
    ])
    .returning();
  if (!home || !office) throw new Error("no rows");
  const named = prepareFind(
    relayTokens,
    { id: relayTokens.id, name: relayTokens.name },
    eq(relayTokens.name, sql.placeholder("name")),
  );
  expect(await named.findOr404(t.db, home.id, "Relay token", { name: "home" })).toEqual({
    id: home.id,
    name: "home",
  });
  expect(await named.findOr404(t.db, office.id, "Relay token", { name: "office" })).toEqual({
    id: office.id,
    name: "office",
  });
  for (const [id, name] of [
    [home.id, "office"],
    ["no-such-id", "home"],
  ] as const) {
    const err = await named.findOr404(t.db, id, "Relay token", { name }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(404);
    expect((err as AppError).message).toBe("Relay token not found");
  }
  const any = prepareFind(relayTokens, { name: relayTokens.name });
  expect(await any.findOr404(t.db, office.id, "Relay token")).toEqual({ name: "office" });
});

// Database errors from resource writes carry no SQL parameters (which can be
// HA1s, password hashes or secrets) and still map UNIQUE violations to 409.
import { settings } from "@gosip/drizzle";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createTestEdge, type TestEdge } from "../test-support.ts";
import { AppError } from "./errors.ts";
import { DatabaseWriteError, isUniqueViolation, safeWrite, uniqueOr409 } from "./resource-api.ts";

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

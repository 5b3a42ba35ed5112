// The OpenAPI document covers every resource endpoint and shows no secret field.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestEdge, request, type TestEdge } from "../test-support.ts";

let t: TestEdge;
beforeAll(async () => {
  t = await createTestEdge();
});
afterAll(async () => {
  await t.close();
});

it("documents the resource endpoints without secret fields", async () => {
  const res = await request(t, "GET", "/api/openapi.json");
  expect(res.status).toBe(200);
  const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
  const expected: [string, string[]][] = [
    ["/api/users", ["get", "post"]],
    ["/api/users/{id}", ["get", "patch", "delete"]],
    ["/api/devices", ["get", "post"]],
    ["/api/devices/{id}", ["get", "patch", "delete"]],
    ["/api/devices/{id}/reset-password", ["post"]],
    ["/api/dids", ["get", "post"]],
    ["/api/dids/{id}", ["get", "patch", "delete"]],
    ["/api/routes", ["get", "post"]],
    ["/api/routes/order", ["put"]],
    ["/api/routes/{id}", ["get", "patch", "delete"]],
    ["/api/blocklist", ["get", "post"]],
    ["/api/blocklist/{id}", ["get", "patch", "delete"]],
    ["/api/settings", ["get"]],
    ["/api/settings/{key}", ["get", "put"]],
    ["/api/relay/tokens", ["get", "post"]],
    ["/api/relay/tokens/{id}", ["delete"]],
    ["/api/relay/connect", ["get"]],
  ];
  for (const [path, methods] of expected) {
    expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual([...methods].sort());
  }
  const text = JSON.stringify(doc);
  expect(text).not.toMatch(/ha1Md5|ha1Sha256|passwordHash|tokenHash/);
});

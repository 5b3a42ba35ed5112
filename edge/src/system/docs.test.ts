// The OpenAPI document covers every API route; docs and index pages; the error envelope for unknown routes.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestEdge, request, type TestEdge } from "../test-support.ts";

let t: TestEdge;
beforeEach(async () => {
  t = await createTestEdge();
});
afterEach(async () => {
  await t.close();
});

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { summary?: string; responses: Record<string, unknown> }>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
}

async function openapi(): Promise<OpenApiDoc> {
  const res = await request(t, "GET", "/api/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as OpenApiDoc;
}

describe("GET /api/openapi.json", () => {
  it("is an OpenAPI 3.1 document listing the auth, setup and system endpoints with their schemas", async () => {
    const doc = await openapi();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("GoSIP API");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/api/setup",
        "/api/setup/status",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/password",
        "/api/system/health",
      ]),
    );
    expect(doc.paths["/api/auth/login"]?.post?.responses).toHaveProperty("423");
    expect(doc.components?.schemas).toHaveProperty("LoginRequest");
    expect(doc.components?.securitySchemes).toHaveProperty("sessionCookie");
  });

  it("covers every /api route the app serves", async () => {
    const doc = await openapi();
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
      ),
    );
    const served = t.app.routes
      .filter((r) => r.method !== "ALL" && r.path.startsWith("/api/"))
      .filter((r) => r.path !== "/api/openapi.json" && r.path !== "/api/docs")
      .map((r) => `${r.method} ${r.path}`);
    expect(served.length).toBeGreaterThan(5);
    expect(served.filter((r) => !documented.has(r))).toEqual([]);
  });
});

describe("pages", () => {
  it("serves a docs page listing the endpoints, with no external assets", async () => {
    const res = await request(t, "GET", "/api/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const body = await res.text();
    expect(body).toContain("/api/auth/login");
    expect(body).toContain("/api/system/health");
    expect(body).not.toMatch(/<script|<link|https?:\/\/(?!localhost)/);
  });

  it("serves an index page at / that links to the API docs", async () => {
    const res = await request(t, "GET", "/");
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('href="/api/docs"');
    expect(body).toContain('href="/api/openapi.json"');
  });
});

describe("errors", () => {
  it("answers an unknown route with the 404 envelope", async () => {
    const res = await request(t, "GET", "/api/nothing-here");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message: "No such endpoint" } });
  });

  it("answers a body that is not JSON with the 400 envelope, never 500", async () => {
    for (const body of ["{", "not json", '{"email": }']) {
      const res = await t.app.request(
        "http://localhost:8080/api/setup",
        { method: "POST", headers: { "content-type": "application/json", "x-gosip-csrf": "1" }, body },
        { clientIp: "192.0.2.1" },
      );
      expect(res.status).toBe(400);
      const err = ((await res.json()) as { error: { code: string } }).error;
      expect(err.code).toBe("bad_request");
    }
    const wrongType = await t.app.request(
      "http://localhost:8080/api/setup",
      { method: "POST", headers: { "content-type": "text/plain", "x-gosip-csrf": "1" }, body: "hello" },
      { clientIp: "192.0.2.1" },
    );
    // Not JSON at all: 415 Unsupported Media Type, still in the envelope.
    expect(wrongType.status).toBe(415);
    expect(((await wrongType.json()) as { error: { message: string } }).error.message).toBeTruthy();
  });
});

// Oversized and hostile input: a clear error in the envelope, nothing changed, nothing leaked to the logs.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { API_BODY_LIMIT_BYTES } from "../app.ts";
import { CSRF_HEADER } from "../auth/middleware.ts";
import { createTestEdge, createUser, login, request, type TestEdge } from "../test-support.ts";

let t: TestEdge;
beforeEach(async () => {
  t = await createTestEdge();
});
afterEach(async () => {
  await t.close();
});

describe("request body limit", () => {
  it("refuses an oversized setup body with 413 and leaves setup open", async () => {
    const res = await request(t, "POST", "/api/setup", {
      body: { email: "owner@example.com", password: "x".repeat(API_BODY_LIMIT_BYTES) },
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: { code: "payload_too_large", message: "The request body is too large" },
    });
    const status = await request(t, "GET", "/api/setup/status");
    expect(await status.json()).toMatchObject({ needsSetup: true });
  });

  it("refuses an oversized streamed body that declares no length", async () => {
    const admin = await createUser(t, { role: "admin" });
    const session = await login(t, admin.email, admin.password);
    const chunk = new TextEncoder().encode(`{"name":"${"a".repeat(64 * 1024)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await t.app.request(
      "http://localhost:8080/api/devices",
      {
        method: "POST",
        headers: { cookie: session.cookie, "content-type": "application/json", [CSRF_HEADER]: "1" },
        body: stream,
        duplex: "half",
      } as RequestInit,
      { clientIp: "192.0.2.10" },
    );
    expect(res.status).toBe(413);
    const list = await request(t, "GET", "/api/devices", { as: session });
    expect(await list.json()).toMatchObject({ total: 0 });
  });

  it("accepts a body just under the limit (the limit is not a blanket refusal)", async () => {
    const res = await request(t, "POST", "/api/setup", {
      body: { email: "owner@example.com", password: "correct horse battery", pad: "p".repeat(1000) },
    });
    expect(res.status).toBeLessThan(300);
  });
});

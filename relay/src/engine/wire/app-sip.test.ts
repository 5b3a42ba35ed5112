// Parsing the SIP text drachtio-srf writes into `sip` frames (built with its own SipMessage stringifier).
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { serializeMessage } from "../sip/message.ts";
import { parseAppSip, wireHeaderName } from "./app-sip.ts";

const require = createRequire(import.meta.url);
const SrfSipMessage = require("drachtio-srf/lib/sip-parser/message") as new (
  init?: object,
) => { set(h: string, v: string): void; body: string; toString(): string };

describe("parseAppSip", () => {
  it("reads a response as srf writes it: lower-case names, body by the blank line, not Content-Length", () => {
    const m = new SrfSipMessage({ status: 200, reason: "OK" });
    m.set("call-id", "abc");
    m.set("cseq", "1 INVITE");
    m.set("X-Custom", "yes");
    m.set("Content-Type", "text/plain");
    m.body = "héllo ☎"; // srf's Content-Length counts characters, the bytes differ
    const parsed = parseAppSip(Buffer.from(m.toString(), "utf8"));
    expect(parsed.kind).toBe("response");
    if (parsed.kind !== "response") return;
    expect(parsed.status).toBe(200);
    expect(parsed.headers.get("Call-ID")).toBe("abc");
    expect(parsed.headers.get("x-custom")).toBe("yes");
    expect(parsed.headers.has("content-length")).toBe(false);
    expect(parsed.body.toString("utf8")).toBe("héllo ☎");
  });

  it("reads a request stub and rejects garbage start lines", () => {
    const req = parseAppSip(Buffer.from("BYE sip:placeholder SIP/2.0\r\nreason: SIP ;cause=16\r\n\r\n"));
    expect(req).toMatchObject({ kind: "request", method: "BYE", uri: "sip:placeholder" });
    expect(() => parseAppSip(Buffer.from("hello world\r\n\r\n"))).toThrow();
    expect(() => parseAppSip(Buffer.from("SIP/2.0 99 Nope\r\n\r\n"))).toThrow();
    expect(() => parseAppSip(Buffer.from("BYE sip:x SIP/2.0\r\nno colon here\r\n\r\n"))).toThrow();
  });

  it("spells app header names as drachtio-server writes them (capitalizeAfterDash; X- headers untouched)", () => {
    expect(wireHeaderName("user-to-user")).toBe("User-To-User");
    expect(wireHeaderName("x-lower-case")).toBe("x-lower-case");
    expect(wireHeaderName("X-Mixed-case")).toBe("X-Mixed-case");
    const req = parseAppSip(
      Buffer.from(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nuser-to-user: 1234\r\nx-trace: a\r\ncall-id: c1\r\n\r\n",
      ),
    );
    const wire = serializeMessage(req).toString("utf8");
    expect(wire).toContain("\r\nUser-To-User: 1234\r\n");
    expect(wire).toContain("\r\nx-trace: a\r\n");
    expect(wire).toContain("\r\nCall-ID: c1\r\n");
  });
});

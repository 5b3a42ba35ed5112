// The Twilio simulator's REST side through the edge's own Twilio client
// (edge/src/twilio/rest.ts) and plain fetch: auth, paging, every fault kind,
// signed status callbacks, message filters, recordings, SIP, Lookups,
// Intelligence and the Serverless deploy sequence.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TwilioApiError, TwilioNetworkError, TwilioRest } from "../../edge/src/twilio/rest.ts";
import { verifyTwilioSignature } from "../../edge/src/twilio/signature.ts";
import { startTwilioSim, type TwilioSim } from "./server.ts";
import { rfc2822 } from "./state.ts";

let sim: TwilioSim;
let rest: TwilioRest;

interface Received {
  path: string;
  idempotencyToken: string | undefined;
  params: Record<string, string>;
  signature: string | undefined;
  url: string;
}

/** A loopback receiver for webhooks: records each form POST and answers `reply`. */
async function startReceiver(reply = '<?xml version="1.0" encoding="UTF-8"?><Response/>') {
  const received: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      const port = (server.address() as AddressInfo).port;
      received.push({
        path: req.url ?? "",
        params,
        signature: req.headers["x-twilio-signature"] as string | undefined,
        idempotencyToken: req.headers["i-twilio-idempotency-token"] as string | undefined,
        url: `http://127.0.0.1:${port}${req.url ?? ""}`,
      });
      if (req.url?.startsWith("/fail")) {
        res.writeHead(500).end("down");
        return;
      }
      if (req.url?.startsWith("/image")) {
        res.writeHead(200, { "Content-Type": "image/png" }).end(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
        return;
      }
      res.writeHead(200, { "Content-Type": "text/xml" }).end(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { received, base, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function tinyWav(seconds: number): Uint8Array {
  const rate = 8000;
  const samples = rate * seconds;
  const buf = Buffer.alloc(44 + samples * 2);
  buf.write("RIFF", 0);
  buf.writeUInt32LE(36 + samples * 2, 4);
  buf.write("WAVEfmt ", 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write("data", 36);
  buf.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++)
    buf.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return new Uint8Array(buf);
}

const FROM = "+14155550100";

beforeAll(async () => {
  sim = await startTwilioSim({ messageStepMs: 5 });
  rest = new TwilioRest({
    accountSid: sim.state.accountSid,
    authToken: sim.state.authToken,
    apiBase: sim.baseUrl,
  });
  sim.state.addIncomingNumber({ phoneNumber: FROM });
});

afterAll(async () => {
  await sim.close();
});

afterEach(async () => {
  sim.faults.clear();
  await sim.idle();
});

function apiError(err: unknown): TwilioApiError {
  expect(err).toBeInstanceOf(TwilioApiError);
  return err as TwilioApiError;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("auth", () => {
  it("answers 401 with Twilio's error body to a wrong token and to no credentials", async () => {
    const wrong = new TwilioRest({
      accountSid: sim.state.accountSid,
      authToken: "f".repeat(32),
      apiBase: sim.baseUrl,
    });
    const err = apiError(await rejection(wrong.request("GET", "api", wrong.accountPath(".json"))));
    expect(err.status).toBe(401);
    expect(err.code).toBe(20003);
    const res = await fetch(`${sim.baseUrl}/2010-04-01/Accounts/${sim.state.accountSid}.json`);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      code: 20003,
      message: expect.any(String),
      more_info: "https://www.twilio.com/docs/errors/20003",
      status: 401,
    });
  });

  it("accepts an API key and secret; another account's path is 404", async () => {
    const key = sim.state.addApiKey();
    const viaKey = await fetch(`${sim.baseUrl}/2010-04-01/Accounts/${sim.state.accountSid}.json`, {
      headers: { Authorization: `Basic ${btoa(`${key.sid}:${key.secret}`)}` },
    });
    expect(viaKey.status).toBe(200);
    expect(((await viaKey.json()) as { sid: string }).sid).toBe(sim.state.accountSid);
    const other = `AC${"9".repeat(32)}`;
    const err = apiError(
      await rejection(rest.request("GET", "api", `/2010-04-01/Accounts/${other}/Messages.json`)),
    );
    expect(err.status).toBe(404);
    expect(err.code).toBe(20404);
  });

  it("lets the main account act on its subaccount, not the reverse", async () => {
    const sub = sim.state.addSubaccount("Branch office");
    const asMain = await rest.request<{ sid: string }>("GET", "api", `/2010-04-01/Accounts/${sub.sid}.json`);
    expect(asMain.sid).toBe(sub.sid);
    const asSub = new TwilioRest({ accountSid: sub.sid, authToken: sub.auth_token, apiBase: sim.baseUrl });
    const err = apiError(await rejection(asSub.request("GET", "api", rest.accountPath("/Messages.json"))));
    expect(err.status).toBe(404);
  });
});

describe("paging", () => {
  it("walks 3 pages of IncomingPhoneNumbers through next_page_uri", async () => {
    const sub = sim.state.addSubaccount("Paging");
    for (let i = 0; i < 5; i++)
      sim.state.addIncomingNumber({ phoneNumber: `+1303555020${i}`, accountSid: sub.sid });
    const client = new TwilioRest({ accountSid: sub.sid, authToken: sub.auth_token, apiBase: sim.baseUrl });
    type Page = {
      incoming_phone_numbers: Array<{ phone_number: string }>;
      next_page_uri: string | null;
      previous_page_uri: string | null;
      page: number;
      page_size: number;
      start: number;
      end: number;
      first_page_uri: string;
    };
    const seen: string[] = [];
    const pages: Page[] = [];
    let next: string | null = client.accountPath("/IncomingPhoneNumbers.json?PageSize=2");
    while (next) {
      const page: Page = await client.request<Page>("GET", "api", next);
      pages.push(page);
      seen.push(...page.incoming_phone_numbers.map((n) => n.phone_number));
      next = page.next_page_uri;
    }
    expect(pages.map((p) => [p.page, p.start, p.end, p.incoming_phone_numbers.length])).toEqual([
      [0, 0, 1, 2],
      [1, 2, 3, 2],
      [2, 4, 4, 1],
    ]);
    expect(pages[0]?.previous_page_uri).toBeNull();
    expect(pages[2]?.previous_page_uri).toContain("Page=1");
    expect(pages[0]?.first_page_uri).toBe(
      `/2010-04-01/Accounts/${sub.sid}/IncomingPhoneNumbers.json?PageSize=2&Page=0`,
    );
    expect(new Set(seen).size).toBe(5);
  });

  it("defaults PageSize to 50 and caps it at 1000", async () => {
    const def = await rest.request<{ page_size: number }>("GET", "api", rest.accountPath("/Messages.json"));
    expect(def.page_size).toBe(50);
    const big = await rest.request<{ page_size: number }>("GET", "api", rest.accountPath("/Messages.json"), {
      query: { PageSize: 5000 },
    });
    expect(big.page_size).toBe(1000);
  });
});

describe("faults", () => {
  const send = (body: string, timeoutMs?: number) =>
    rest.request<{ sid: string }>("POST", "api", rest.accountPath("/Messages.json"), {
      form: { From: FROM, To: "+15005550123", Body: body },
      ...(timeoutMs ? { timeoutMs } : {}),
    });
  const sentWith = (body: string) => [...sim.state.messages.values()].filter((m) => m.body === body);

  it("429 carries Retry-After and changes nothing; the next call goes through", async () => {
    sim.faults.add({ method: "POST", path: "/Messages.json", times: 1, kind: "429", retryAfterSeconds: 7 });
    const err = apiError(await rejection(send("throttled")));
    expect(err.status).toBe(429);
    expect(err.code).toBe(20429);
    expect(err.retryAfterMs).toBe(7000);
    expect(sentWith("throttled")).toHaveLength(0);
    await send("throttled");
    expect(sentWith("throttled")).toHaveLength(1);
  });

  it("500 and 503 are consumed in order, then the request succeeds", async () => {
    sim.faults.add({ path: "/Messages.json", times: 1, kind: "500" });
    sim.faults.add({ path: "/Messages.json", times: 1, kind: "503" });
    expect(apiError(await rejection(send("flaky"))).status).toBe(500);
    const second = apiError(await rejection(send("flaky")));
    expect(second.status).toBe(503);
    expect(second.retryable).toBe(true);
    await send("flaky");
    expect(sentWith("flaky")).toHaveLength(1);
    const posts = sim.state.requestsTo("POST", "/Messages.json").filter((r) => r.form.Body === "flaky");
    expect(posts.map((r) => [r.status, r.fault])).toEqual([
      [500, "500"],
      [503, "503"],
      [201, undefined],
    ]);
  });

  it("timeout never answers and sends nothing", async () => {
    sim.faults.add({ path: "/Messages.json", times: 1, kind: "timeout" });
    const err = await rejection(send("lost", 300));
    expect(err).toBeInstanceOf(TwilioNetworkError);
    expect((err as TwilioNetworkError).ambiguous).toBe(true);
    expect(sentWith("lost")).toHaveLength(0);
  });

  it("timeout-after-apply sends the message and never answers: the ambiguous case", async () => {
    sim.faults.add({ path: "/Messages.json", times: 1, kind: "timeout-after-apply" });
    const err = await rejection(send("ambiguous", 300));
    expect((err as TwilioNetworkError).ambiguous).toBe(true);
    // The message exists: a client must look it up before retrying.
    const list = await rest.request<{ messages: Array<{ body: string }> }>(
      "GET",
      "api",
      rest.accountPath("/Messages.json"),
      { query: { From: FROM, To: "+15005550123" } },
    );
    expect(list.messages.filter((m) => m.body === "ambiguous")).toHaveLength(1);
  });

  it("reset drops the connection before anything happens", async () => {
    sim.faults.add({ path: /\/Messages\.json$/, times: 1, kind: "reset" });
    const err = await rejection(send("reset"));
    expect(err).toBeInstanceOf(TwilioNetworkError);
    expect(sentWith("reset")).toHaveLength(0);
  });

  it("faults can be added over HTTP for a simulator in another process", async () => {
    const added = await fetch(`${sim.baseUrl}/__sim/faults`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ method: "GET", path: "/IncomingPhoneNumbers.json", times: 2, kind: "503" }),
    });
    expect(added.status).toBe(201);
    for (let i = 0; i < 2; i++)
      expect(
        apiError(await rejection(rest.request("GET", "api", rest.accountPath("/IncomingPhoneNumbers.json"))))
          .status,
      ).toBe(503);
    await rest.request("GET", "api", rest.accountPath("/IncomingPhoneNumbers.json"));
    const bad = await fetch(`${sim.baseUrl}/__sim/faults`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ path: "/x", kind: "418" }),
    });
    expect(bad.status).toBe(400);
    const state = (await (await fetch(`${sim.baseUrl}/__sim/state`)).json()) as { accountSid: string };
    expect(state.accountSid).toBe(sim.state.accountSid);
  });
});

describe("messages", () => {
  it("validates like Twilio and stores nothing on a bad request", async () => {
    const before = sim.state.messages.size;
    const cases: Array<[Record<string, string>, number]> = [
      [{ From: FROM, Body: "x" }, 21604],
      [{ From: FROM, To: "555-1234", Body: "x" }, 21211],
      [{ To: "+15005550123", Body: "x" }, 21603],
      [{ From: "bogus", To: "+15005550123", Body: "x" }, 21212],
      [{ From: "+16465550000", To: "+15005550123", Body: "x" }, 21606],
      [{ From: FROM, To: "+15005550123" }, 21602],
      [{ From: FROM, To: "+15005550123", Body: "x".repeat(1601) }, 21617],
    ];
    for (const [form, code] of cases) {
      const err = apiError(
        await rejection(rest.request("POST", "api", rest.accountPath("/Messages.json"), { form })),
      );
      expect([err.status, err.code]).toEqual([400, code]);
    }
    expect(sim.state.messages.size).toBe(before);
  });

  it("refuses landlines (21614) and non-US senders to US numbers (21612)", async () => {
    sim.state.lookups.set("+15005550131", { lineType: "landline" });
    sim.state.addIncomingNumber({ phoneNumber: "+447700900555" });
    const send = (From: string, To: string) =>
      rest.request("POST", "api", rest.accountPath("/Messages.json"), { form: { From, To, Body: "hi" } });
    expect(apiError(await rejection(send(FROM, "+15005550131"))).code).toBe(21614);
    expect(apiError(await rejection(send("+447700900555", "+15005550132"))).code).toBe(21612);
  });

  it("ends a US long code's message undelivered with 30034 while A2P 10DLC is unregistered", async () => {
    sim.state.a2pRegistered = false;
    try {
      const m = await rest.request<{ sid: string }>("POST", "api", rest.accountPath("/Messages.json"), {
        form: { From: FROM, To: "+15005550133", Body: "unregistered" },
      });
      await sim.idle();
      const after = await rest.request<{ status: string; error_code: number }>(
        "GET",
        "api",
        rest.accountPath(`/Messages/${m.sid}.json`),
      );
      expect([after.status, after.error_code]).toEqual(["undelivered", 30034]);
    } finally {
      sim.state.a2pRegistered = true;
    }
  });

  it("refuses to text a recipient who sent STOP (21610) until START", async () => {
    await sim.deliverInboundMessage({ from: "+15005550999", to: FROM, body: "STOP" });
    const form = { From: FROM, To: "+15005550999", Body: "hello?" };
    const err = apiError(
      await rejection(rest.request("POST", "api", rest.accountPath("/Messages.json"), { form })),
    );
    expect(err.code).toBe(21610);
    await sim.deliverInboundMessage({ from: "+15005550999", to: FROM, body: "START" });
    await rest.request("POST", "api", rest.accountPath("/Messages.json"), { form });
  });

  it("goes queued → sent → delivered, posting each step signed to StatusCallback", async () => {
    const receiver = await startReceiver();
    try {
      const callback = `${receiver.base}/api/webhooks/twilio/sms-status?tag=a%20b`;
      const created = await rest.request<{ sid: string; status: string; date_created: string }>(
        "POST",
        "api",
        rest.accountPath("/Messages.json"),
        { form: { From: FROM, To: "+15005550124", Body: "status please", StatusCallback: callback } },
      );
      expect(created.status).toBe("queued");
      expect(created.sid).toMatch(/^SM[0-9a-f]{32}$/);
      expect(created.date_created).toMatch(
        /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/,
      );
      await sim.idle();
      expect(receiver.received.map((r) => r.params.MessageStatus)).toEqual(["sent", "delivered"]);
      for (const r of receiver.received) {
        expect(r.params.MessageSid).toBe(created.sid);
        expect(await verifyTwilioSignature(sim.state.authToken, callback, r.params, r.signature)).toBe(true);
        expect(await verifyTwilioSignature("0".repeat(32), callback, r.params, r.signature)).toBe(false);
      }
      const fetched = await rest.request<{ status: string; date_sent: string | null }>(
        "GET",
        "api",
        rest.accountPath(`/Messages/${created.sid}.json`),
      );
      expect(fetched.status).toBe("delivered");
      expect(fetched.date_sent).not.toBeNull();
    } finally {
      await receiver.close();
    }
  });

  it("ends undelivered with the configured error code", async () => {
    const receiver = await startReceiver();
    try {
      sim.state.deliveryFailures.set("+15005550125", { status: "undelivered", errorCode: 30003 });
      await rest.request("POST", "api", rest.accountPath("/Messages.json"), {
        form: { From: FROM, To: "+15005550125", Body: "nobody home", StatusCallback: `${receiver.base}/cb` },
      });
      await sim.idle();
      const last = receiver.received.at(-1);
      expect(last?.params.MessageStatus).toBe("undelivered");
      expect(last?.params.ErrorCode).toBe("30003");
    } finally {
      await receiver.close();
    }
  });

  it("fetches MediaUrl (repeated) and serves the media with its content type", async () => {
    const receiver = await startReceiver();
    try {
      const created = await rest.request<{ sid: string; num_media: string }>(
        "POST",
        "api",
        rest.accountPath("/Messages.json"),
        {
          form: {
            From: FROM,
            To: "+15005550126",
            Body: "pictures",
            MediaUrl: [`${receiver.base}/image/1.png`, `${receiver.base}/image/2.png`],
          },
        },
      );
      expect(created.sid).toMatch(/^MM/);
      expect(created.num_media).toBe("2");
      await sim.idle();
      const list = await rest.request<{
        media_list: Array<{ sid: string; content_type: string; uri: string }>;
      }>("GET", "api", rest.accountPath(`/Messages/${created.sid}/Media.json`));
      expect(list.media_list).toHaveLength(2);
      const first = list.media_list[0];
      expect(first?.content_type).toBe("image/png");
      const content = await rest.download(`${sim.baseUrl}${first?.uri.replace(/\.json$/, "")}`);
      expect(content.headers.get("content-type")).toBe("image/png");
      expect([...new Uint8Array(await content.arrayBuffer())]).toEqual([0x89, 0x50, 0x4e, 0x47]);
      await rest.request(
        "DELETE",
        "api",
        rest.accountPath(`/Messages/${created.sid}/Media/${first?.sid}.json`),
      );
      const after = await rest.request<{ media_list: unknown[] }>(
        "GET",
        "api",
        rest.accountPath(`/Messages/${created.sid}/Media.json`),
      );
      expect(after.media_list).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it("filters the list by To, From, DateSent, DateSent< and DateSent>", async () => {
    const sub = sim.state.addSubaccount("Dates");
    sim.state.addIncomingNumber({ phoneNumber: "+17205550100", accountSid: sub.sid });
    const days = [
      "2026-11-28T10:00:00Z",
      "2026-11-29T23:59:00Z",
      "2026-11-30T00:00:00Z",
      "2026-12-01T12:00:00Z",
    ];
    for (const [i, day] of days.entries()) {
      const m = sim.state.createMessage({
        accountSid: sub.sid,
        from: "+17205550100",
        to: i % 2 === 0 ? "+15005550001" : "+15005550002",
        body: day,
        direction: "outbound-api",
        status: "delivered",
      });
      m.date_sent = rfc2822(new Date(day));
      m.date_created = m.date_sent;
    }
    const client = new TwilioRest({ accountSid: sub.sid, authToken: sub.auth_token, apiBase: sim.baseUrl });
    const bodies = async (query: Record<string, string>) =>
      (
        await client.request<{ messages: Array<{ body: string }> }>(
          "GET",
          "api",
          client.accountPath("/Messages.json"),
          {
            query,
          },
        )
      ).messages.map((m) => m.body.slice(0, 10));
    expect(await bodies({})).toEqual(["2026-12-01", "2026-11-30", "2026-11-29", "2026-11-28"]);
    expect(await bodies({ DateSent: "2026-11-29" })).toEqual(["2026-11-29"]);
    expect(await bodies({ "DateSent>": "2026-11-30" })).toEqual(["2026-12-01", "2026-11-30"]);
    expect(await bodies({ "DateSent<": "2026-11-29" })).toEqual(["2026-11-29", "2026-11-28"]);
    expect(
      await bodies({ "DateSent>": "2026-11-29T12:00:00Z", "DateSent<": "2026-11-30T06:00:00Z" }),
    ).toEqual(["2026-11-30", "2026-11-29"]);
    expect(await bodies({ To: "+15005550002" })).toEqual(["2026-12-01", "2026-11-29"]);
    expect(await bodies({ From: "+17205550100", "DateSent<": "2026-11-27" })).toEqual([]);
    const err = apiError(await rejection(bodies({ "DateSent>": "yesterday" })));
    expect(err.status).toBe(400);
  });

  it("posts an inbound MMS, signed, to the number's SMS URL with Twilio's parameters", async () => {
    const receiver = await startReceiver("<Response><Message>Thanks</Message></Response>");
    try {
      const smsUrl = `${receiver.base}/api/webhooks/twilio/sms`;
      sim.state.addIncomingNumber({ phoneNumber: "+14155550150", smsUrl });
      const { message, webhook } = await sim.deliverInboundMessage({
        from: "+15005550777",
        to: "+14155550150",
        body: "photo",
        media: [{ contentType: "image/jpeg", content: new Uint8Array([0xff, 0xd8, 0xff]) }],
      });
      expect(webhook?.body).toContain("Thanks");
      const got = receiver.received[0];
      expect(got?.params).toMatchObject({
        MessageSid: message.sid,
        From: "+15005550777",
        To: "+14155550150",
        Body: "photo",
        NumMedia: "1",
        NumSegments: "1",
        MediaContentType0: "image/jpeg",
        AccountSid: sim.state.accountSid,
      });
      expect(
        await verifyTwilioSignature(sim.state.authToken, smsUrl, got?.params ?? {}, got?.signature),
      ).toBe(true);
      const media = await rest.download(got?.params.MediaUrl0 ?? "");
      expect([...new Uint8Array(await media.arrayBuffer())]).toEqual([0xff, 0xd8, 0xff]);
    } finally {
      await receiver.close();
    }
  });
});

describe("inbound SMS fallback", () => {
  it("tries the SMS fallback URL when the SMS URL answers 500, each POST signed for its own URL", async () => {
    const receiver = await startReceiver("<Response/>");
    try {
      const smsUrl = `${receiver.base}/fail/sms`;
      const fallbackUrl = `${receiver.base}/fallback/sms`;
      sim.state.addIncomingNumber({ phoneNumber: "+14155550160", smsUrl, smsFallbackUrl: fallbackUrl });
      const { webhook } = await sim.deliverInboundMessage({
        from: "+15005550778",
        to: "+14155550160",
        body: "hi",
      });
      expect(webhook?.status).toBe(200);
      expect(receiver.received.map((r) => r.path)).toEqual(["/fail/sms", "/fallback/sms"]);
      const [first, second] = receiver.received;
      expect(
        await verifyTwilioSignature(sim.state.authToken, smsUrl, first?.params ?? {}, first?.signature),
      ).toBe(true);
      expect(
        await verifyTwilioSignature(
          sim.state.authToken,
          fallbackUrl,
          second?.params ?? {},
          second?.signature,
        ),
      ).toBe(true);
      expect(first?.idempotencyToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(sim.state.webhooks.filter((w) => w.params.To === "+14155550160").map((w) => w.status)).toEqual([
        500, 200,
      ]);
    } finally {
      await receiver.close();
    }
  });
});

describe("numbers", () => {
  it("searches available numbers by AreaCode and Contains, buys one, configures and releases it", async () => {
    type Available = {
      available_phone_numbers: Array<{ phone_number: string; capabilities: { SMS: boolean } }>;
    };
    const local = await rest.request<Available>(
      "GET",
      "api",
      rest.accountPath("/AvailablePhoneNumbers/US/Local.json"),
      {
        query: { AreaCode: "212", Contains: "5550105" },
      },
    );
    expect(local.available_phone_numbers.map((n) => n.phone_number)).toEqual(["+12125550105"]);
    const denver = await rest.request<Available>(
      "GET",
      "api",
      rest.accountPath("/AvailablePhoneNumbers/US/Local.json"),
      { query: { InRegion: "CO", PageSize: 3 } },
    );
    expect(denver.available_phone_numbers.map((n) => n.phone_number.slice(0, 5))).toEqual([
      "+1720",
      "+1720",
      "+1720",
    ]);
    const tollFree = await rest.request<Available>(
      "GET",
      "api",
      rest.accountPath("/AvailablePhoneNumbers/US/TollFree.json"),
    );
    expect(tollFree.available_phone_numbers.every((n) => n.phone_number.startsWith("+1833"))).toBe(true);
    const bought = await rest.request<{ sid: string; voice_url: string | null; sms_url: string | null }>(
      "POST",
      "api",
      rest.accountPath("/IncomingPhoneNumbers.json"),
      { form: { PhoneNumber: "+12125550105", VoiceUrl: "https://gosip.example/api/webhooks/twilio/voice" } },
    );
    expect(bought.sid).toMatch(/^PN/);
    expect(bought.voice_url).toBe("https://gosip.example/api/webhooks/twilio/voice");
    const again = apiError(
      await rejection(
        rest.request("POST", "api", rest.accountPath("/IncomingPhoneNumbers.json"), {
          form: { PhoneNumber: "+12125550105" },
        }),
      ),
    );
    expect(again.code).toBe(21422);
    const bad = apiError(
      await rejection(
        rest.request("POST", "api", rest.accountPath(`/IncomingPhoneNumbers/${bought.sid}.json`), {
          form: { SmsUrl: "https://gosip.example/sms", VoiceMethod: "PUT" },
        }),
      ),
    );
    expect(bad.status).toBe(400);
    expect(sim.state.incomingNumbers.get(bought.sid)?.sms_url).toBeNull();
    const updated = await rest.request<{ sms_url: string; voice_fallback_url: string }>(
      "POST",
      "api",
      rest.accountPath(`/IncomingPhoneNumbers/${bought.sid}.json`),
      { form: { SmsUrl: "https://gosip.example/sms", VoiceFallbackUrl: "https://fallback.example/voice" } },
    );
    expect(updated.sms_url).toBe("https://gosip.example/sms");
    expect(updated.voice_fallback_url).toBe("https://fallback.example/voice");
    await rest.request("DELETE", "api", rest.accountPath(`/IncomingPhoneNumbers/${bought.sid}.json`));
    const gone = apiError(
      await rejection(
        rest.request("GET", "api", rest.accountPath(`/IncomingPhoneNumbers/${bought.sid}.json`)),
      ),
    );
    expect(gone.status).toBe(404);
  });
});

describe("calls, recordings, transcriptions", () => {
  it("creates a call (the driver hears of it), redirects it and hangs it up", async () => {
    const created: string[] = [];
    const redirected: string[] = [];
    const onCreated = (c: { sid: string }) => created.push(c.sid);
    const onRedirected = (c: { sid: string }) => redirected.push(c.sid);
    sim.state.events.on("call-created", onCreated);
    sim.state.events.on("call-redirected", onRedirected);
    try {
      const call = await rest.request<{ sid: string; status: string; direction: string }>(
        "POST",
        "api",
        rest.accountPath("/Calls.json"),
        { form: { From: FROM, To: "+15005550200", Url: "https://gosip.example/outbound" } },
      );
      expect([call.status, call.direction]).toEqual(["queued", "outbound-api"]);
      expect(created).toEqual([call.sid]);
      sim.state.updateCall(call.sid, { status: "in-progress" });
      await rest.request("POST", "api", rest.accountPath(`/Calls/${call.sid}.json`), {
        form: { Twiml: "<Response><Say>bye</Say></Response>" },
      });
      expect(redirected).toEqual([call.sid]);
      const done = await rest.request<{ status: string; end_time: string | null; duration: string }>(
        "POST",
        "api",
        rest.accountPath(`/Calls/${call.sid}.json`),
        { form: { Status: "completed" } },
      );
      expect(done.status).toBe("completed");
      expect(done.end_time).not.toBeNull();
      expect(done.duration).toMatch(/^\d+$/);
      const noUrl = apiError(
        await rejection(
          rest.request("POST", "api", rest.accountPath("/Calls.json"), {
            form: { From: FROM, To: "+15005550200" },
          }),
        ),
      );
      expect(noUrl.code).toBe(21205);
    } finally {
      sim.state.events.off("call-created", onCreated);
      sim.state.events.off("call-redirected", onRedirected);
    }
  });

  it("serves a recording's WAV with credentials, lists it by CallSid, deletes it", async () => {
    const call = sim.state.createCall({ from: "+15005550300", to: FROM, direction: "inbound" });
    const wav = tinyWav(1);
    const recording = sim.state.addRecording({ callSid: call.sid, audio: wav, durationSeconds: 1 });
    expect(recording.mediaUrl).toBe(
      `${sim.baseUrl}/2010-04-01/Accounts/${sim.state.accountSid}/Recordings/${recording.sid}`,
    );
    const audio = await rest.download(`${recording.mediaUrl}.wav`);
    expect(audio.headers.get("content-type")).toBe("audio/x-wav");
    const bytes = new Uint8Array(await audio.arrayBuffer());
    expect(Buffer.from(bytes.slice(0, 4)).toString()).toBe("RIFF");
    expect(bytes.length).toBe(wav.length);
    expect((await fetch(`${recording.mediaUrl}.wav`)).status).toBe(401);
    const json = await rest.request<{ sid: string; call_sid: string; duration: string; media_url: string }>(
      "GET",
      "api",
      rest.accountPath(`/Recordings/${recording.sid}.json`),
    );
    expect(json).toMatchObject({ sid: recording.sid, call_sid: call.sid, duration: "1" });
    const byCall = await rest.request<{ recordings: Array<{ sid: string }> }>(
      "GET",
      "api",
      rest.accountPath("/Recordings.json"),
      {
        query: { CallSid: call.sid },
      },
    );
    expect(byCall.recordings.map((r) => r.sid)).toEqual([recording.sid]);
    const t = sim.state.addTranscription({ recordingSid: recording.sid, text: "Call me back" });
    const tr = await rest.request<{ transcription_text: string; recording_sid: string }>(
      "GET",
      "api",
      rest.accountPath(`/Transcriptions/${t.sid}.json`),
    );
    expect(tr).toMatchObject({ transcription_text: "Call me back", recording_sid: recording.sid });
    await rest.request("DELETE", "api", rest.accountPath(`/Recordings/${recording.sid}.json`));
    expect(sim.state.deletedRecordings).toContain(recording.sid);
    expect(((await rejection(rest.download(`${recording.mediaUrl}.wav`))) as TwilioApiError).status).toBe(
      404,
    );
  });
});

describe("SIP", () => {
  it("creates a domain, a credential list with a credential, and maps it for call auth", async () => {
    const domain = await rest.request<{ sid: string; domain_name: string; voice_url: string }>(
      "POST",
      "api",
      rest.accountPath("/SIP/Domains.json"),
      { form: { DomainName: "gosip-test.sip.twilio.com", VoiceUrl: "https://gosip.example/sip-outbound" } },
    );
    expect(domain.sid).toMatch(/^SD/);
    const list = await rest.request<{ sid: string }>(
      "POST",
      "api",
      rest.accountPath("/SIP/CredentialLists.json"),
      {
        form: { FriendlyName: "GoSIP relay" },
      },
    );
    const weak = apiError(
      await rejection(
        rest.request("POST", "api", rest.accountPath(`/SIP/CredentialLists/${list.sid}/Credentials.json`), {
          form: { Username: "relay", Password: "short" },
        }),
      ),
    );
    expect(weak.code).toBe(21612);
    const cred = await rest.request<{ sid: string; username: string; password?: string }>(
      "POST",
      "api",
      rest.accountPath(`/SIP/CredentialLists/${list.sid}/Credentials.json`),
      { form: { Username: "relay", Password: "Sup3rSecretPass" } },
    );
    expect(cred.username).toBe("relay");
    expect(cred.password).toBeUndefined();
    const mapping = await rest.request<{ sid: string }>(
      "POST",
      "api",
      rest.accountPath(`/SIP/Domains/${domain.sid}/Auth/Calls/CredentialListMappings.json`),
      { form: { CredentialListSid: list.sid } },
    );
    expect(mapping.sid).toBe(list.sid);
    const dup = apiError(
      await rejection(
        rest.request(
          "POST",
          "api",
          rest.accountPath(`/SIP/Domains/${domain.sid}/Auth/Calls/CredentialListMappings.json`),
          {
            form: { CredentialListSid: list.sid },
          },
        ),
      ),
    );
    expect(dup.status).toBe(409);
    const found = sim.state.sipDomainByName("GOSIP-TEST.sip.twilio.com");
    expect(found?.sid).toBe(domain.sid);
    expect(sim.state.credentialsForDomain(domain.sid)).toEqual([
      { username: "relay", password: "Sup3rSecretPass", sid: cred.sid },
    ]);
    const contents = await rest.request<{ contents: Array<{ sid: string }> }>(
      "GET",
      "api",
      rest.accountPath(`/SIP/Domains/${domain.sid}/Auth/Calls/CredentialListMappings.json`),
    );
    expect(contents.contents.map((c) => c.sid)).toEqual([list.sid]);
    const taken = apiError(
      await rejection(
        rest.request("POST", "api", rest.accountPath("/SIP/Domains.json"), {
          form: { DomainName: "gosip-test.sip.twilio.com" },
        }),
      ),
    );
    expect(taken.code).toBe(21232);
    const debug = JSON.stringify(await (await fetch(`${sim.baseUrl}/__sim/state`)).json());
    expect(debug).not.toContain("Sup3rSecretPass");
    expect(debug).not.toContain(sim.state.authToken);
  });
});

describe("Lookups, Intelligence", () => {
  it("looks up caller name and line type", async () => {
    sim.state.lookups.set("+15005550400", {
      callerName: "ACME CORP",
      callerType: "BUSINESS",
      lineType: "landline",
    });
    const r = await rest.request<{
      valid: boolean;
      caller_name: { caller_name: string } | null;
      line_type_intelligence: { type: string } | null;
    }>("GET", "lookups", "/v2/PhoneNumbers/+15005550400", {
      query: { Fields: "caller_name,line_type_intelligence" },
    });
    expect(r.valid).toBe(true);
    expect(r.caller_name?.caller_name).toBe("ACME CORP");
    expect(r.line_type_intelligence?.type).toBe("landline");
    const invalid = await rest.request<{ valid: boolean; validation_errors: string[] }>(
      "GET",
      "lookups",
      "/v2/PhoneNumbers/12",
    );
    expect(invalid).toMatchObject({ valid: false, validation_errors: ["NOT_A_NUMBER"] });
  });

  it("transcribes a long recording through Intelligence with the canned text", async () => {
    const call = sim.state.createCall({ from: "+15005550500", to: FROM, direction: "inbound" });
    const recording = sim.state.addRecording({ callSid: call.sid, audio: tinyWav(1), durationSeconds: 150 });
    sim.state.intelligenceTexts.set(recording.sid, "Hi, it's Sam. Please call me back about the invoice.");
    const channel = JSON.stringify({ media_properties: { source_sid: recording.sid } });
    const unknownService = apiError(
      await rejection(
        rest.request("POST", "intelligence", "/v2/Transcripts", {
          form: { ServiceSid: `GA${"1".repeat(32)}`, Channel: channel },
        }),
      ),
    );
    expect(unknownService.status).toBe(404);
    const service = await rest.request<{ sid: string }>("POST", "intelligence", "/v2/Services", {
      form: { UniqueName: "gosip-voicemail" },
    });
    const created = await rest.request<{ sid: string; status: string }>(
      "POST",
      "intelligence",
      "/v2/Transcripts",
      {
        form: { ServiceSid: service.sid, Channel: channel, CustomerKey: "voicemail-1" },
      },
    );
    expect(created.sid).toMatch(/^GT/);
    expect(created.status).toBe("queued");
    let status = created.status;
    for (let i = 0; i < 5 && status !== "completed"; i++)
      status = (
        await rest.request<{ status: string }>("GET", "intelligence", `/v2/Transcripts/${created.sid}`)
      ).status;
    expect(status).toBe("completed");
    const bySource = await rest.request<{ transcripts: Array<{ sid: string }> }>(
      "GET",
      "intelligence",
      "/v2/Transcripts",
      {
        query: { SourceSid: recording.sid },
      },
    );
    expect(bySource.transcripts.map((t) => t.sid)).toEqual([created.sid]);
    const sentences = await rest.request<{ sentences: Array<{ transcript: string }>; meta: { key: string } }>(
      "GET",
      "intelligence",
      `/v2/Transcripts/${created.sid}/Sentences`,
    );
    expect(sentences.meta.key).toBe("sentences");
    expect(sentences.sentences.map((s) => s.transcript).join(" ")).toBe(
      "Hi, it's Sam. Please call me back about the invoice.",
    );
  });
});

describe("Serverless", () => {
  it("runs the deploy sequence: service, environment, function + version upload, build, poll, deployment", async () => {
    type R = { sid: string };
    const service = await rest.request<R & { unique_name: string }>("POST", "serverless", "/v1/Services", {
      form: { UniqueName: "gosip-fallback", FriendlyName: "GoSIP fallback", IncludeCredentials: "true" },
    });
    expect(service.sid).toMatch(/^ZS/);
    const env = await rest.request<R & { domain_name: string }>(
      "POST",
      "serverless",
      `/v1/Services/${service.sid}/Environments`,
      {
        form: { UniqueName: "production", DomainSuffix: "prod" },
      },
    );
    expect(env.sid).toMatch(/^ZE/);
    expect(env.domain_name).toMatch(/-prod\.twil\.io$/);
    const fn = await rest.request<R>("POST", "serverless", `/v1/Services/${service.sid}/Functions`, {
      form: { FriendlyName: "/voice-fallback" },
    });
    expect(fn.sid).toMatch(/^ZH/);
    // The upload is multipart, as @twilio-labs/serverless-api sends it.
    const upload = new FormData();
    upload.append("Path", "/voice-fallback");
    upload.append("Visibility", "protected");
    upload.append(
      "Content",
      new Blob(["exports.handler = (c, e, cb) => cb(null, 'ok');"], { type: "application/javascript" }),
      "voice-fallback.js",
    );
    const versionRes = await fetch(`${sim.baseUrl}/v1/Services/${service.sid}/Functions/${fn.sid}/Versions`, {
      method: "POST",
      headers: { Authorization: `Basic ${btoa(`${sim.state.accountSid}:${sim.state.authToken}`)}` },
      body: upload,
    });
    expect(versionRes.status).toBe(201);
    const version = (await versionRes.json()) as R & { path: string; visibility: string };
    expect(version).toMatchObject({ path: "/voice-fallback", visibility: "protected" });
    const build = await rest.request<R & { status: string }>(
      "POST",
      "serverless",
      `/v1/Services/${service.sid}/Builds`,
      {
        form: {
          FunctionVersions: [version.sid],
          Dependencies: JSON.stringify([{ name: "twilio", version: "5.0.0" }]),
          Runtime: "node22",
        },
      },
    );
    expect(build.status).toBe("building");
    const early = apiError(
      await rejection(
        rest.request(
          "POST",
          "serverless",
          `/v1/Services/${service.sid}/Environments/${env.sid}/Deployments`,
          {
            form: { BuildSid: build.sid },
          },
        ),
      ),
    );
    expect(early.status).toBe(400);
    const polls: string[] = [];
    let status = "building";
    while (status === "building" && polls.length < 10) {
      status = (
        await rest.request<{ status: string }>(
          "GET",
          "serverless",
          `/v1/Services/${service.sid}/Builds/${build.sid}/Status`,
        )
      ).status;
      polls.push(status);
    }
    expect(polls).toEqual(["building", "completed"]);
    const deployment = await rest.request<R & { build_sid: string }>(
      "POST",
      "serverless",
      `/v1/Services/${service.sid}/Environments/${env.sid}/Deployments`,
      { form: { BuildSid: build.sid } },
    );
    expect(deployment.sid).toMatch(/^ZD/);
    const envAfter = await rest.request<{ build_sid: string }>(
      "GET",
      "serverless",
      `/v1/Services/${service.sid}/Environments/${env.sid}`,
    );
    expect(envAfter.build_sid).toBe(build.sid);
    const variable = await rest.request<{ key: string }>(
      "POST",
      "serverless",
      `/v1/Services/${service.sid}/Environments/${env.sid}/Variables`,
      { form: { Key: "EDGE_URL", Value: "https://gosip.example" } },
    );
    expect(variable.key).toBe("EDGE_URL");
    const listed = await rest.request<{
      services: Array<{ unique_name: string }>;
      meta: { key: string; page_size: number };
    }>("GET", "serverless", "/v1/Services");
    expect(listed.meta).toMatchObject({ key: "services", page_size: 50 });
    expect(listed.services.map((s) => s.unique_name)).toContain("gosip-fallback");
    expect(sim.state.serverlessFunctionVersions.get(version.sid)?.content).toContain("exports.handler");
  });
});

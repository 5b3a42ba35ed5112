/**
 * Test fixture: a small HTTP server on 127.0.0.1 that plays the part of Twilio's
 * Messages and Media endpoints for the SMS tests (the full simulator lives in
 * tests/). It checks Basic auth, answers Twilio's JSON shapes and error format,
 * keeps the messages it "sent" (so the list endpoint can find them after an
 * ambiguous attempt), serves MMS media behind a redirect as Twilio does, and can
 * be told how to answer the next sends: a 5xx, a 4xx with a Twilio error code,
 * a reset connection after the request arrived, or no answer at all.
 * Node only; imported by tests, never by the app.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const FIXTURE_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef";
export const FIXTURE_AUTH_TOKEN = "fixture-auth-token-0123456789abcdef";

const sid = (prefix: string) => `${prefix}${randomBytes(16).toString("hex")}`;

/** How the fixture answers one POST Messages.json. */
export type SendBehaviour =
  | { kind: "accept" }
  | { kind: "error"; status: number; code: number; message?: string; retryAfter?: string }
  /** The message is created, then the connection is destroyed before any answer. */
  | { kind: "reset" }
  /** The message is created, and the answer never comes. */
  | { kind: "stall" }
  /** The connection is destroyed before the message is created (Twilio never got it). */
  | { kind: "drop" };

export interface FixtureMessage {
  sid: string;
  account_sid: string;
  from: string;
  to: string;
  body: string;
  status: string;
  direction: string;
  num_media: string;
  date_created: string;
  date_sent: string;
  date_updated: string;
  error_code: number | null;
  error_message: string | null;
  /** Form as posted (MediaUrl may repeat). */
  mediaUrls: string[];
  statusCallback: string | undefined;
}

export interface FixtureMedia {
  messageSid: string;
  mediaSid: string;
  contentType: string;
  bytes: Uint8Array;
}

export interface TwilioFixture {
  baseUrl: string;
  /** Every request the fixture received, in order (method and path). */
  requests: { method: string; path: string; query: URLSearchParams }[];
  /** POST Messages.json attempts, with what the fixture did. */
  sendAttempts: { form: URLSearchParams; outcome: SendBehaviour["kind"] }[];
  /** Messages the fixture created (accepted, reset or stalled sends). */
  messages: FixtureMessage[];
  media: Map<string, FixtureMedia>;
  /** DELETEs of media, by media SID. */
  deletedMedia: string[];
  /** Answers for the next sends, consumed in order; then every send is accepted. */
  nextSends: SendBehaviour[];
  /** Adds an inbound media item and answers its MediaUrl (as Twilio's webhook carries it). */
  addMedia(contentType: string, bytes: Uint8Array, messageSid?: string): string;
  close(): Promise<void>;
}

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace("GMT", "+0000");
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function twilioError(res: ServerResponse, status: number, code: number, message: string, headers = {}): void {
  const text = JSON.stringify({
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  });
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the fixture on a free loopback port; `now` is Twilio's clock (default the real one). */
export async function startTwilioFixture(opts: { now?: () => number } = {}): Promise<TwilioFixture> {
  const clock = opts.now ?? Date.now;
  const state: Omit<TwilioFixture, "baseUrl" | "addMedia" | "close"> = {
    requests: [],
    sendAttempts: [],
    messages: [],
    media: new Map(),
    deletedMedia: [],
    nextSends: [],
  };
  const stalled = new Set<ServerResponse>();
  const account = `/2010-04-01/Accounts/${FIXTURE_ACCOUNT_SID}`;
  const expectedAuth = `Basic ${Buffer.from(`${FIXTURE_ACCOUNT_SID}:${FIXTURE_AUTH_TOKEN}`).toString("base64")}`;

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const path = url.pathname;
      state.requests.push({ method: req.method ?? "", path, query: url.searchParams });
      // The media CDN Twilio redirects to needs no credentials (its URL is the secret).
      const cdn = /^\/cdn\/(ME[0-9a-f]{32})$/.exec(path);
      if (cdn && req.method === "GET") {
        const item = state.media.get(cdn[1] ?? "");
        if (!item) return twilioError(res, 404, 20404, "The requested resource was not found");
        res.writeHead(200, { "Content-Type": item.contentType, "Content-Length": item.bytes.byteLength });
        res.end(item.bytes);
        return;
      }
      if (req.headers.authorization !== expectedAuth) {
        return twilioError(res, 401, 20003, "Authentication Error - invalid username");
      }
      if (path === `${account}/Messages.json` && req.method === "POST") {
        const form = new URLSearchParams(await readBody(req));
        const behaviour = state.nextSends.shift() ?? { kind: "accept" };
        state.sendAttempts.push({ form, outcome: behaviour.kind });
        if (behaviour.kind === "drop") {
          req.socket.destroy();
          return;
        }
        if (behaviour.kind === "error") {
          const headers = behaviour.retryAfter ? { "Retry-After": behaviour.retryAfter } : {};
          return twilioError(res, behaviour.status, behaviour.code, behaviour.message ?? "Error", headers);
        }
        const now = clock();
        const message: FixtureMessage = {
          sid: sid("SM"),
          account_sid: FIXTURE_ACCOUNT_SID,
          from: form.get("From") ?? "",
          to: form.get("To") ?? "",
          body: form.get("Body") ?? "",
          status: "queued",
          direction: "outbound-api",
          num_media: String(form.getAll("MediaUrl").length),
          date_created: rfc2822(now),
          date_sent: rfc2822(now),
          date_updated: rfc2822(now),
          error_code: null,
          error_message: null,
          mediaUrls: form.getAll("MediaUrl"),
          statusCallback: form.get("StatusCallback") ?? undefined,
        };
        state.messages.push(message);
        if (behaviour.kind === "reset") {
          req.socket.destroy();
          return;
        }
        if (behaviour.kind === "stall") {
          stalled.add(res);
          return;
        }
        const { mediaUrls: _m, statusCallback: _s, ...resource } = message;
        return json(res, 201, { ...resource, uri: `${account}/Messages/${message.sid}.json` });
      }
      if (path === `${account}/Messages.json` && req.method === "GET") {
        const to = url.searchParams.get("To");
        const from = url.searchParams.get("From");
        const sentAfter = url.searchParams.get("DateSent>");
        const list = state.messages
          .filter((m) => (!to || m.to === to) && (!from || m.from === from))
          .filter((m) => !sentAfter || Date.parse(m.date_sent) >= Date.parse(sentAfter))
          .reverse()
          .map(({ mediaUrls: _m, statusCallback: _s, ...resource }) => resource);
        return json(res, 200, {
          messages: list,
          page: 0,
          page_size: Number(url.searchParams.get("PageSize") ?? 50),
          first_page_uri: `${account}/Messages.json?PageSize=50&Page=0`,
          next_page_uri: null,
          previous_page_uri: null,
          uri: `${account}/Messages.json`,
        });
      }
      const media =
        /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Messages\/(MM|SM)[0-9a-f]{32}\/Media\/(ME[0-9a-f]{32})(\.json)?$/.exec(
          path,
        );
      if (media) {
        const mediaSid = media[2] ?? "";
        const item = state.media.get(mediaSid);
        if (req.method === "DELETE") {
          if (!item) return twilioError(res, 404, 20404, "The requested resource was not found");
          state.media.delete(mediaSid);
          state.deletedMedia.push(mediaSid);
          res.writeHead(204);
          res.end();
          return;
        }
        if (req.method === "GET") {
          if (!item) return twilioError(res, 404, 20404, "The requested resource was not found");
          // Twilio answers media URLs with a redirect to its CDN.
          res.writeHead(302, { Location: `/cdn/${mediaSid}` });
          res.end();
          return;
        }
      }
      return twilioError(res, 404, 20404, "The requested resource was not found");
    })().catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  // One object: the server reads the same arrays the test reads and pushes to.
  return Object.assign(state, {
    baseUrl,
    addMedia(contentType: string, bytes: Uint8Array, messageSid = sid("MM")): string {
      const mediaSid = sid("ME");
      state.media.set(mediaSid, { messageSid, mediaSid, contentType, bytes });
      return `${baseUrl}${account}/Messages/${messageSid}/Media/${mediaSid}`;
    },
    async close(): Promise<void> {
      for (const res of stalled) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

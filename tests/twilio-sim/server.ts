/**
 * The Twilio simulator's REST server: one loopback HTTP server answering every
 * product GoSIP calls (api 2010-04-01, Lookups v2, Intelligence v2, Serverless
 * v1 and its upload host) on the paths Twilio uses, so TWILIO_API_BASE can point
 * the edge's REST client at it. Basic auth with the account SID and token (or
 * an API key), Twilio's error bodies, injectable faults, a request log, and
 * two debugging endpoints that need no auth: GET /__sim/state and
 * POST/DELETE /__sim/faults (for a simulator in another process).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { constantTimeEqual } from "../../edge/src/twilio/signature.ts";
import { Deliveries, deliverInboundMessage, type InboundDelivery } from "./delivery.ts";
import { FAULT_KINDS, type FaultKind, type FaultRule, Faults } from "./faults.ts";
import { errorBody, notFound, Params, Router, SimError, type SimRequest, type SimResponse } from "./http.ts";
import { registerCoreRoutes } from "./routes/core.ts";
import { registerIntelligenceRoutes } from "./routes/intelligence.ts";
import { registerLookupRoutes } from "./routes/lookups.ts";
import { registerMessageRoutes } from "./routes/messages.ts";
import { registerServerlessRoutes } from "./routes/serverless.ts";
import { registerSipRoutes } from "./routes/sip.ts";
import {
  type AccountResource,
  type HttpMethod,
  type InboundMessageInput,
  SimState,
  type SimStateOptions,
} from "./state.ts";

export interface TwilioSimOptions extends SimStateOptions {
  /** Port to listen on (0, the default, picks a free one). Always 127.0.0.1. */
  port?: number;
  /** Delay between a message's status steps (queued → sent → delivered). Default 20 ms. */
  messageStepMs?: number;
  /** Whether media URLs (recordings, MMS media) demand Basic auth. Default true. */
  mediaAuth?: boolean;
}

export interface TwilioSim {
  state: SimState;
  /** http://127.0.0.1:port — the value for TWILIO_API_BASE. */
  baseUrl: string;
  port: number;
  faults: Faults;
  /** An SMS/MMS from a phone: stored, then POSTed (signed) to the number's SMS URL. */
  deliverInboundMessage(input: InboundMessageInput): Promise<InboundDelivery>;
  /** Resolves once every scheduled message step and status callback has run. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface SimContext {
  state: SimState;
  deliveries: Deliveries;
  mediaAuth: boolean;
}

const MAX_BODY = 25 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new SimError(413, 20001, "Request body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

interface ParsedBody {
  form: Params;
  files: SimRequest["files"];
  json?: unknown;
}

async function parseBody(req: IncomingMessage, raw: Buffer): Promise<ParsedBody> {
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  const files: SimRequest["files"] = new Map();
  if (raw.length === 0) return { form: Params.empty(), files };
  if (type.startsWith("application/x-www-form-urlencoded"))
    return { form: Params.from(new URLSearchParams(raw.toString("utf8"))), files };
  if (type.startsWith("multipart/form-data")) {
    const data = await new Request("http://sim.invalid/", {
      method: "POST",
      headers: { "content-type": req.headers["content-type"] ?? "" },
      body: raw,
    }).formData();
    const map = new Map<string, string[]>();
    for (const [name, value] of data) {
      if (typeof value === "string") map.set(name, [...(map.get(name) ?? []), value]);
      else
        files.set(name, {
          name: value.name,
          type: value.type,
          content: new Uint8Array(await value.arrayBuffer()),
        });
    }
    return { form: new Params(map), files };
  }
  if (type.startsWith("application/json")) {
    try {
      return { form: Params.empty(), files, json: JSON.parse(raw.toString("utf8")) };
    } catch {
      throw new SimError(400, 20001, "Body is not valid JSON");
    }
  }
  throw new SimError(400, 20001, `Unsupported Content-Type ${type || "(none)"}`);
}

/** The account a Basic credential authenticates, or undefined. */
function authenticate(state: SimState, header: string | undefined): AccountResource | undefined {
  const m = /^Basic\s+(.+)$/i.exec(header ?? "");
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  if (user.startsWith("SK")) {
    const key = state.apiKeys.get(user);
    if (!key || !constantTimeEqual(key.secret, secret)) return undefined;
    return state.accounts.get(key.accountSid);
  }
  const account = state.accounts.get(user);
  const token = state.tokenOf(user);
  if (!account || token === undefined || !constantTimeEqual(token, secret)) return undefined;
  return account;
}

function send(res: ServerResponse, response: SimResponse): void {
  const headers: Record<string, string> = { ...("headers" in response ? response.headers : {}) };
  if (response.status === 204) {
    res.writeHead(204, headers).end();
    return;
  }
  if ("bytes" in response) {
    res
      .writeHead(response.status, {
        ...headers,
        "Content-Type": response.contentType,
        "Content-Length": String(response.bytes.length),
      })
      .end(response.bytes);
    return;
  }
  if ("json" in response) {
    const body = JSON.stringify(response.json);
    res
      .writeHead(response.status, {
        ...headers,
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": String(Buffer.byteLength(body)),
      })
      .end(body);
  }
}

function errorResponse(err: SimError): SimResponse {
  return { status: err.status, json: errorBody(err.status, err.code, err.message), headers: err.headers };
}

function faultResponse(kind: FaultKind, retryAfterSeconds: number | undefined): SimResponse {
  if (kind === "429")
    return {
      status: 429,
      json: errorBody(429, 20429, "Too Many Requests"),
      headers: { "Retry-After": String(retryAfterSeconds ?? 1) },
    };
  if (kind === "503")
    return {
      status: 503,
      json: errorBody(503, 20503, "Service Unavailable"),
      headers: retryAfterSeconds === undefined ? {} : { "Retry-After": String(retryAfterSeconds) },
    };
  return { status: 500, json: errorBody(500, 20500, "An internal server error has occurred") };
}

/** Paths whose content is served to whoever has the URL unless mediaAuth is on. */
const MEDIA_PATH = /\/(Recordings\/RE[0-9a-f]{32}(\.wav|\.mp3)?|Media\/ME[0-9a-f]{32})$/;

function faultRuleFromJson(body: unknown): FaultRule {
  if (typeof body !== "object" || body === null) throw new SimError(400, 20001, "fault must be an object");
  const b = body as Record<string, unknown>;
  const kind = b.kind;
  if (typeof kind !== "string" || !FAULT_KINDS.includes(kind as FaultKind))
    throw new SimError(400, 20001, `kind must be one of ${FAULT_KINDS.join(", ")}`);
  let path: string | RegExp;
  if (typeof b.path === "string") path = b.path;
  else if (typeof b.pathRegex === "string") path = new RegExp(b.pathRegex);
  else throw new SimError(400, 20001, "path (a path ending) or pathRegex is required");
  const times = b.times === undefined ? 1 : b.times;
  if (typeof times !== "number") throw new SimError(400, 20001, "times must be a number");
  const rule: FaultRule = { path, times, kind: kind as FaultKind };
  if (typeof b.method === "string") rule.method = b.method;
  if (typeof b.retryAfterSeconds === "number") rule.retryAfterSeconds = b.retryAfterSeconds;
  return rule;
}

/** Every REST route of the simulator (the OpenAPI extract probes it to know what is implemented). */
export function buildRouter(ctx: SimContext): Router {
  const router = new Router();
  registerCoreRoutes(router, ctx);
  registerMessageRoutes(router, ctx);
  registerSipRoutes(router, ctx);
  registerLookupRoutes(router, ctx);
  registerIntelligenceRoutes(router, ctx);
  registerServerlessRoutes(router, ctx);
  return router;
}

/** Starts the simulator on 127.0.0.1 and resolves once it listens. */
export async function startTwilioSim(options: TwilioSimOptions = {}): Promise<TwilioSim> {
  const state = new SimState(options);
  const faults = new Faults();
  const deliveries = new Deliveries(state, options.messageStepMs ?? 20);
  const ctx: SimContext = { state, deliveries, mediaAuth: options.mediaAuth ?? true };
  const router = buildRouter(ctx);

  const sockets = new Set<Socket>();

  async function simEndpoint(method: string, path: string, body: ParsedBody): Promise<SimResponse> {
    if (method === "GET" && path === "/__sim/state") return { status: 200, json: state.snapshot() };
    if (method === "GET" && path === "/__sim/faults")
      return {
        status: 200,
        json: faults
          .pending()
          .map((f) => ({ ...f, path: f.path instanceof RegExp ? f.path.source : f.path })),
      };
    if (method === "POST" && path === "/__sim/faults") {
      const rules = Array.isArray(body.json) ? body.json : [body.json];
      const parsed = rules.map(faultRuleFromJson);
      for (const rule of parsed) faults.add(rule);
      return { status: 201, json: { added: parsed.length } };
    }
    if (method === "DELETE" && path === "/__sim/faults") {
      faults.clear();
      return { status: 204 };
    }
    throw notFound(path);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const method = (req.method ?? "GET").toUpperCase();
    const path = url.pathname;
    const query = Params.from(url.searchParams);
    const entry: SimState["requests"][number] = {
      at: new Date(),
      method,
      path,
      query: query.record(),
      form: {},
      status: undefined,
    };
    let answer = true;
    let response: SimResponse;
    try {
      const raw = await readBody(req);
      const body = await parseBody(req, raw);
      entry.form = body.form.record();
      if (path.startsWith("/__sim/")) {
        send(res, await simEndpoint(method, path, body));
        return;
      }
      state.log(state.requests, entry);
      const fault = faults.take(method, path);
      if (fault) entry.fault = fault.kind;
      if (fault?.kind === "reset") {
        req.socket.resetAndDestroy();
        return;
      }
      if (fault?.kind === "timeout") return; // the socket stays open until the client gives up
      if (fault && fault.kind !== "timeout-after-apply") {
        response = faultResponse(fault.kind, fault.retryAfterSeconds);
      } else {
        answer = fault === undefined;
        response = await route(method, path, query, body, req.headers.authorization);
      }
    } catch (err) {
      if (err instanceof SimError) response = errorResponse(err);
      else {
        console.error("twilio-sim: handler failed", err);
        response = { status: 500, json: errorBody(500, 20500, "An internal server error has occurred") };
      }
    }
    if (!answer) return;
    entry.status = response.status;
    send(res, response);
  }

  async function route(
    method: string,
    path: string,
    query: Params,
    body: ParsedBody,
    authorization: string | undefined,
  ): Promise<SimResponse> {
    const matched = router.match(method, path);
    const account = authenticate(state, authorization);
    const isMedia = MEDIA_PATH.test(path);
    if (!account && !(isMedia && !ctx.mediaAuth && method === "GET"))
      throw new SimError(401, 20003, "Authentication Error - invalid username", {
        "WWW-Authenticate": 'Basic realm="Twilio API"',
      });
    if (matched === undefined) throw notFound(path);
    if (matched === "method") throw new SimError(405, 20004, `Method not allowed: ${method}`);
    const acting = account ?? state.accounts.get(matched.params.AccountSid ?? "");
    if (!acting) throw notFound(path);
    const pathAccount = matched.params.AccountSid;
    if (pathAccount !== undefined && pathAccount !== acting.sid) {
      // The main account may act on its subaccounts; nobody else on anyone's.
      const target = state.accounts.get(pathAccount);
      if (!target || target.owner_account_sid !== acting.sid || acting.sid !== state.accountSid)
        throw notFound(path);
    }
    const subject = pathAccount !== undefined ? (state.accounts.get(pathAccount) ?? acting) : acting;
    return matched.handler({
      method: method as HttpMethod,
      path,
      params: matched.params,
      query,
      form: body.form,
      files: body.files,
      account: subject,
      state,
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error("twilio-sim: request failed", err);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  state.baseUrl = baseUrl;

  return {
    state,
    baseUrl,
    port,
    faults,
    deliverInboundMessage: (input) => deliverInboundMessage(state, input),
    idle: () => deliveries.idle(),
    async close() {
      deliveries.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

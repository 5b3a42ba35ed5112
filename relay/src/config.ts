/**
 * Relay configuration: every variable of `npm run relay`, validated once at start.
 * The SIP engine's own variables (SIP_PORT, ENGINE_SECRET, …) are read by
 * engine/config.ts; this file adds the PBX's (edge link, media, Twilio next hop,
 * metrics). A wrong value stops the process with a message naming the variable.
 */
import { isIP } from "node:net";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "./engine/config.ts";

function int(name: string, fallback: number, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({
          code: "custom",
          message: `${name} must be a whole number ${min}-${max} (got "${v}")`,
        });
        return z.NEVER;
      }
      return n;
    });
}

function optionalIp(name: string, what: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return undefined;
      if (isIP(v) === 0) {
        ctx.addIssue({ code: "custom", message: `${name} must be ${what} (got "${v}")` });
        return z.NEVER;
      }
      return v;
    });
}

/** host:port, IPv6 hosts in brackets. */
function hostPort(name: string, example: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return undefined;
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v.trim());
      const port = m ? Number(m[2]) : 0;
      if (!m?.[1] || port < 1 || port > 65535) {
        ctx.addIssue({ code: "custom", message: `${name} must be host:port, e.g. ${example} (got "${v}")` });
        return z.NEVER;
      }
      return { host: m[1].replace(/^\[|\]$/g, ""), port };
    });
}

const schema = z.object({
  EDGE_URL: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return undefined;
      try {
        const u = new URL(v);
        if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) throw new Error("scheme");
        return u.toString().replace(/\/+$/, "");
      } catch {
        ctx.addIssue({
          code: "custom",
          message: `EDGE_URL must be the edge's base URL, e.g. https://pbx.example.com (got "${v}")`,
        });
        return z.NEVER;
      }
    }),
  RELAY_TOKEN: z.string().optional(),
  RELAY_DATA_DIR: z.string().optional(),
  RECORDING_DIR: z.string().optional(),
  RTP_PORT_MIN: int("RTP_PORT_MIN", 30000, 1024, 65535),
  RTP_PORT_MAX: int("RTP_PORT_MAX", 30200, 1024, 65535),
  RTP_ADDRESS: optionalIp("RTP_ADDRESS", "the IP address rtpengine binds for media, e.g. 192.168.1.10"),
  RTP_EXTERNAL_ADDRESS: optionalIp("RTP_EXTERNAL_ADDRESS", "the public IP address put in SDP for Twilio"),
  RTPENGINE_BIN: z.string().optional(),
  RTPENGINE_NG: hostPort("RTPENGINE_NG", "127.0.0.1:22222"),
  TWILIO_SIP_PROXY: hostPort("TWILIO_SIP_PROXY", "sip.ashburn.twilio.com:5060"),
  RELAY_METRICS_PORT: int("RELAY_METRICS_PORT", 9464, 0, 65535),
  RELAY_METRICS_HOST: optionalIp("RELAY_METRICS_HOST", "an IP address to serve metrics on"),
  NAT_EXPIRES: int("NAT_EXPIRES", 120, 60, 3600),
  KEEPALIVE_INTERVAL: int("KEEPALIVE_INTERVAL", 30, 0, 3600),
  RING_TIMEOUT: int("RING_TIMEOUT", 30, 5, 300),
  SIP_EXTERNAL_ADDRESS: z.string().optional(),
});

export interface RelayConfig {
  /** Edge base URL; undefined runs standalone (local cache, events kept in the outbox). */
  edgeUrl: string | undefined;
  relayToken: string | undefined;
  dataDir: string;
  databaseUrl: string;
  recordingDir: string;
  rtp: {
    portMin: number;
    portMax: number;
    /** Bind address for media; undefined: the engine's reachable SIP address. */
    address: string | undefined;
    externalAddress: string | undefined;
    binary: string | undefined;
    /** An rtpengine already running elsewhere (Docker Compose); undefined: start one as a child. */
    external: { host: string; port: number } | undefined;
  };
  twilioSipProxy: string | undefined;
  /** 0 disables the metrics listener. */
  metricsPort: number;
  metricsHost: string;
  natExpires: number;
  keepaliveIntervalMs: number;
  ringTimeoutSeconds: number;
}

function joinHostPort(hp: { host: string; port: number }): string {
  return `${hp.host.includes(":") ? `[${hp.host}]` : hp.host}:${hp.port}`;
}

/** The relay's variables from the environment; throws ConfigError listing every problem. */
export function loadRelayConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const r = schema.safeParse(env);
  if (!r.success)
    throw new ConfigError(
      r.error.issues.map((i) => i.message),
      "relay",
    );
  const c = r.data;
  const problems: string[] = [];
  if (c.EDGE_URL && !c.RELAY_TOKEN)
    problems.push("RELAY_TOKEN is required with EDGE_URL: create one in the admin UI (Relay tokens)");
  if (c.RTP_PORT_MAX - c.RTP_PORT_MIN < 3)
    problems.push(`RTP_PORT_MAX must be above RTP_PORT_MIN (got ${c.RTP_PORT_MIN}-${c.RTP_PORT_MAX})`);
  if (problems.length > 0) throw new ConfigError(problems, "relay");
  const dataDir = (c.RELAY_DATA_DIR ?? "./data/relay").replace(/\/+$/, "");
  return {
    edgeUrl: c.EDGE_URL,
    relayToken: c.RELAY_TOKEN,
    dataDir,
    databaseUrl: `file:${join(dataDir, "relay.db")}`,
    recordingDir: c.RECORDING_DIR ?? join(dataDir, "recordings"),
    rtp: {
      portMin: c.RTP_PORT_MIN,
      portMax: c.RTP_PORT_MAX,
      address: c.RTP_ADDRESS,
      externalAddress: c.RTP_EXTERNAL_ADDRESS ?? (c.SIP_EXTERNAL_ADDRESS || undefined),
      binary: c.RTPENGINE_BIN,
      external: c.RTPENGINE_NG,
    },
    twilioSipProxy: c.TWILIO_SIP_PROXY ? joinHostPort(c.TWILIO_SIP_PROXY) : undefined,
    metricsPort: c.RELAY_METRICS_PORT,
    metricsHost: c.RELAY_METRICS_HOST ?? "127.0.0.1",
    natExpires: c.NAT_EXPIRES,
    keepaliveIntervalMs: c.KEEPALIVE_INTERVAL * 1000,
    ringTimeoutSeconds: c.RING_TIMEOUT,
  };
}

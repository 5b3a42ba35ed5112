// Engine configuration from the environment, validated once at start with zod. Errors name the variable and
// say how to fix it.
import { isIP } from "node:net";
import { z } from "zod";
import type { EngineOptions } from "./index.ts";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function port(name: string, fallback: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) {
        ctx.addIssue({ code: "custom", message: `${name} must be a port number 0-65535 (got "${v}")` });
        return z.NEVER;
      }
      return n;
    });
}

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split("/");
  if (addr === undefined || bits === undefined || extra !== undefined) return false;
  const v = isIP(addr);
  const n = Number(bits);
  return v !== 0 && Number.isInteger(n) && n >= 0 && n <= (v === 4 ? 32 : 128);
}

const schema = z.object({
  ENGINE_HOST: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return "127.0.0.1";
      if (isIP(v) === 0) {
        ctx.addIssue({ code: "custom", message: `ENGINE_HOST must be an IP address to bind (got "${v}")` });
        return z.NEVER;
      }
      return v;
    }),
  ENGINE_PORT: port("ENGINE_PORT", 9022),
  ENGINE_SECRET: z
    .string({
      error: "ENGINE_SECRET is required: set it to the shared secret drachtio-srf apps connect with",
    })
    .min(8, { error: "ENGINE_SECRET must be at least 8 characters: use a long random value" }),
  SIP_HOST: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return "0.0.0.0";
      if (isIP(v) === 0) {
        ctx.addIssue({
          code: "custom",
          message: `SIP_HOST must be an IP address to bind, e.g. 0.0.0.0 (got "${v}")`,
        });
        return z.NEVER;
      }
      return v;
    }),
  SIP_PORT: port("SIP_PORT", 5060),
  SIP_EXTERNAL_ADDRESS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return undefined;
      if (isIP(v) === 0) {
        ctx.addIssue({
          code: "custom",
          message: `SIP_EXTERNAL_ADDRESS must be the public IP address of this host (got "${v}")`,
        });
        return z.NEVER;
      }
      return v;
    }),
  SIP_LOCAL_NETWORKS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return undefined;
      const list = v
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      const bad = list.filter((s) => !isCidr(s));
      if (bad.length > 0) {
        ctx.addIssue({
          code: "custom",
          message: `SIP_LOCAL_NETWORKS must be comma-separated CIDRs like 192.168.0.0/16,10.0.0.0/8 (bad: ${bad.join(", ")})`,
        });
        return z.NEVER;
      }
      return list;
    }),
  /** "0"/"false" skips the start-up JIT warm-up (warm-up.ts); for comparisons and very small machines. */
  ENGINE_WARM_UP: z
    .string()
    .optional()
    .transform((v) => !(v !== undefined && ["0", "false", "no", "off"].includes(v.toLowerCase()))),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === "") return "info";
      const l = v.toLowerCase();
      if (!(LOG_LEVELS as readonly string[]).includes(l)) {
        ctx.addIssue({
          code: "custom",
          message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")} (got "${v}")`,
        });
        return z.NEVER;
      }
      return l;
    }),
});

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly problems: string[],
    subject = "engine",
  ) {
    super(`invalid ${subject} configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

/** Engine options from environment variables; throws ConfigError listing every problem. */
export function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): EngineOptions {
  const r = schema.safeParse(env);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => i.message));
  const c = r.data;
  return {
    adminHost: c.ENGINE_HOST,
    adminPort: c.ENGINE_PORT,
    secret: c.ENGINE_SECRET,
    sipHost: c.SIP_HOST,
    sipPort: c.SIP_PORT,
    externalAddress: c.SIP_EXTERNAL_ADDRESS,
    localNetworks: c.SIP_LOCAL_NETWORKS,
    logLevel: c.LOG_LEVEL,
    warmUp: c.ENGINE_WARM_UP,
  };
}

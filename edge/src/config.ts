/**
 * Edge configuration, validated once at start. A wrong variable stops the
 * process with a message naming it and saying how to fix it.
 */
import { z } from "zod";

const configSchema = z.object({
  // 0 binds any free port (tests start several edges side by side).
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default("0.0.0.0"),
  GOSIP_DATA_DIR: z.string().default("./data"),
  DATABASE_URL: z.string().optional(),
  DATABASE_AUTH_TOKEN: z.string().optional(),
  PUBLIC_URL: z
    .url({ message: "must be the base URL browsers and Twilio use, e.g. https://pbx.example.com" })
    .optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  // Override the Twilio credentials saved by the setup wizard (Workers: secrets of the same names).
  TWILIO_ACCOUNT_SID: z
    .string()
    .regex(/^AC[0-9a-f]{32}$/, { message: "must be an Account SID: AC followed by 32 hex digits" })
    .optional(),
  TWILIO_AUTH_TOKEN: z.string().min(1, { message: "must not be empty when set" }).optional(),
  // Every Twilio REST call goes to this base URL instead of https://<product>.twilio.com (the simulator).
  TWILIO_API_BASE: z
    .url({ message: "must be a base URL like http://127.0.0.1:4010 (the Twilio simulator)" })
    .optional(),
  // Postmark's HTTP API base (tests: a local server); default Postmark's own.
  POSTMARK_API_BASE: z
    .url({ message: "must be a base URL like http://127.0.0.1:4020 (a local Postmark stand-in)" })
    .optional(),
});

export interface EdgeConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string;
  databaseAuthToken: string | undefined;
  /** Base URL used by Twilio and browsers, without a trailing slash. */
  publicUrl: string;
  /** Cookies get the Secure attribute when the public URL is https. */
  secureCookies: boolean;
  logLevel: "debug" | "info" | "warn" | "error";
  twilio: {
    /** From TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN: both set, they win over the `twilio` setting. */
    accountSid: string | undefined;
    authToken: string | undefined;
    /** TWILIO_API_BASE without a trailing slash; undefined means Twilio's own hosts. */
    apiBase: string | undefined;
  };
  /** Base URL of Postmark's email API, without a trailing slash (POSTMARK_API_BASE). */
  postmarkApiBase: string;
}

/** Postmark's HTTP API, used unless POSTMARK_API_BASE points elsewhere. */
export const POSTMARK_DEFAULT_BASE = "https://api.postmarkapp.com";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parse environment variables (process.env on Node, bindings on Workers) into EdgeConfig. */
export function loadConfig(env: Record<string, string | undefined>): EdgeConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  if ((e.TWILIO_ACCOUNT_SID === undefined) !== (e.TWILIO_AUTH_TOKEN === undefined)) {
    throw new ConfigError(
      "Invalid configuration:\n  TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: set both (they override the setup wizard's credentials) or neither",
    );
  }
  const dataDir = e.GOSIP_DATA_DIR.replace(/\/+$/, "");
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, "");
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    databaseUrl: e.DATABASE_URL ?? `file:${dataDir}/gosip.db`,
    databaseAuthToken: e.DATABASE_AUTH_TOKEN,
    publicUrl,
    secureCookies: publicUrl.startsWith("https:"),
    logLevel: e.LOG_LEVEL,
    twilio: {
      accountSid: e.TWILIO_ACCOUNT_SID,
      authToken: e.TWILIO_AUTH_TOKEN,
      apiBase: e.TWILIO_API_BASE?.replace(/\/+$/, ""),
    },
    postmarkApiBase: (e.POSTMARK_API_BASE ?? POSTMARK_DEFAULT_BASE).replace(/\/+$/, ""),
  };
}

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
}

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
  };
}

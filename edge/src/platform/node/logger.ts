/**
 * The Node logger: pino, one JSON line per entry on stdout, with secrets
 * redacted wherever they appear in logged objects (defence in depth: callers
 * already avoid logging them).
 */
import pino from "pino";
import type { EdgeConfig } from "../../config.ts";
import { SECRET_LOG_KEYS } from "../shared.ts";
import type { Logger } from "../types.ts";

/** Redaction paths: each secret key at the top level and one or two levels down. */
export const redactPaths = SECRET_LOG_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export function createNodeLogger(
  level: EdgeConfig["logLevel"],
  destination?: pino.DestinationStream,
): Logger {
  const log = pino(
    { level, base: { service: "gosip-edge" }, redact: { paths: redactPaths, censor: "[redacted]" } },
    destination ?? pino.destination(1),
  );
  return {
    debug: (data, msg) => log.debug(data, msg),
    info: (data, msg) => log.info(data, msg),
    warn: (data, msg) => log.warn(data, msg),
    error: (data, msg) => log.error(data, msg),
  };
}

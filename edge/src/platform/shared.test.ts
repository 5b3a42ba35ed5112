/** The JSON console logger shared by the Node and Workers entries. */
import { describe, expect, it } from "vitest";
import { createJsonLogger } from "./shared.ts";

function capture(level: "debug" | "info" | "warn" | "error") {
  const lines: { level: string; entry: Record<string, unknown> }[] = [];
  const logger = createJsonLogger(level, { runtime: "workers" }, (lvl, line) =>
    lines.push({ level: lvl, entry: JSON.parse(line) as Record<string, unknown> }),
  );
  return { logger, lines };
}

describe("createJsonLogger", () => {
  it("writes one JSON object per message with level, message, base fields and data", () => {
    const { logger, lines } = capture("debug");
    logger.info({ userId: "u1" }, "signed in");
    expect(lines).toHaveLength(1);
    expect(lines[0]?.entry).toMatchObject({
      level: "info",
      msg: "signed in",
      runtime: "workers",
      userId: "u1",
    });
    expect(Number.isNaN(Date.parse(String(lines[0]?.entry.time)))).toBe(false);
  });

  it("drops messages below the configured level", () => {
    const { logger, lines } = capture("warn");
    logger.debug({}, "noise");
    logger.info({}, "still noise");
    logger.warn({ scope: "ip" }, "locked out");
    logger.error({ err: "boom" }, "failed");
    expect(lines.map((l) => l.entry.msg)).toEqual(["locked out", "failed"]);
    expect(lines.map((l) => l.level)).toEqual(["warn", "error"]);
  });

  it("redacts secrets wherever they appear in the logged data", () => {
    const { logger, lines } = capture("info");
    logger.info(
      {
        password: "hunter22",
        user: { email: "a@example.test", token: "t0k3n" },
        headers: [{ cookie: "s=1" }],
      },
      "careless caller",
    );
    const text = JSON.stringify(lines[0]?.entry);
    expect(text).not.toMatch(/hunter22|t0k3n|s=1/);
    expect(lines[0]?.entry).toMatchObject({
      password: "[redacted]",
      user: { email: "a@example.test", token: "[redacted]" },
      headers: [{ cookie: "[redacted]" }],
    });
  });
});

// The Node (pino) logger redacts every key of the one shared SECRET_LOG_KEYS list, as the Workers JSON logger does.
import { Writable } from "node:stream";
import { expect, it } from "vitest";
import { SECRET_LOG_KEYS } from "../shared.ts";
import { createNodeLogger } from "./logger.ts";

it("redacts each shared secret key at the top level and nested", () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createNodeLogger("info", sink);
  for (const key of SECRET_LOG_KEYS) {
    logger.info({ [key]: `top-${key}-value`, nested: { [key]: `nested-${key}-value` } }, `probe ${key}`);
  }
  expect(lines).toHaveLength(SECRET_LOG_KEYS.length);
  for (const [i, key] of SECRET_LOG_KEYS.entries()) {
    const line = lines[i] ?? "";
    expect(line).toContain(`probe ${key}`);
    expect(line).not.toContain(`top-${key}-value`);
    expect(line).not.toContain(`nested-${key}-value`);
    expect(line).toContain("[redacted]");
  }
});

// Bad webhook bodies (fixtures/bad/*.json), each posted signed to a real edge: the ones
// no Twilio call could send are refused with 400 and store nothing; the odd-but-real ones
// (unknown DID, a From that is no number) get the exact TwiML in the fixture, byte for
// byte, and the CDR it names.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cdrs, settings } from "@gosip/drizzle";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import type { TestEdge } from "../test-support.ts";
import { createVoiceEdge, postWebhook, seedVoice } from "./testing.ts";

const BAD = join(import.meta.dirname, "fixtures", "bad");

const fixtureSchema = z.object({
  description: z.string().min(1),
  path: z.string().startsWith("/api/webhooks/twilio/"),
  rejectAnonymous: z.boolean().optional(),
  params: z.record(z.string(), z.string()),
  expect: z.object({
    status: z.union([z.literal(200), z.literal(400)]),
    twiml: z.string().optional(),
    cdrs: z.int().optional(),
    cdr: z.record(z.string(), z.union([z.string(), z.null()])).optional(),
  }),
});

const files = readdirSync(BAD).filter((f) => f.endsWith(".json"));

let t: TestEdge;
beforeEach(async () => {
  t = await createVoiceEdge();
  await seedVoice(t);
});
afterEach(() => t.close());

describe("bad voice webhook fixtures", () => {
  it("there are fixtures to check", () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  for (const file of files) {
    const fixture = fixtureSchema.parse(JSON.parse(readFileSync(join(BAD, file), "utf8")));
    it(`${file}: ${fixture.description}`, async () => {
      if (fixture.rejectAnonymous)
        await t.db.insert(settings).values({ key: "callScreening", value: { v: 1, rejectAnonymous: true } });
      const res = await postWebhook(t, fixture.path, fixture.params);
      expect(res.status).toBe(fixture.expect.status);
      const body = await res.text();
      if (fixture.expect.status === 400)
        expect(JSON.parse(body)).toMatchObject({ error: { code: "validation_failed" } });
      if (fixture.expect.twiml !== undefined) expect(body).toBe(fixture.expect.twiml);
      const rows = await t.db.select().from(cdrs);
      if (fixture.expect.cdrs !== undefined) expect(rows).toHaveLength(fixture.expect.cdrs);
      if (fixture.expect.cdr) {
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject(fixture.expect.cdr);
      }
    });
  }
});

// The voice TwiML, decision by decision, against golden files (fixtures/good/*.xml), byte
// for byte: ring (simultaneous and sequential), forward, voicemail, play then hang up,
// reject busy / not in service, and ringing without a reachable relay. The relay password,
// the DID's greeting and the played message carry <&>"' to prove every value is escaped.
// UPDATE_GOLDEN=1 rewrites the files (review the diff before committing).
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { dids } from "@gosip/drizzle";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RoutingDecision } from "../routing/types.ts";
import type { TestEdge } from "../test-support.ts";
import { twiml } from "../twiml/builder.ts";
import {
  decisionTwiml,
  type InboundCallContext,
  MAX_SIP_NOUNS,
  relaySipUri,
  relayTargetOf,
} from "./render.ts";
import { createVoiceEdge } from "./testing.ts";
import { parseDialStep } from "./urls.ts";

const GOOD = join(import.meta.dirname, "fixtures", "good");
const TRICKY = `Smith & Sons' <"after hours"> line`;

let t: TestEdge;
let didId: string;
beforeEach(async () => {
  t = await createVoiceEdge();
  const [row] = await t.db
    .insert(dids)
    .values({
      id: "did-golden",
      e164: "+15550001000",
      label: TRICKY,
      greeting: { v: 1, source: { kind: "tts", text: `You reached ${TRICKY}. Leave a message.` } },
    })
    .returning({ id: dids.id });
  didId = row?.id ?? "";
});
afterEach(() => t.close());

const relay = relayTargetOf({
  publicSipUri: "sip:relay.example.net:5060;transport=udp",
  inboundUsername: "twilio-in",
  inboundPassword: `p<&>"'w`,
});

function ctx(over: Partial<InboundCallContext> = {}): InboundCallContext {
  return {
    callSid: "CA0123456789abcdef0123456789abcdef",
    cdrId: "cdr-golden-1",
    didId,
    didE164: "+15550001000",
    callerE164: "+15557654321",
    userId: "user-alice",
    relay,
    ...over,
  };
}

const base = { spamScore: null, ruleId: null, trace: [] };
const targets = [
  { deviceId: "dev-desk", extension: "101" },
  { deviceId: "dev-soft", extension: "102" },
  { deviceId: "dev-bob", extension: "201" },
];

const cases: { name: string; decision: RoutingDecision; ctx?: Partial<InboundCallContext> }[] = [
  {
    name: "ring-simultaneous",
    decision: {
      ...base,
      action: "ring",
      targets: targets.slice(0, 2),
      strategy: "simultaneous",
      timeoutSeconds: 30,
      onNoAnswer: "voicemail",
      record: false,
    },
  },
  {
    name: "ring-sequential",
    decision: {
      ...base,
      action: "ring",
      targets,
      strategy: "sequential",
      timeoutSeconds: 15,
      onNoAnswer: "hangup",
      record: false,
    },
  },
  {
    name: "forward-original-caller",
    decision: {
      ...base,
      action: "forward",
      to: "+15559990000",
      callerId: "original",
      timeoutSeconds: 25,
      onNoAnswer: "voicemail",
    },
  },
  {
    name: "forward-withheld-caller",
    decision: {
      ...base,
      action: "forward",
      to: "+15559990000",
      callerId: "original",
      timeoutSeconds: 25,
      onNoAnswer: "hangup",
    },
    ctx: { callerE164: null },
  },
  { name: "voicemail", decision: { ...base, action: "voicemail", reason: "dnd" } },
  {
    name: "voicemail-shared-mailbox",
    decision: { ...base, action: "voicemail", reason: "no_targets" },
    ctx: { didId: null, userId: null },
  },
  {
    name: "play-message",
    decision: {
      ...base,
      action: "playMessage",
      message: { kind: "tts", text: `We are closed. ${TRICKY}`, voice: "Polly.Joanna" },
    },
  },
  { name: "reject-busy", decision: { ...base, action: "reject", reason: "blocklist", rejectAs: "busy" } },
  {
    name: "reject-not-in-service",
    decision: { ...base, action: "reject", reason: "rule", rejectAs: "disconnected" },
  },
  {
    name: "ring-without-relay",
    decision: {
      ...base,
      action: "ring",
      targets: targets.slice(0, 1),
      strategy: "simultaneous",
      timeoutSeconds: 30,
      onNoAnswer: "voicemail",
      record: false,
    },
    ctx: { relay: null },
  },
];

describe("voice TwiML golden files", () => {
  for (const c of cases) {
    it(`${c.name}.xml`, async () => {
      const xml = twiml(await decisionTwiml(t.deps, ctx(c.ctx), c.decision));
      const file = join(GOOD, `${c.name}.xml`);
      if (process.env.UPDATE_GOLDEN === "1") await writeFile(file, `${xml}\n`);
      expect(existsSync(file), `${file} is missing (UPDATE_GOLDEN=1 writes it)`).toBe(true);
      expect(`${xml}\n`).toBe(await readFile(file, "utf8"));
    });
  }

  it("escapes what callers and admins typed: no raw <&>\"' from the values reaches the XML", async () => {
    for (const c of cases) {
      const xml = twiml(await decisionTwiml(t.deps, ctx(c.ctx), c.decision));
      expect(xml).not.toContain(TRICKY);
      expect(xml).not.toContain(`p<&>"'w`);
    }
    const xml = await readFile(join(GOOD, "ring-simultaneous.xml"), "utf8");
    expect(xml).toContain(`password="p&lt;&amp;&gt;&quot;&apos;w"`);
  });
});

describe("ringing details", () => {
  it("never puts more than Twilio's 10 <Sip> nouns in one <Dial>", async () => {
    const many = Array.from({ length: 14 }, (_, i) => ({ deviceId: `dev-${i}`, extension: `${300 + i}` }));
    const verbs = await decisionTwiml(t.deps, ctx(), {
      ...base,
      action: "ring",
      targets: many,
      strategy: "simultaneous",
      timeoutSeconds: 30,
      onNoAnswer: "voicemail",
      record: false,
    });
    const dial = verbs[0];
    expect(dial?.name).toBe("Dial");
    expect(dial?.children).toHaveLength(MAX_SIP_NOUNS);
  });

  it("the Sip URI is the relay's host with the extension and the parent CallSid as a URI header", () => {
    if (!relay) throw new Error("relay target expected");
    expect(relaySipUri(relay, "101", "CA0123456789abcdef0123456789abcdef")).toBe(
      "sip:101@relay.example.net:5060;transport=udp?X-GoSIP-CallSid=CA0123456789abcdef0123456789abcdef",
    );
    const sips = relayTargetOf({
      publicSipUri: "sips:gw@home.example.org",
      inboundUsername: "a",
      inboundPassword: "b",
    });
    expect(sips && relaySipUri(sips, "7", "CAx")).toBe("sips:7@home.example.org?X-GoSIP-CallSid=CAx");
    expect(relayTargetOf({ publicSipUri: "sip:home.example.org" })).toBeNull();
  });

  it("a sequential step's action URL carries the devices still to ring, and reads back", async () => {
    const verbs = await decisionTwiml(t.deps, ctx(), {
      ...base,
      action: "ring",
      targets,
      strategy: "sequential",
      timeoutSeconds: 15,
      onNoAnswer: "hangup",
      record: false,
    });
    const action = String(verbs[0]?.attributes.action);
    const step = parseDialStep(new URL(action).searchParams);
    expect(step).toEqual({
      cdrId: "cdr-golden-1",
      didId,
      userId: "user-alice",
      kind: "ring",
      step: 1,
      next: ["dev-soft", "dev-bob"],
      timeoutSeconds: 15,
      onNoAnswer: "hangup",
    });
    expect(
      parseDialStep(new URLSearchParams("cdrId=x&kind=ring&step=0&timeout=5&onNoAnswer=hangup")),
    ).toBeNull();
    expect(
      parseDialStep(new URLSearchParams("cdrId=x&kind=ring&step=1&timeout=5&onNoAnswer=hangup&next=a,b%3Cc")),
    ).toBeNull();
  });
});

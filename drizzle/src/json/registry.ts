// Which document schema governs each JSON column ("table.column" in SQL names), so
// a test can insist that every JSON column has one, and tools (backup restore,
// admin checks) can validate stored rows generically.
import { callLadderJson } from "./call-ladder.ts";
import { outboundPolicyJson } from "./device.ts";
import { didTargetsJson, greetingJson } from "./did.ts";
import {
  eventDataJson,
  jobPayloadJson,
  relayOutboxEventSchema,
  relayStateDocumentSchema,
} from "./operations.ts";
import { routingRuleJson } from "./routing-rule.ts";
import { settingDocumentSchema } from "./settings.ts";

/** Validates one stored value of the column; throws on an invalid document. */
export type JsonColumnParser = (value: unknown) => unknown;

export const jsonColumnParsers: Readonly<Record<string, JsonColumnParser>> = {
  "devices.outbound_policy": outboundPolicyJson.parse,
  "cdrs.sip_ladder": callLadderJson.parse,
  "dids.default_targets": didTargetsJson.parse,
  "dids.greeting": greetingJson.parse,
  "routing_rules.rule": routingRuleJson.parse,
  // Per-key schema via parseSetting(key, value); generically only "a versioned object".
  "settings.value": (v) => settingDocumentSchema.parse(v),
  "jobs.payload": jobPayloadJson.parse,
  "device_events.data": eventDataJson.parse,
  "system_events.data": eventDataJson.parse,
  // The sync protocol's event, wrapped with its document version.
  "relay_outbox.event": (v) => relayOutboxEventSchema.parse(v),
  "relay_devices.outbound_policy": outboundPolicyJson.parse,
  "relay_state.value": (v) => relayStateDocumentSchema.parse(v),
};

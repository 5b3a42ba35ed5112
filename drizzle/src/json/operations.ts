// JSON documents of the operations tables. Their inner shape belongs to the code
// that writes them (job kinds, event types, sync messages); here they are held to
// "a versioned JSON object" so nothing non-serialisable or unversioned is stored.
import { z } from "zod";
import { relayEventSchema } from "../sync/protocol.ts";
import { defineVersionedJson } from "./versioned.ts";

/** Payload of an outbox job; the job's `kind` defines the other fields. */
export const jobPayloadSchema = z.object({ v: z.literal(1) }).catchall(z.json());
export type JobPayload = z.infer<typeof jobPayloadSchema>;
export const jobPayloadJson = defineVersionedJson({
  name: "jobPayload",
  version: 1,
  schema: jobPayloadSchema,
});
export const parseJobPayload = jobPayloadJson.parse;

/** Data of a device or system event: an optional human message plus JSON details. */
export const eventDataSchema = z
  .object({ v: z.literal(1), message: z.string().max(2000).optional() })
  .catchall(z.json());
export type EventData = z.infer<typeof eventDataSchema>;
export const eventDataJson = defineVersionedJson({ name: "eventData", version: 1, schema: eventDataSchema });
export const parseEventData = eventDataJson.parse;

/** A relay → edge sync event as queued in the relay outbox: the sync protocol's event, versioned. */
export const relayOutboxEventSchema = z.object({ v: z.literal(1), event: relayEventSchema });
export type RelayOutboxEvent = z.infer<typeof relayOutboxEventSchema>;

/** A document in the relay's `relay_state` table; its key's owner (the sync protocol) defines the fields. */
export const relayStateDocumentSchema = z.object({ v: z.int().min(1) }).catchall(z.json());
export type RelayStateDocument = z.infer<typeof relayStateDocumentSchema>;

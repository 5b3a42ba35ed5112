// The SIP ladder stored on a CDR: the relay's record of a call's signalling, drawn by
// the UI as a sequence diagram. Its steps are the sync protocol's `ladderStepSchema`.
import { z } from "zod";
import { ladderStepSchema, MAX_LADDER_STEPS } from "../sync/protocol.ts";
import { defineVersionedJson } from "./versioned.ts";

export const callLadderSchema = z.object({
  v: z.literal(1),
  steps: z.array(ladderStepSchema).max(MAX_LADDER_STEPS),
});
export type CallLadder = z.infer<typeof callLadderSchema>;
export const callLadderJson = defineVersionedJson({
  name: "callLadder",
  version: 1,
  schema: callLadderSchema,
});
export const parseCallLadder = callLadderJson.parse;

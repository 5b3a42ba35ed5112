// Branches for the Vias this stack adds: a random per-process prefix plus a counter. Unique in space and time
// (RFC 3261 §8.1.1.7) without a random draw per message, and recognisable: a Via whose branch carries our prefix
// was added by this process, so re-sending the same request object never stacks a second Via.
import { randomToken } from "../sip/ids.ts";

/** The branch prefix every Via added by this process carries ("z9hG4bK" + random). */
export const BRANCH_PREFIX = `z9hG4bK${randomToken(12)}`;

let counter = 0;

export function newBranch(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${BRANCH_PREFIX}.${counter.toString(36)}`;
}

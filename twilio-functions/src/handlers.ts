/**
 * Test helpers: the functions as Twilio's runtime runs them — CommonJS modules
 * whose `handler(context, event, callback)` sees the SDK as the `Twilio` global —
 * and a promise for what they hand the callback.
 */
import { createRequire } from "node:module";
import twilio from "twilio";

type Callback = (error: Error | null, response?: unknown) => void;
export type FunctionHandler = (
  context: Record<string, string>,
  event: Record<string, string>,
  callback: Callback,
) => void;

// The runtime provides the SDK as a global; the functions use nothing else.
(globalThis as { Twilio?: unknown }).Twilio = twilio;

const require = createRequire(import.meta.url);

export function loadFunction(name: string): FunctionHandler {
  const mod = require(`../functions/${name}.protected.js`) as { handler: FunctionHandler };
  return mod.handler;
}

/** Runs a handler and answers the TwiML it returned, as Twilio receives it. */
export function invoke(
  handler: FunctionHandler,
  context: Record<string, string>,
  event: Record<string, string>,
): Promise<string> {
  return new Promise((resolve, reject) => {
    handler(context, event, (error, response) => {
      if (error) reject(error);
      else resolve(String(response));
    });
  });
}

/**
 * What deploying the voicemail fallback (twilio-functions/) means, as data: the
 * Serverless service's name, the functions and their files, the environment
 * variables the functions read, the runtime. Pure, so it is tested offline; the
 * one call that sends it to Twilio is the seam in fallback-deploy.ts.
 *
 * The functions are "protected": Twilio's runtime checks the X-Twilio-Signature
 * of every request, so only Twilio (for this account) can invoke them.
 */

/** Serverless service UniqueName; a second deploy finds and updates the same service. */
export const FALLBACK_SERVICE_NAME = "gosip-fallback";
/** Twilio Functions runtime (TWILIO.md: node22). */
export const FALLBACK_RUNTIME = "node22";
/** Empty domain suffix: the service's production environment, `<service>-<n>.twil.io`. */
export const FALLBACK_ENVIRONMENT = "";
/** Longest voicemail the fallback records, as the edge's own `<Record>` (SPEC §3). */
export const FALLBACK_MAX_RECORDING_SECONDS = 180;

/** FORWARD_SMS_TO when nothing is forwarded (not a number, so the function forwards nothing). */
export const FORWARD_SMS_NONE = "none";

export interface FallbackFunction {
  name: string;
  /** URL path on the service's domain. */
  path: string;
  access: "protected";
  /** Source file, relative to the twilio-functions/ directory. */
  file: string;
}

export const FALLBACK_FUNCTIONS: readonly FallbackFunction[] = [
  {
    name: "voicemail-fallback",
    path: "/voicemail-fallback",
    access: "protected",
    file: "functions/voicemail-fallback.protected.js",
  },
  {
    name: "sms-fallback",
    path: "/sms-fallback",
    access: "protected",
    file: "functions/sms-fallback.protected.js",
  },
];

/** The function Twilio calls when the edge's voice webhook fails (the numbers' Voice Fallback URL). */
export const VOICE_FALLBACK_FUNCTION = "/voicemail-fallback";

export interface FallbackPlanInput {
  /** Shown in the greeting: "You have reached <name>." */
  installationName: string;
  /** Where inbound SMS go while the edge is down (E.164); none: they are kept in Twilio only. */
  forwardSmsTo: string | null;
  /** The service deployed before, updated in place. */
  serviceSid: string | undefined;
}

export interface FallbackDeployPlan {
  serviceName: string;
  serviceSid: string | undefined;
  functionsEnv: string;
  runtime: string;
  functions: readonly FallbackFunction[];
  /** Environment variables of the deployed functions (they have no database). */
  env: Record<string, string>;
  /** The deployment's package.json: the functions need nothing beyond the runtime's `Twilio` global. */
  pkgJson: { name: string; private: true; dependencies: Record<string, string> };
}

export function fallbackGreeting(installationName: string): string {
  return `You have reached ${installationName}. Nobody can take your call right now. Please leave a message after the tone.`;
}

export function fallbackDeployPlan(input: FallbackPlanInput): FallbackDeployPlan {
  const env: Record<string, string> = {
    GREETING: fallbackGreeting(input.installationName),
    MAX_RECORDING_SECONDS: String(FALLBACK_MAX_RECORDING_SECONDS),
    // Always set: the library only adds and updates variables, so an unset one would keep the old number.
    FORWARD_SMS_TO: input.forwardSmsTo ?? FORWARD_SMS_NONE,
  };
  return {
    serviceName: FALLBACK_SERVICE_NAME,
    serviceSid: input.serviceSid,
    functionsEnv: FALLBACK_ENVIRONMENT,
    runtime: FALLBACK_RUNTIME,
    functions: FALLBACK_FUNCTIONS,
    env,
    pkgJson: { name: FALLBACK_SERVICE_NAME, private: true, dependencies: {} },
  };
}

/** The Voice Fallback URL of a deployed service, from the domain Twilio gave it. */
export function fallbackUrlOf(domain: string): string {
  return `https://${domain}${VOICE_FALLBACK_FUNCTION}`;
}

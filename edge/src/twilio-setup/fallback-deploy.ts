/**
 * The seam where the fallback deployment leaves GoSIP: @twilio-labs/serverless-api's
 * `deployProject`. That library builds every URL from Twilio's host names
 * (serverless.twilio.com, serverless-upload.twilio.com) with no base URL option,
 * and it needs Node (file system, got). So:
 * - with TWILIO_API_BASE set (the simulator) the deployment is skipped, with the reason;
 * - on a runtime where the library cannot load (Workers), it is unavailable, with the reason;
 * - everything before the call (the plan, the sources, the library's config) is plain
 *   data built and tested offline.
 *
 * The library is imported by a computed name, so the Workers bundle does not try to
 * include a Node-only package; on Workers the import fails and is reported.
 */
import type { DeployProjectConfig, DeployResult } from "@twilio-labs/serverless-api";
import type { FallbackDeployPlan } from "./fallback-plan.ts";

/** Package name, kept in a variable: bundlers leave a computed import() alone. */
const SERVERLESS_API_MODULE = "@twilio-labs/serverless-api";

/** Where twilio-functions/ is, from this file (edge/src/twilio-setup/); computed on use, never on Workers. */
function functionsRoot(): URL {
  return new URL("../../../twilio-functions/", import.meta.url);
}

export interface DeployedFallback {
  serviceSid: string;
  /** e.g. "gosip-fallback-1234.twil.io". */
  domain: string;
  buildSid: string;
}

export interface DeployCredentials {
  accountSid: string;
  authToken: string;
  /** TWILIO_API_BASE, when REST calls go elsewhere than Twilio (the simulator). */
  apiBase: string | undefined;
}

export interface FallbackDeployer {
  /** Deploys the plan; throws FallbackDeployUnavailable when it cannot run here. */
  deploy(plan: FallbackDeployPlan, credentials: DeployCredentials): Promise<DeployedFallback>;
}

/** Why a deployment was skipped: "api_base" (the simulator) or "runtime" (no Node here). */
export type SkipKind = "api_base" | "runtime";

/** The deployer cannot run here; the message tells the admin what to do instead. */
export class FallbackDeployUnavailable extends Error {
  override name = "FallbackDeployUnavailable";
  constructor(
    message: string,
    readonly kind: SkipKind,
  ) {
    super(message);
  }
}

export const SKIPPED_FOR_API_BASE =
  "TWILIO_API_BASE is set: @twilio-labs/serverless-api only talks to Twilio's own hosts, so the fallback function was not deployed";

/** Source code of each planned function, read from twilio-functions/ (Node). */
export async function readFallbackSources(
  plan: FallbackDeployPlan,
  root: URL = functionsRoot(),
): Promise<Map<string, string>> {
  const { readFile } = await import("node:fs/promises");
  const { fileURLToPath } = await import("node:url");
  const out = new Map<string, string>();
  for (const fn of plan.functions) {
    out.set(fn.name, await readFile(fileURLToPath(new URL(fn.file, root).href), "utf8"));
  }
  return out;
}

/** The library's deployProject configuration for `plan` (pure). */
export function deployProjectConfig(
  plan: FallbackDeployPlan,
  sources: ReadonlyMap<string, string>,
  credentials: { accountSid: string; authToken: string },
): DeployProjectConfig {
  return {
    username: credentials.accountSid,
    password: credentials.authToken,
    serviceName: plan.serviceName,
    ...(plan.serviceSid ? { serviceSid: plan.serviceSid } : {}),
    functionsEnv: plan.functionsEnv,
    runtime: plan.runtime,
    overrideExistingService: true,
    env: plan.env,
    pkgJson: plan.pkgJson,
    functions: plan.functions.map((fn) => {
      const content = sources.get(fn.name);
      if (content === undefined) throw new Error(`no source for function ${fn.name}`);
      return { name: fn.name, path: fn.path, access: fn.access, content };
    }),
    assets: [],
  };
}

interface ServerlessApiModule {
  TwilioServerlessApiClient: new (config: {
    username: string;
    password: string;
  }) => { deployProject(config: DeployProjectConfig): Promise<DeployResult> };
}

async function loadServerlessApi(): Promise<ServerlessApiModule> {
  const specifier = SERVERLESS_API_MODULE;
  try {
    return (await import(specifier)) as ServerlessApiModule;
  } catch {
    throw new FallbackDeployUnavailable(
      "@twilio-labs/serverless-api cannot run on this runtime (it needs Node): run the setup step from an edge on Node (npm start), or deploy twilio-functions/ with `npx twilio-run deploy`",
      "runtime",
    );
  }
}

/** The real deployer: @twilio-labs/serverless-api against Twilio's hosts. */
export const serverlessApiDeployer: FallbackDeployer = {
  async deploy(plan, credentials) {
    // The library has no base URL option: it cannot deploy to the simulator.
    if (credentials.apiBase !== undefined)
      throw new FallbackDeployUnavailable(SKIPPED_FOR_API_BASE, "api_base");
    const api = await loadServerlessApi();
    const sources = await readFallbackSources(plan);
    const client = new api.TwilioServerlessApiClient({
      username: credentials.accountSid,
      password: credentials.authToken,
    });
    const result = await client.deployProject(deployProjectConfig(plan, sources, credentials));
    return { serviceSid: result.serviceSid, domain: result.domain, buildSid: result.buildSid };
  },
};

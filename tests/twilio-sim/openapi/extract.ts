/**
 * Extracts, from a local checkout of Twilio's published OpenAPI descriptions
 * (the twilio-oai repository), the operations the simulator implements and
 * writes them to twilio-subset.json beside this file: for each operation its
 * success status, its response schema with every $ref inlined, and the names
 * of its form and query parameters. The subset is committed, so the
 * conformance test runs offline; re-run this after a twilio-oai update:
 *
 *   npx tsx tests/twilio-sim/openapi/extract.ts <twilio-oai checkout> [--commit <sha>]
 *
 * "Implemented" is decided by the simulator itself: every spec path (with
 * placeholders for its parameters) is matched against the simulator's router.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Deliveries } from "../delivery.ts";
import { buildRouter } from "../server.ts";
import { SimState } from "../state.ts";
import type { JsonSchema, SubsetFile, SubsetOperation } from "./conformance.ts";

/** The spec files of the products GoSIP calls, with the product name its REST client uses. */
const SPECS: Array<{ file: string; product: SubsetOperation["product"] }> = [
  { file: "twilio_api_v2010.json", product: "api" },
  { file: "twilio_lookups_v2.json", product: "lookups" },
  { file: "twilio_intelligence_v2.json", product: "intelligence" },
  { file: "twilio_serverless_v1.json", product: "serverless" },
];

const KEPT = [
  "type",
  "format",
  "nullable",
  "enum",
  "items",
  "properties",
  "required",
  "additionalProperties",
];

interface Spec {
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown> };
}

/** A schema with $refs inlined and only the validation keywords kept. */
function resolve(spec: Spec, node: unknown, depth = 0): JsonSchema {
  if (depth > 12 || typeof node !== "object" || node === null) return {};
  const obj = node as Record<string, unknown>;
  if (typeof obj.$ref === "string") {
    const name = obj.$ref.replace("#/components/schemas/", "");
    const target = spec.components?.schemas?.[name];
    const resolved = resolve(spec, target, depth + 1);
    // A property's own nullable sits next to its $ref.
    return obj.nullable === true ? { ...resolved, nullable: true } : resolved;
  }
  for (const key of ["oneOf", "anyOf"] as const) {
    const alternatives = obj[key];
    if (Array.isArray(alternatives)) return { anyOf: alternatives.map((a) => resolve(spec, a, depth + 1)) };
  }
  const out: JsonSchema = {};
  for (const key of KEPT) {
    const v = obj[key];
    if (v === undefined) continue;
    if (key === "properties" && typeof v === "object" && v !== null) {
      out.properties = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([k, p]) => [k, resolve(spec, p, depth + 1)]),
      );
    } else if (key === "items") {
      out.items = resolve(spec, v, depth + 1);
    } else if (key === "additionalProperties") {
      out.additionalProperties = v === true || (typeof v === "object" && v !== null);
    } else {
      (out as Record<string, unknown>)[key] = v;
    }
  }
  return out;
}

function placeholderPath(template: string): string {
  return template.replace(/\{[A-Za-z]+\}/g, "XX0");
}

function formParams(spec: Spec, op: Record<string, unknown>): { names: string[]; required: string[] } {
  const body = op.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined;
  const schema = body?.content?.["application/x-www-form-urlencoded"]?.schema;
  const resolved = resolve(spec, schema);
  return { names: Object.keys(resolved.properties ?? {}), required: resolved.required ?? [] };
}

function queryParams(op: Record<string, unknown>): string[] {
  const params = (op.parameters as Array<{ in?: string; name?: string }> | undefined) ?? [];
  return params.filter((p) => p.in === "query" && typeof p.name === "string").map((p) => p.name as string);
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { commit: { type: "string" }, out: { type: "string" } },
  });
  const checkout = positionals[0];
  if (!checkout) {
    console.error("usage: tsx tests/twilio-sim/openapi/extract.ts <twilio-oai checkout> [--commit <sha>]");
    process.exit(2);
  }
  const dir = existsSync(join(checkout, "spec", "json")) ? join(checkout, "spec", "json") : checkout;
  let commit = values.commit;
  if (!commit) {
    try {
      commit = execFileSync("git", ["-C", checkout, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    } catch {
      commit = "unknown";
    }
  }

  const state = new SimState();
  const deliveries = new Deliveries(state, 0);
  const router = buildRouter({ state, deliveries, mediaAuth: true });
  deliveries.close();

  const operations: SubsetOperation[] = [];
  for (const { file, product } of SPECS) {
    const spec = JSON.parse(readFileSync(join(dir, file), "utf8")) as Spec;
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of ["get", "post", "delete"] as const) {
        const op = item[method] as Record<string, unknown> | undefined;
        if (!op) continue;
        const matched = router.match(method.toUpperCase(), placeholderPath(path));
        if (matched === undefined || matched === "method") continue;
        const responses = (op.responses ?? {}) as Record<
          string,
          { content?: Record<string, { schema?: unknown }> }
        >;
        const status = Object.keys(responses).find((s) => /^2\d\d$/.test(s));
        if (!status) continue;
        const schema = responses[status]?.content?.["application/json"]?.schema;
        const form = formParams(spec, op);
        operations.push({
          product,
          method: method.toUpperCase() as SubsetOperation["method"],
          path,
          operationId: typeof op.operationId === "string" ? op.operationId : `${method} ${path}`,
          status: Number(status),
          response: schema === undefined ? null : resolve(spec, schema),
          formParams: form.names,
          requiredFormParams: form.required,
          queryParams: queryParams(op),
        });
      }
    }
  }
  operations.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  const out: SubsetFile = {
    description:
      "Operations of Twilio's published OpenAPI descriptions (github.com/twilio/twilio-oai, spec/json) that the GoSIP Twilio simulator implements; generated by extract.ts.",
    source: { repository: "twilio/twilio-oai", commit, files: SPECS.map((s) => `spec/json/${s.file}`) },
    operations,
  };
  const target = values.out ?? fileURLToPath(new URL("./twilio-subset.json", import.meta.url));
  writeFileSync(target, `${JSON.stringify(out, null, 2)}\n`);
  // Formatted as the repository's linter wants it, so a re-run leaves `npm run lint` clean.
  const biome = fileURLToPath(new URL("../../../node_modules/.bin/biome", import.meta.url));
  execFileSync(biome, ["format", "--write", target], { stdio: "ignore" });
  console.log(`${operations.length} operations written to twilio-subset.json`);
}

main();

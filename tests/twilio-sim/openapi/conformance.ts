/**
 * Checks requests and answers against the subset of Twilio's OpenAPI
 * descriptions in twilio-subset.json: which spec operation a method and path
 * are, whether a response body has the spec's shape (types, enums, nullability,
 * RFC 2822 and ISO dates, every documented property present and no other), and
 * whether the form/query parameter names a client sent exist in the spec.
 * A small validator for the few JSON Schema keywords Twilio's specs use.
 */
import { readFileSync } from "node:fs";

export interface JsonSchema {
  type?: string;
  format?: string;
  nullable?: boolean;
  enum?: unknown[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: JsonSchema[];
}

export interface SubsetOperation {
  product: "api" | "lookups" | "intelligence" | "serverless";
  method: "GET" | "POST" | "DELETE";
  path: string;
  operationId: string;
  status: number;
  response: JsonSchema | null;
  formParams: string[];
  requiredFormParams: string[];
  queryParams: string[];
}

export interface SubsetFile {
  description: string;
  source: { repository: string; commit: string; files: string[] };
  operations: SubsetOperation[];
}

let cached: SubsetFile | undefined;

export function loadSubset(): SubsetFile {
  cached ??= JSON.parse(readFileSync(new URL("./twilio-subset.json", import.meta.url), "utf8")) as SubsetFile;
  return cached;
}

function templateRegex(template: string): RegExp {
  const source = template
    .split(/(\{[A-Za-z]+\})/)
    .map((part) => (part.startsWith("{") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}$`);
}

const regexes = new Map<string, RegExp>();

/** The spec operation for a request, if the subset has one. Literal segments win over parameters. */
export function findOperation(
  method: string,
  path: string,
  subset = loadSubset(),
): SubsetOperation | undefined {
  const candidates = subset.operations.filter((op) => {
    if (op.method !== method) return false;
    let re = regexes.get(op.path);
    if (!re) {
      re = templateRegex(op.path);
      regexes.set(op.path, re);
    }
    return re.test(path);
  });
  // Prefer the template with the fewest parameters (".../IncomingPhoneNumbers/Local.json" over "{Sid}.json").
  return candidates.sort(
    (a, b) => (a.path.match(/\{/g)?.length ?? 0) - (b.path.match(/\{/g)?.length ?? 0),
  )[0];
}

const RFC2822 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} \+0000$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (value === null) return "null";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

/** Problems of `value` against `schema`, each prefixed with its JSON path; empty when it conforms. */
export function validate(schema: JsonSchema, value: unknown, at = "$"): string[] {
  if (schema.anyOf) {
    const results = schema.anyOf.map((s) => validate(s, value, at));
    return results.some((r) => r.length === 0) ? [] : (results[0] ?? []);
  }
  if (value === null)
    return schema.nullable || schema.type === undefined ? [] : [`${at}: null but not nullable`];
  const errors: string[] = [];
  const actual = typeOf(value);
  if (schema.type) {
    const fits = schema.type === actual || (schema.type === "number" && actual === "integer");
    if (!fits) return [`${at}: expected ${schema.type}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === "string") {
    if (schema.format === "date-time-rfc-2822" && !RFC2822.test(value))
      errors.push(`${at}: ${value} is not an RFC 2822 date`);
    if (schema.format === "date-time" && !ISO.test(value))
      errors.push(`${at}: ${value} is not an ISO 8601 date-time`);
    // v2010 answers its own `uri` fields as paths ("/2010-04-01/…"); the spec types them as URIs too.
    if (schema.format === "uri" && !/^(https?:\/\/|\/)/.test(value))
      errors.push(`${at}: ${value} is not a URI`);
  }
  if (Array.isArray(value) && schema.items)
    for (const [i, item] of value.entries()) errors.push(...validate(schema.items, item, `${at}[${i}]`));
  if (actual === "object" && schema.properties) {
    const obj = value as Record<string, unknown>;
    for (const [name, prop] of Object.entries(schema.properties)) {
      // Twilio answers every documented property (null when it has no value).
      if (!(name in obj)) errors.push(`${at}.${name}: missing`);
      else errors.push(...validate(prop, obj[name], `${at}.${name}`));
    }
    if (!schema.additionalProperties)
      for (const name of Object.keys(obj))
        if (!(name in schema.properties)) errors.push(`${at}.${name}: not in the spec`);
  }
  return errors;
}

const PAGING = new Set(["Page", "PageSize", "PageToken"]);

/** Parameter names a client sent that the operation does not document. */
export function unknownParams(
  op: SubsetOperation,
  form: Record<string, unknown>,
  query: Record<string, unknown>,
): string[] {
  const formNames = new Set(op.formParams);
  // Query names in the spec carry operators ("DateSent<", "DateSent>").
  const queryNames = new Set(op.queryParams);
  const unknownForm = Object.keys(form).filter((n) => !formNames.has(n));
  const unknownQuery = Object.keys(query).filter((n) => !queryNames.has(n) && !PAGING.has(n));
  return [...unknownForm.map((n) => `form ${n}`), ...unknownQuery.map((n) => `query ${n}`)];
}

/** Requests in a simulator's log that the spec does not describe or whose parameters it does not know. */
export function specViolations(
  requests: ReadonlyArray<{
    method: string;
    path: string;
    form: Record<string, unknown>;
    query: Record<string, unknown>;
  }>,
): string[] {
  const out: string[] = [];
  for (const r of requests) {
    const op = findOperation(r.method, r.path);
    if (!op) {
      // Media content (recording audio, MMS media) is not described as JSON operations, nor are
      // Serverless uploads (POST …/Versions lives on serverless-upload.twilio.com, outside the spec).
      const media = /\/(Recordings\/RE\w+(\.wav|\.mp3)?|Media\/ME\w+)$/.test(r.path);
      const upload =
        r.method === "POST" && /^\/v1\/Services\/[^/]+\/(Functions|Assets)\/[^/]+\/Versions$/.test(r.path);
      if (!media && !upload) out.push(`${r.method} ${r.path}: not in the spec`);
      continue;
    }
    for (const p of unknownParams(op, r.form, r.query)) out.push(`${r.method} ${op.path}: unknown ${p}`);
  }
  return out;
}

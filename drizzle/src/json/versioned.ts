// Versioned JSON documents stored in text columns. Every JSON column has one zod
// schema with a literal `v`; documents written by older code are upgraded step by
// step (v1 -> v2 -> ...) when read, so old rows never have to be rewritten in bulk.
import { z } from "zod";

/** Raised when a stored or submitted JSON document does not match its schema. */
export class JsonSchemaError extends Error {
  override readonly name = "JsonSchemaError";
  readonly code = "invalid_json_document";

  constructor(
    /** Which document kind failed, e.g. "routingRule". */
    readonly schemaName: string,
    /** zod issues (paths point into the document, never contain secrets). */
    readonly issues: readonly z.core.$ZodIssue[],
  ) {
    super(`${schemaName}: ${issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
}

/** Upgrades a document of version `from` to version `from + 1`; validates its own input. */
export type JsonUpgrade = (previous: unknown) => unknown;

export interface VersionedJson<T extends { v: number }> {
  readonly name: string;
  /** The current version: what `parse` returns and what new rows are written with. */
  readonly version: number;
  /** The zod schema of the current version (use it to build API schemas). */
  readonly schema: z.ZodType<T>;
  /** Validates `input`, upgrading older versions first; throws {@link JsonSchemaError}. */
  parse(input: unknown): T;
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: JsonSchemaError };
}

function issue(message: string, path: PropertyKey[] = ["v"]): z.core.$ZodIssue {
  return { code: "custom", message, path, input: undefined };
}

/**
 * Declares a versioned JSON document. `upgrades[n]` turns a version-n document
 * into version n+1; there must be one for every version below the current one.
 */
export function defineVersionedJson<S extends z.ZodType<{ v: number }>>(options: {
  name: string;
  version: number;
  schema: S;
  upgrades?: Readonly<Record<number, JsonUpgrade>>;
}): VersionedJson<z.output<S>> {
  const { name, version, schema, upgrades = {} } = options;

  function safeParse(
    input: unknown,
  ): { success: true; data: z.output<S> } | { success: false; error: JsonSchemaError } {
    let doc = input;
    for (;;) {
      const v = typeof doc === "object" && doc !== null ? (doc as { v?: unknown }).v : undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
        return {
          success: false,
          error: new JsonSchemaError(name, [issue("missing or invalid version `v`")]),
        };
      }
      if (v > version) {
        return {
          success: false,
          error: new JsonSchemaError(name, [
            issue(`version ${v} is newer than supported version ${version}`),
          ]),
        };
      }
      if (v === version) break;
      const upgrade = upgrades[v];
      if (!upgrade) {
        return { success: false, error: new JsonSchemaError(name, [issue(`no upgrade from version ${v}`)]) };
      }
      try {
        doc = upgrade(doc);
      } catch (err) {
        if (err instanceof JsonSchemaError) return { success: false, error: err };
        if (err instanceof z.ZodError)
          return { success: false, error: new JsonSchemaError(name, err.issues) };
        throw err;
      }
      const next = typeof doc === "object" && doc !== null ? (doc as { v?: unknown }).v : undefined;
      if (next !== v + 1) {
        return {
          success: false,
          error: new JsonSchemaError(name, [issue(`upgrade from ${v} did not produce ${v + 1}`)]),
        };
      }
    }
    const result = schema.safeParse(doc);
    if (!result.success) return { success: false, error: new JsonSchemaError(name, result.error.issues) };
    return { success: true, data: result.data };
  }

  return {
    name,
    version,
    schema: schema as unknown as z.ZodType<z.output<S>>,
    safeParse,
    parse(input) {
      const result = safeParse(input);
      if (!result.success) throw result.error;
      return result.data;
    },
  };
}

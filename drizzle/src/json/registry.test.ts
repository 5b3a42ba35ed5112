// Every JSON column of the schema has a document schema, and the defaults the
// tables write are valid documents.
import { getTableColumns, getTableName, is, Table } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import * as schema from "../schema/index.ts";
import { jsonColumnParsers } from "./registry.ts";

function jsonColumns(): { key: string; defaultFn: (() => unknown) | undefined }[] {
  const out: { key: string; defaultFn: (() => unknown) | undefined }[] = [];
  for (const value of Object.values(schema)) {
    if (!is(value, Table)) continue;
    for (const column of Object.values(getTableColumns(value))) {
      if (column.dataType === "json") {
        out.push({
          key: `${getTableName(value)}.${column.name}`,
          defaultFn: column.defaultFn as (() => unknown) | undefined,
        });
      }
    }
  }
  return out;
}

describe("JSON columns", () => {
  it("each has exactly one registered document schema, and the registry has no stale entries", () => {
    const columns = jsonColumns()
      .map((c) => c.key)
      .sort();
    expect(columns.length).toBeGreaterThanOrEqual(8);
    expect(Object.keys(jsonColumnParsers).sort()).toEqual(columns);
  });

  it("column defaults are valid documents", () => {
    for (const { key, defaultFn } of jsonColumns()) {
      if (!defaultFn) continue;
      const parse = jsonColumnParsers[key];
      if (!parse) throw new Error(`no parser for ${key}`);
      expect(() => parse(defaultFn()), key).not.toThrow();
    }
  });
});

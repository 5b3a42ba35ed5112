/**
 * GET /api/system/health: unauthenticated liveness/readiness with per-component
 * checks. 200 while every required component works (status "ok", or "degraded"
 * when an optional one does not), 503 "down" when a required one fails. It says
 * nothing secret: no paths, hosts or error texts, only component states.
 */

import { MIGRATIONS_TABLE } from "@gosip/drizzle";
import { bundledMigrations } from "@gosip/drizzle/migrations.generated";
import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { createRouter } from "../http/router.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { EDGE_VERSION } from "./version.ts";

const componentSchema = z
  .object({
    status: z.enum(["ok", "failing", "not_connected"]),
    /** A failing required component makes the whole edge "down" (503). */
    required: z.boolean(),
    latencyMs: z.number().optional(),
    detail: z.string().optional(),
  })
  .openapi("HealthComponent");

export const healthSchema = z
  .object({
    status: z.enum(["ok", "degraded", "down"]),
    version: z.string(),
    runtime: z.enum(["node", "workers"]),
    time: z.string().openapi({ description: "Server time (ISO 8601)" }),
    components: z.object({
      database: componentSchema,
      migrations: componentSchema,
      relay: componentSchema,
    }),
  })
  .openapi("Health");

export type Health = z.infer<typeof healthSchema>;
type Component = z.infer<typeof componentSchema>;

async function checkDatabase(deps: EdgeDeps): Promise<Component> {
  const started = performance.now();
  try {
    await deps.db.run(sql`SELECT 1`);
    return { status: "ok", required: true, latencyMs: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    // Only the error kind/code: driver messages can carry SQL parameters.
    deps.logger.error({ code: errorCode(err) }, "health: database check failed");
    return { status: "failing", required: true, detail: "database unreachable" };
  }
}

function errorCode(err: unknown): string {
  const cause = err instanceof Error ? (err.cause ?? err) : err;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : err instanceof Error ? err.name : "unknown";
}

async function checkMigrations(deps: EdgeDeps): Promise<Component> {
  const expected = bundledMigrations.length;
  const latest = bundledMigrations[expected - 1]?.when ?? 0;
  try {
    const rows = await deps.db.all<{ n: number; last: number | null }>(
      sql`SELECT count(*) AS n, max(created_at) AS last FROM ${sql.identifier(MIGRATIONS_TABLE)}`,
    );
    const row = rows[0];
    const last = row?.last === null || row?.last === undefined ? 0 : Number(row.last);
    if (last >= latest)
      return { status: "ok", required: true, detail: `${Number(row?.n ?? 0)}/${expected} applied` };
    return { status: "failing", required: true, detail: `${Number(row?.n ?? 0)}/${expected} applied` };
  } catch {
    return { status: "failing", required: true, detail: "migrations not applied" };
  }
}

/** Runs every check; the HTTP status follows `status` (503 only when "down"). */
export async function checkHealth(deps: EdgeDeps): Promise<Health> {
  const [database, migrations] = await Promise.all([checkDatabase(deps), checkMigrations(deps)]);
  // The relay link lands with the relay issue; until then it is reported, not required.
  const relay: Component = { status: "not_connected", required: false };
  const components = { database, migrations, relay };
  const all = Object.values(components);
  const status = all.some((c) => c.required && c.status !== "ok")
    ? "down"
    : all.some((c) => c.status !== "ok")
      ? "degraded"
      : "ok";
  return {
    status,
    version: EDGE_VERSION,
    runtime: deps.runtime,
    time: new Date(deps.clock.now()).toISOString(),
    components,
  };
}

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  tags: ["system"],
  summary: "Health with per-component checks (no sign-in needed)",
  responses: {
    200: {
      description: "Working (ok or degraded)",
      content: { "application/json": { schema: healthSchema } },
    },
    503: {
      description: "A required component fails",
      content: { "application/json": { schema: healthSchema } },
    },
  },
});

export const systemRouter = createRouter().openapi(healthRoute, async (c) => {
  const health = await checkHealth(c.get("deps"));
  c.header("Cache-Control", "no-store");
  return health.status === "down" ? c.json(health, 503) : c.json(health, 200);
});

/**
 * /api/settings (admin): installation settings, one versioned document per key
 * (schemas in @gosip/drizzle), plus `holidays`, the holiday list kept in its own
 * table. GET answers every key (defaults where nothing was saved); PUT replaces
 * one key's document after validating it.
 *
 * Secrets (SMTP password, Postmark and Gotify tokens, Twilio auth token and SIP
 * passwords) are write-only: GET shows SECRET_MASK in their place, and a PUT that
 * sends SECRET_MASK back keeps the stored secret. Omitting a secret removes it.
 */
import {
  type Db,
  devices,
  holidays,
  insertHolidaySchema,
  type SettingKey,
  settingKeys,
  settingSchemas,
  settings,
} from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { asc, count, eq } from "drizzle-orm";
import { requireAdmin } from "../auth/middleware.ts";
import { AppError, conflict } from "../http/errors.ts";
import { errorResponses, jsonBody, jsonResponse, safeWrite } from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import { pushSettingChange } from "../relay/push.ts";

/** What GET shows instead of a stored secret. */
export const SECRET_MASK = "********";

/** Paths (dot-separated) of write-only fields per key. */
export const SECRET_FIELDS: Partial<Record<SettingKey, readonly string[]>> = {
  email: ["smtp.password", "postmarkToken"],
  gotify: ["appToken"],
  twilio: ["authToken", "sipPassword"],
  relay: ["inboundPassword"],
};

/** Keys the API shows but only the server writes (the setup wizard tracks its own progress). */
const READ_ONLY_KEYS: ReadonlySet<string> = new Set<string>(["setup"]);

const HOLIDAYS_KEY = "holidays";
const allKeys: [string, ...string[]] = [HOLIDAYS_KEY, ...settingKeys];

const holidayItemSchema = insertHolidaySchema.pick({ date: true, name: true, recurring: true }).strict();
const holidaysDocSchema = z
  .object({
    v: z.literal(1),
    holidays: z
      .array(holidayItemSchema)
      .max(500)
      .refine((list) => new Set(list.map((h) => h.date)).size === list.length, "dates must not repeat"),
  })
  .strict();

const keyParams = z.object({
  key: z.enum(allKeys).openapi({ param: { name: "key", in: "path" }, description: "A settings key" }),
});

const settingValueSchema = z
  .looseObject({ v: z.int().min(1) })
  .nullable()
  .openapi("SettingValue", { description: "The key's document; null when a key without default is not set" });

// --- secret handling ------------------------------------------------------------

function getPath(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const part of path.split(".")) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A copy of `doc` with `path` set (intermediate objects must exist) or removed when value is undefined. */
function withPath(doc: unknown, path: string, value: unknown): unknown {
  const parts = path.split(".");
  const clone = structuredClone(doc) as Record<string, unknown>;
  let cur: Record<string, unknown> = clone;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (typeof next !== "object" || next === null) return clone;
    cur = next as Record<string, unknown>;
  }
  const last = parts[parts.length - 1] ?? "";
  if (value === undefined) delete cur[last];
  else cur[last] = value;
  return clone;
}

/** The document as GET shows it: every stored secret replaced by {@link SECRET_MASK}. */
export function maskSecrets(key: SettingKey, doc: unknown): unknown {
  let out = doc;
  for (const path of SECRET_FIELDS[key] ?? []) {
    if (getPath(out, path) !== undefined) out = withPath(out, path, SECRET_MASK);
  }
  return out;
}

/** A submitted document with masked secrets replaced by the stored ones (removed if none is stored). */
function unmaskSecrets(key: SettingKey, submitted: unknown, stored: unknown): unknown {
  let out = submitted;
  for (const path of SECRET_FIELDS[key] ?? []) {
    if (getPath(out, path) === SECRET_MASK) out = withPath(out, path, getPath(stored, path));
  }
  return out;
}

// --- storage --------------------------------------------------------------------

async function storedValues(db: Db): Promise<Map<string, unknown>> {
  const rows = await db.select().from(settings);
  return new Map(rows.map((r) => [r.key, r.value]));
}

/** The current document of a key: stored (upgraded) or the default; null for `twilio` unset. */
function currentValue(key: SettingKey, stored: unknown): unknown {
  if (stored !== undefined) {
    const parsed = settingSchemas[key].safeParse(stored);
    if (parsed.success) return parsed.data;
  }
  if (key === "twilio") return null;
  const fallback = settingSchemas[key].safeParse({ v: 1 });
  return fallback.success ? fallback.data : null;
}

async function holidaysDoc(db: Db): Promise<z.infer<typeof holidaysDocSchema>> {
  const rows = await db.select().from(holidays).orderBy(asc(holidays.date));
  return { v: 1, holidays: rows.map((h) => ({ date: h.date, name: h.name, recurring: h.recurring })) };
}

function isSettingKey(key: string): key is SettingKey {
  return (settingKeys as readonly string[]).includes(key);
}

function invalid(key: string, issues: readonly { path: PropertyKey[]; message: string }[]): AppError {
  return new AppError(
    400,
    "validation_failed",
    `Invalid value for setting \`${key}\``,
    issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
  );
}

// --- routes ---------------------------------------------------------------------

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["settings"],
  summary: "Every setting (secrets masked)",
  middleware: [requireAdmin] as const,
  responses: {
    200: jsonResponse(z.record(z.string(), settingValueSchema), "Documents by key"),
    ...errorResponses(401, 403),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{key}",
  tags: ["settings"],
  summary: "One setting (secrets masked)",
  middleware: [requireAdmin] as const,
  request: { params: keyParams },
  responses: { 200: jsonResponse(settingValueSchema, "The document"), ...errorResponses(400, 401, 403) },
});

const putRoute = createRoute({
  method: "put",
  path: "/{key}",
  tags: ["settings"],
  summary: "Replace one setting; send the mask back to keep a stored secret",
  middleware: [requireAdmin] as const,
  request: { params: keyParams, body: jsonBody(z.looseObject({}).openapi("SettingDocument")) },
  responses: {
    200: jsonResponse(settingValueSchema, "The stored document"),
    ...errorResponses(400, 401, 403, 409),
  },
});

export const settingsRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const db = c.get("deps").db;
    const stored = await storedValues(db);
    const out: Record<string, unknown> = {};
    for (const key of settingKeys) out[key] = maskSecrets(key, currentValue(key, stored.get(key)));
    out[HOLIDAYS_KEY] = await holidaysDoc(db);
    return c.json(out as Record<string, { v: number } | null>, 200);
  })
  .openapi(getRoute, async (c) => {
    const { key } = c.req.valid("param");
    const db = c.get("deps").db;
    if (key === HOLIDAYS_KEY) return c.json(await holidaysDoc(db), 200);
    if (!isSettingKey(key)) throw new AppError(400, "bad_request", `Unknown setting \`${key}\``);
    const [row] = await db.select().from(settings).where(eq(settings.key, key));
    return c.json(maskSecrets(key, currentValue(key, row?.value)) as { v: number } | null, 200);
  })
  .openapi(putRoute, async (c) => {
    const { key } = c.req.valid("param");
    const body: unknown = c.req.valid("json");
    const db = c.get("deps").db;

    if (key === HOLIDAYS_KEY) {
      const parsed = holidaysDocSchema.safeParse(body);
      if (!parsed.success) throw invalid(key, parsed.error.issues);
      const inserts = parsed.data.holidays.map((h) => db.insert(holidays).values(h));
      // Replaced in one batch (one transaction): never half a holiday list.
      await db.batch([db.delete(holidays), ...inserts]);
      return c.json(await holidaysDoc(db), 200);
    }
    if (!isSettingKey(key)) throw new AppError(400, "bad_request", `Unknown setting \`${key}\``);
    if (READ_ONLY_KEYS.has(key)) {
      throw new AppError(
        400,
        "bad_request",
        `Setting \`${key}\` is managed by the server and cannot be written`,
      );
    }

    const [row] = await db.select().from(settings).where(eq(settings.key, key));
    const parsed = settingSchemas[key].safeParse(unmaskSecrets(key, body, row?.value));
    if (!parsed.success) throw invalid(key, parsed.error.issues);
    const value = parsed.data;

    if (key === "sip") {
      const current = currentValue("sip", row?.value) as { realm: string };
      const [used] = await db.select({ n: count() }).from(devices);
      if ((value as { realm: string }).realm !== current.realm && (used?.n ?? 0) > 0) {
        throw conflict(
          "The SIP realm cannot change while devices exist: every device's credentials depend on it",
        );
      }
    }

    await safeWrite(() =>
      db
        .insert(settings)
        .values({ key, value })
        .onConflictDoUpdate({
          target: settings.key,
          set: { value, updatedAt: new Date(c.get("deps").clock.now()) },
        }),
    );
    await pushSettingChange(c.get("deps"), key);
    return c.json(maskSecrets(key, value) as { v: number }, 200);
  });

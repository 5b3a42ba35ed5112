/**
 * Reading and writing settings documents from server code (webhooks, jobs, the
 * setup API). The HTTP API in routes.ts adds masking and admin checks on top;
 * here values are the real documents. A write pushes the change to the relay
 * when the relay cares about the key, exactly as a PUT /api/settings does.
 */
import {
  type Db,
  parseSetting,
  type SettingKey,
  type SettingValue,
  settingDefault,
  settings,
} from "@gosip/drizzle";
import { eq } from "drizzle-orm";
import type { EdgeDeps } from "../platform/types.ts";
import { pushSettingChange } from "../relay/push.ts";

/**
 * The stored document of `key` (upgraded to the current version), or its default when
 * nothing valid is stored. `twilio` has no default: null until the wizard saved it.
 */
export async function readSetting<K extends Exclude<SettingKey, "twilio">>(
  db: Db,
  key: K,
): Promise<SettingValue<K>>;
export async function readSetting(db: Db, key: "twilio"): Promise<SettingValue<"twilio"> | null>;
export async function readSetting(db: Db, key: SettingKey): Promise<unknown> {
  const [row] = await db.select({ value: settings.value }).from(settings).where(eq(settings.key, key));
  if (row) {
    try {
      return parseSetting(key, row.value);
    } catch {
      // An unreadable stored document behaves as unset (and is replaced by the next write).
    }
  }
  return key === "twilio" ? null : settingDefault(key);
}

/** Validates and stores `value` for `key` (throws JsonSchemaError when invalid), then tells the relay. */
export async function writeSetting<K extends SettingKey>(
  deps: Pick<EdgeDeps, "db" | "clock" | "relayChannel" | "logger">,
  key: K,
  value: SettingValue<K> | Record<string, unknown>,
): Promise<SettingValue<K>> {
  const parsed = parseSetting(key, value);
  await deps.db
    .insert(settings)
    .values({ key, value: parsed })
    .onConflictDoUpdate({
      target: settings.key,
      set: { value: parsed, updatedAt: new Date(deps.clock.now()) },
    });
  await pushSettingChange(deps, key);
  return parsed;
}

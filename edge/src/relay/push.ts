/**
 * Pushing changes to the relay: the API routes call these after a write the relay
 * must know about (devices, user DND, settings, DIDs, voicemail counts). A push
 * never fails the request that caused it: when no relay is connected it is simply
 * not sent (the relay gets a full snapshot on its next hello), and an error is
 * logged, not thrown.
 */
import type { EdgeDeps } from "../platform/types.ts";
import { configDelta, loadMailboxes, RELAY_SETTING_KEYS } from "./config.ts";

type PushDeps = Pick<EdgeDeps, "db" | "clock" | "logger" | "relayChannel">;

async function guarded(deps: PushDeps, what: string, push: () => Promise<boolean>): Promise<boolean> {
  try {
    return await push();
  } catch (err) {
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err), what }, "relay push failed");
    return false;
  }
}

/** Devices created, changed or deleted; answers whether a relay received the delta. */
export function pushDevices(
  deps: PushDeps,
  change: { upsert?: readonly string[]; remove?: readonly string[] },
): Promise<boolean> {
  return guarded(deps, "devices", async () =>
    deps.relayChannel.send(await configDelta(deps.db, deps.clock, change)),
  );
}

/** Every device again, plus the settings: after a change that can touch any device (global DND, DIDs). */
export function pushAllDevicesAndSettings(deps: PushDeps): Promise<boolean> {
  return guarded(deps, "config", async () =>
    deps.relayChannel.send(await configDelta(deps.db, deps.clock, { upsert: "all", settings: true })),
  );
}

/** A settings key was written: pushes what the relay needs from it, if anything. */
export function pushSettingChange(deps: PushDeps, key: string): Promise<boolean> {
  if (!RELAY_SETTING_KEYS.has(key)) return Promise.resolve(false);
  // Global DND changes every device's effective DND; the rest are settings only.
  if (key === "dnd") return pushAllDevicesAndSettings(deps);
  return guarded(deps, `settings.${key}`, async () =>
    deps.relayChannel.send(await configDelta(deps.db, deps.clock, { settings: true })),
  );
}

/** A user's voicemail counts changed: updates the MWI lamps of their devices. */
export function pushMailboxes(deps: PushDeps, userId: string): Promise<boolean> {
  return guarded(deps, "mwi", async () => {
    const mailboxes = await loadMailboxes(deps.db, [userId]);
    if (mailboxes.length === 0) return false;
    const outcome = await deps.relayChannel.command({ kind: "mwi", mailboxes });
    return outcome.ok;
  });
}

/**
 * The wizard's progress, kept in the `setup` setting (read-only through
 * /api/settings: only the server writes it). Steps complete in any order and a
 * completed step can be run again; `completedAt` is set once every step is done.
 */
import { type SettingValue, setupSteps } from "@gosip/drizzle";
import type { EdgeDeps } from "../platform/types.ts";
import { readSetting, writeSetting } from "../settings/store.ts";

export type SetupStep = (typeof setupSteps)[number];
export type SetupProgress = SettingValue<"setup">;

type ProgressDeps = Pick<EdgeDeps, "db" | "clock" | "relayChannel" | "logger">;

/** The stored progress (an empty one before the first step). */
export function readProgress(deps: Pick<EdgeDeps, "db">): Promise<SetupProgress> {
  return readSetting(deps.db, "setup");
}

/** Marks `step` done (again: no change) and answers the progress now stored. */
export async function completeStep(deps: ProgressDeps, step: SetupStep): Promise<SetupProgress> {
  const current = await readProgress(deps);
  const done = new Set<SetupStep>([...current.completedSteps, step]);
  // Kept in the wizard's order, whatever order the steps ran in.
  const completedSteps = setupSteps.filter((s) => done.has(s));
  const complete = completedSteps.length === setupSteps.length;
  const completedAt = complete
    ? (current.completedAt ?? new Date(deps.clock.now()).toISOString())
    : current.completedAt;
  if (completedSteps.length === current.completedSteps.length && completedAt === current.completedAt) {
    return current;
  }
  return writeSetting(deps, "setup", { v: 1, completedSteps, completedAt });
}

/** Marks steps as to be done again (their work belongs to an account that was replaced). */
export async function reopenSteps(deps: ProgressDeps, steps: readonly SetupStep[]): Promise<SetupProgress> {
  const current = await readProgress(deps);
  const completedSteps = current.completedSteps.filter((s) => !steps.includes(s));
  if (completedSteps.length === current.completedSteps.length) return current;
  return writeSetting(deps, "setup", { v: 1, completedSteps, completedAt: null });
}

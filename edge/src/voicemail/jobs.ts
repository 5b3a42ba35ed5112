/** Outbox job kinds of this feature (see jobs/types.ts), listed in jobs/registry.ts. */
import type { JobHandler } from "../jobs/types.ts";

export const voicemailJobs: Record<string, JobHandler> = {};

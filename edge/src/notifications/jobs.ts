/** Outbox job kinds of this feature (see jobs/types.ts), listed in jobs/registry.ts. */
import type { JobHandler } from "../jobs/types.ts";
import { emailSendJob } from "./email.ts";
import { gotifyPushJob } from "./gotify.ts";

export const notificationsJobs: Record<string, JobHandler> = {
  "email.send": emailSendJob,
  "gotify.push": gotifyPushJob,
};

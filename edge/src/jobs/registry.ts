/** Every outbox job kind, by feature. The runner refuses (and parks) a job of an unknown kind. */
import { messagesJobs } from "../messages/jobs.ts";
import { notificationsJobs } from "../notifications/jobs.ts";
import { voiceJobs } from "../voice/jobs.ts";
import { voicemailJobs } from "../voicemail/jobs.ts";
import type { JobHandler } from "./types.ts";

export const jobHandlers: Readonly<Record<string, JobHandler>> = {
  ...notificationsJobs,
  ...voicemailJobs,
  ...messagesJobs,
  ...voiceJobs,
};

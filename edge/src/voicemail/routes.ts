/** /api/voicemails: list, audio, mark read, delete. */
import { createRouter } from "../http/router.ts";

export const voicemailsRouter = createRouter();

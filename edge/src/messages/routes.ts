/** /api/messages: conversations, send, resend. */
import { createRouter } from "../http/router.ts";

export const messagesRouter = createRouter();

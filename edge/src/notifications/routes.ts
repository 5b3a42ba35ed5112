/** /api/notifications: a user's notification preferences. */
import { createRouter } from "../http/router.ts";

export const notificationsRouter = createRouter();

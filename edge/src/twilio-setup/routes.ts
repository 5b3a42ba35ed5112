/** /api/setup/twilio: the setup wizard's Twilio steps. */
import { createRouter } from "../http/router.ts";

export const twilioSetupRouter = createRouter();

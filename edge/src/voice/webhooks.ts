/** Voice webhooks (voice, dial-result, sip-outbound, call-status), mounted under /api/webhooks/twilio after the signature check. */
import { createRouter } from "../http/router.ts";

export const voiceWebhooks = createRouter();

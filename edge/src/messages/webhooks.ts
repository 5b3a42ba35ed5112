/** SMS webhooks (sms, sms-status), mounted under /api/webhooks/twilio after the signature check. */
import { createRouter } from "../http/router.ts";

export const smsWebhooks = createRouter();

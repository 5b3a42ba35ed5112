/** Voicemail webhooks (recording, transcription), mounted under /api/webhooks/twilio after the signature check. */
import { createRouter } from "../http/router.ts";

export const voicemailWebhooks = createRouter();

// @ts-check
/**
 * GoSIP voicemail fallback (a Twilio Function, the numbers' Voice Fallback URL).
 *
 * Twilio calls it when the edge's voice webhook fails or times out: the edge is
 * down, so nobody can be rung. It answers with a greeting and <Record>. The
 * recording stays in Twilio: this function has no database and the edge cannot
 * be told now, so the edge reconciles it later through the REST API
 * (POST /api/setup/twilio/reconcile lists the recordings and creates the
 * voicemails). No transcription is requested: nothing would receive it.
 *
 * Environment (set by the setup wizard's deployment):
 *   GREETING               what the caller hears before the tone
 *   MAX_RECORDING_SECONDS  longest message (default 180, SPEC §3)
 *
 * After the recording Twilio requests the <Record> action: this same function
 * with ?recorded=1, which hangs up (without an action Twilio would fetch this
 * document again and greet the caller a second time).
 */

const DEFAULT_GREETING = "Nobody can take your call right now. Please leave a message after the tone.";
const DEFAULT_MAX_SECONDS = 180;
/** Twilio's own ceiling for <Record maxLength> is 4 hours; a voicemail never needs that. */
const MAX_SECONDS_CEILING = 3600;
/** Seconds of silence that end the message (SPEC §3). */
const SILENCE_TIMEOUT_SECONDS = 10;

/**
 * @param {string | undefined} value
 * @returns {number}
 */
function maxLength(value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) return DEFAULT_MAX_SECONDS;
  return Math.min(n, MAX_SECONDS_CEILING);
}

/**
 * @param {{ GREETING?: string, MAX_RECORDING_SECONDS?: string }} context
 * @param {{ recorded?: string }} event
 * @param {(error: Error | null, response?: unknown) => void} callback
 */
exports.handler = (context, event, callback) => {
  try {
    const twiml = new Twilio.twiml.VoiceResponse();
    if (event.recorded === "1") {
      twiml.hangup();
      callback(null, twiml);
      return;
    }
    const greeting = (context.GREETING ?? "").trim() || DEFAULT_GREETING;
    twiml.say(greeting);
    twiml.record({
      action: "voicemail-fallback?recorded=1",
      method: "POST",
      maxLength: maxLength(context.MAX_RECORDING_SECONDS),
      timeout: SILENCE_TIMEOUT_SECONDS,
      playBeep: true,
      finishOnKey: "#",
      transcribe: false,
    });
    // Reached only when <Record> got nothing at all (Twilio then continues here).
    twiml.hangup();
    callback(null, twiml);
  } catch (err) {
    callback(err instanceof Error ? err : new Error(String(err)));
  }
};

/**
 * Spam score of an inbound call (SPEC §2 step 3): a number in [0, 1] from what
 * Twilio put on the voice webhook, the highest of the signals present, or null
 * when there is no signal at all. The score is stored on the CDR whether or not
 * the spam filter is on.
 *
 * Signals:
 * - `StirVerstat` (STIR/SHAKEN): attestation A passed 0.0, B passed 0.2, C passed
 *   0.4, no validation 0.5, any failed validation 0.9. Unknown values are ignored.
 * - `AddOns` (Marketplace results, JSON): recognised by the add-on's unique name
 *   (Twilio's default names; a suffix such as `nomorobo_spamscore_2` is fine):
 *   - `nomorobo_spamscore`: `result.score` 0 or 1 (1 = robocaller);
 *   - `marchex_cleancall`: `result.result.recommendation` PASS 0.0, FLAG 0.6, BLOCK 1.0;
 *   - `whitepages_pro_phone_rep`: `result.results[0].reputation.level` 1–4 → 0, ⅓, ⅔, 1;
 *   - any other add-on with a numeric `score`, `spam_score`, `spamScore`,
 *     `risk_score`, `riskScore`, `fraud_score` or `fraudScore` in `result` or
 *     `result.result`: taken as is in [0, 1], divided by 100 in (1, 100].
 *   Add-ons whose status is not "successful" are skipped. Malformed AddOns JSON is
 *   ignored as a whole (StirVerstat still counts) and the notes say so.
 */

/** One signal that contributed to the score. */
export interface SpamSignal {
  source: string;
  score: number;
  detail: string;
}

export interface SpamAssessment {
  /** Highest signal, or null when Twilio sent nothing usable. */
  score: number | null;
  signals: SpamSignal[];
  /** What was present but ignored, and why (for the routing trace). */
  notes: string[];
}

/** AddOns text longer than this is not looked at (Twilio's payloads are a few KB). */
export const MAX_ADDONS_LENGTH = 64 * 1024;

const stirScores: Readonly<Record<string, number>> = {
  "tn-validation-passed-a": 0.0,
  "tn-validation-passed-b": 0.2,
  "tn-validation-passed-c": 0.4,
  "no-tn-validation": 0.5,
  "tn-validation-failed-a": 0.9,
  "tn-validation-failed-b": 0.9,
  "tn-validation-failed-c": 0.9,
  "tn-validation-failed": 0.9,
};

const marchexScores: Readonly<Record<string, number>> = { PASS: 0.0, FLAG: 0.6, BLOCK: 1.0 };

const genericScoreFields = [
  "score",
  "spam_score",
  "spamScore",
  "risk_score",
  "riskScore",
  "fraud_score",
  "fraudScore",
] as const;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function field(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

/** A score field as a fraction: [0, 1] as is, (1, 100] as a percentage; anything else undefined. */
function asFraction(value: unknown): number | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return undefined;
  if (value <= 1) return value;
  if (value <= 100) return value / 100;
  return undefined;
}

function nomorobo(name: string, result: unknown): SpamSignal | string {
  const score = field(result, "score");
  if (score === 0 || score === 1) {
    return {
      source: name,
      score,
      detail: score === 1 ? "Nomorobo: robocaller" : "Nomorobo: not a robocaller",
    };
  }
  return `${name}: no score 0 or 1 in its result`;
}

function marchex(name: string, result: unknown): SpamSignal | string {
  const recommendation = field(field(result, "result"), "recommendation");
  const score = typeof recommendation === "string" ? marchexScores[recommendation] : undefined;
  if (score === undefined) return `${name}: no PASS/FLAG/BLOCK recommendation in its result`;
  const reason = field(field(result, "result"), "reason");
  const why = typeof reason === "string" && reason ? ` (${reason.slice(0, 80)})` : "";
  return { source: name, score, detail: `Marchex Clean Call: ${recommendation}${why}` };
}

function whitepages(name: string, result: unknown): SpamSignal | string {
  const results = field(result, "results");
  const first: unknown = Array.isArray(results) ? results[0] : undefined;
  const level = field(field(first, "reputation"), "level");
  if (typeof level !== "number" || !Number.isInteger(level) || level < 1 || level > 4) {
    return `${name}: no reputation level 1–4 in its result`;
  }
  return { source: name, score: (level - 1) / 3, detail: `Whitepages reputation level ${level} of 4` };
}

function generic(name: string, result: unknown): SpamSignal | string {
  for (const container of [result, field(result, "result")]) {
    for (const key of genericScoreFields) {
      const raw = field(container, key);
      if (raw === undefined) continue;
      const score = asFraction(raw);
      if (score === undefined)
        return `${name}: ${key} ${String(raw).slice(0, 20)} is not in [0, 1] or [0, 100]`;
      return { source: name, score, detail: `${name}: ${key} ${String(raw)}` };
    }
  }
  return `${name}: not a recognised spam add-on (no score field)`;
}

function addOnSignal(name: string, result: unknown): SpamSignal | string {
  if (name.startsWith("nomorobo_spamscore")) return nomorobo(name, result);
  if (name.startsWith("marchex_cleancall")) return marchex(name, result);
  if (name.startsWith("whitepages_pro_phone_rep")) return whitepages(name, result);
  return generic(name, result);
}

function addOnSignals(text: string, signals: SpamSignal[], notes: string[]): void {
  if (text.length > MAX_ADDONS_LENGTH) {
    notes.push(`AddOns ignored: ${text.length} characters, more than ${MAX_ADDONS_LENGTH}`);
    return;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    notes.push("AddOns ignored: not valid JSON");
    return;
  }
  if (!isObject(doc) || !isObject(doc.results)) {
    notes.push("AddOns ignored: not an object with `results`");
    return;
  }
  if (doc.status !== undefined && doc.status !== "successful") {
    notes.push(`AddOns ignored: status ${String(doc.status).slice(0, 40)}`);
    return;
  }
  for (const [name, addOn] of Object.entries(doc.results)) {
    const status = field(addOn, "status");
    if (status !== "successful") {
      notes.push(`${name}: skipped, status ${String(status ?? "missing").slice(0, 40)}`);
      continue;
    }
    const signal = addOnSignal(name, field(addOn, "result"));
    if (typeof signal === "string") notes.push(signal);
    else signals.push(signal);
  }
}

/** The score with the signals that made it and the notes on what was ignored. */
export function assessSpam(stirVerstat?: string, addOnsJson?: string): SpamAssessment {
  const signals: SpamSignal[] = [];
  const notes: string[] = [];
  const verstat = stirVerstat?.trim();
  if (verstat) {
    const score = stirScores[verstat.toLowerCase()];
    if (score === undefined) notes.push(`StirVerstat ${verstat.slice(0, 40)} not recognised`);
    else signals.push({ source: "StirVerstat", score, detail: `StirVerstat ${verstat}` });
  }
  if (addOnsJson?.trim()) addOnSignals(addOnsJson, signals, notes);
  const score = signals.length ? Math.max(...signals.map((s) => s.score)) : null;
  return { score, signals, notes };
}

/** Spam score in [0, 1], or null when Twilio sent no usable data. */
export function spamScore(stirVerstat?: string, addOnsJson?: string): number | null {
  return assessSpam(stirVerstat, addOnsJson).score;
}

// Telephone numbers as a phone's user dials them, turned into E.164 for the Twilio SIP Domain: the national
// conventions of the installation's country (trunk prefix, international access code) and the ranges that are
// premium rate, for the outbound policy's toll-fraud guard. Pure functions; no I/O. Shared by the relay (dial
// plan) and the edge (the SIP Domain's Voice URL checks the policy again), so both apply one copy.

/** How one country's subscribers dial: its country code, national trunk prefix and international prefixes. */
export interface CountryPlan {
  /** E.164 country code without "+". */
  cc: string;
  /** Dropped from a national number before the country code goes in front ("0" in most of Europe). */
  trunkPrefix?: string;
  /** International access codes dialled before a country code ("00", "011"). */
  idd: readonly string[];
  /** Digits a national significant number has (after the trunk prefix), when fixed. */
  nationalLength?: number;
}

const NANP: CountryPlan = { cc: "1", idd: ["011"], nationalLength: 10 };
const EU: Omit<CountryPlan, "cc"> = { trunkPrefix: "0", idd: ["00"] };

/**
 * The common countries of small offices. A country not listed falls back to "+ or 00 only": a number without
 * an international prefix cannot be made E.164 without knowing its country, so it is refused (484).
 */
export const COUNTRY_PLANS: Readonly<Record<string, CountryPlan>> = {
  US: NANP,
  CA: NANP,
  PR: NANP,
  GB: { cc: "44", ...EU },
  IE: { cc: "353", ...EU },
  DE: { cc: "49", ...EU },
  AT: { cc: "43", ...EU },
  CH: { cc: "41", ...EU },
  FR: { cc: "33", ...EU, nationalLength: 9 },
  NL: { cc: "31", ...EU, nationalLength: 9 },
  BE: { cc: "32", ...EU },
  SE: { cc: "46", ...EU },
  FI: { cc: "358", ...EU },
  // These keep their leading 0 (Italy) or have none (Spain, Portugal, Denmark, Norway, Poland, Greece).
  IT: { cc: "39", idd: ["00"] },
  ES: { cc: "34", idd: ["00"], nationalLength: 9 },
  PT: { cc: "351", idd: ["00"], nationalLength: 9 },
  DK: { cc: "45", idd: ["00"], nationalLength: 8 },
  NO: { cc: "47", idd: ["00"], nationalLength: 8 },
  PL: { cc: "48", idd: ["00"], nationalLength: 9 },
  GR: { cc: "30", idd: ["00"], nationalLength: 10 },
  AU: { cc: "61", trunkPrefix: "0", idd: ["0011"], nationalLength: 9 },
  NZ: { cc: "64", trunkPrefix: "0", idd: ["00"] },
  JP: { cc: "81", trunkPrefix: "0", idd: ["010"] },
  IN: { cc: "91", trunkPrefix: "0", idd: ["00"], nationalLength: 10 },
  ZA: { cc: "27", trunkPrefix: "0", idd: ["00"], nationalLength: 9 },
  MX: { cc: "52", idd: ["00"], nationalLength: 10 },
  BR: { cc: "55", trunkPrefix: "0", idd: ["00"] },
  IL: { cc: "972", trunkPrefix: "0", idd: ["00"] },
};

/**
 * Known premium-rate and revenue-share ranges in E.164 (prefix match). Toll fraud on a hijacked phone dials
 * these; `blockPremiumRate` refuses them whatever the allowed prefixes say.
 */
export const PREMIUM_RATE_PREFIXES: readonly string[] = [
  // NANP: 900 premium, 976 (legacy premium exchange)
  "+1900",
  "+1976",
  // UK: 09 premium rate, 087x revenue-share service numbers, 070 personal numbers (a classic fraud target),
  // 118 directory enquiries
  "+449",
  "+4487",
  "+4470",
  "+44118",
  // Ireland 15xx (not +3531: that is Dublin)
  "+35315",
  // Germany 0900 premium, 0137 televoting, 0118 directory
  "+49900",
  "+49137",
  "+49118",
  // Austria 09xx, Switzerland 090x
  "+43900",
  "+43930",
  "+4190",
  // France 089x
  "+3389",
  // Netherlands 0900 / 0906 / 0909
  "+31900",
  "+31906",
  "+31909",
  // Belgium 090x, Italy 89x, Spain 80x premium
  "+3290",
  "+3989",
  "+34803",
  "+34806",
  "+34807",
  // Australia 190x
  "+61190",
  // Satellite and "international networks" codes, never a legitimate home-office destination
  "+8816",
  "+8817",
  "+882",
  "+883",
];

/** Emergency numbers: always allowed, sent as dialled. */
export const EMERGENCY_NUMBERS: ReadonlySet<string> = new Set(["911", "112", "999"]);

const E164 = /^\+[1-9]\d{6,14}$/;

export type NormaliseResult = { ok: true; e164: string } | { ok: false; reason: string };

/**
 * A dialled string (digits, maybe a leading +, visual separators already removed) in E.164, using the
 * installation's country for national numbers.
 */
export function toE164(dialled: string, country: string): NormaliseResult {
  const plan = COUNTRY_PLANS[country];
  let intl: string | undefined;
  if (dialled.startsWith("+")) intl = dialled.slice(1);
  else {
    const idds = plan ? plan.idd : ["00"];
    // Longest access code first: Australia's 0011 before a (hypothetical) 00.
    const idd = [...idds].sort((a, b) => b.length - a.length).find((p) => dialled.startsWith(p));
    if (idd) intl = dialled.slice(idd.length);
    else if (plan === NANP || plan?.cc === "1") {
      if (dialled.length === 10) intl = `1${dialled}`;
      else if (dialled.length === 11 && dialled.startsWith("1")) intl = dialled;
      else return { ok: false, reason: "a North American number has 10 digits (or 1 and 10 digits)" };
      // NANP area codes never start with 0 or 1 (a 1 there is a mistyped long-distance prefix).
      if (!/^1[2-9]/.test(intl)) return { ok: false, reason: "not a valid North American number" };
    } else if (plan) {
      let national = dialled;
      if (plan.trunkPrefix) {
        if (!national.startsWith(plan.trunkPrefix))
          return { ok: false, reason: `a national number starts with ${plan.trunkPrefix}` };
        national = national.slice(plan.trunkPrefix.length);
      }
      if (plan.nationalLength !== undefined && national.length !== plan.nationalLength)
        return { ok: false, reason: `a national number has ${plan.nationalLength} digits` };
      intl = `${plan.cc}${national}`;
    } else {
      return { ok: false, reason: "dial the number with + or 00 and its country code" };
    }
  }
  const e164 = `+${intl}`;
  if (!E164.test(e164)) return { ok: false, reason: "not a valid international number" };
  return { ok: true, e164 };
}

/** True when an E.164 number falls in a known premium-rate range. */
export function isPremiumRate(e164: string): boolean {
  return PREMIUM_RATE_PREFIXES.some((p) => e164.startsWith(p));
}

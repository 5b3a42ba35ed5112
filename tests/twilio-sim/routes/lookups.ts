/**
 * Lookups v2 (lookups.twilio.com): GET /v2/PhoneNumbers/{PhoneNumber} with
 * Fields=caller_name,line_type_intelligence. What it knows about a number comes
 * from `state.lookups`; an unknown valid number has no caller name and a
 * "mobile" line type. An invalid number answers 200 with valid: false, as v2 does.
 */
import { ok, type Router, SimError } from "../http.ts";
import type { SimContext } from "../server.ts";
import { formatNational, isE164 } from "../state.ts";

const FIELDS = new Set([
  "caller_name",
  "line_type_intelligence",
  "sim_swap",
  "call_forwarding",
  "line_status",
  "identity_match",
  "reassigned_number",
  "sms_pumping_risk",
  "phone_number_quality_score",
  "pre_fill",
  "validation",
]);

export function registerLookupRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  router.get("/v2/PhoneNumbers/:PhoneNumber", (req) => {
    const raw = req.params.PhoneNumber ?? "";
    const fields = (req.query.get("Fields") ?? "")
      .split(",")
      .map((f) => f.trim())
      .filter(Boolean);
    for (const f of fields) if (!FIELDS.has(f)) throw new SimError(400, 60200, `Invalid Fields value ${f}`);
    const country = req.query.get("CountryCode");
    const digits = raw.replace(/[\s().-]/g, "");
    const e164 = digits.startsWith("+") ? digits : country === "US" || !country ? `+1${digits}` : digits;
    const valid = isE164(e164) && (!e164.startsWith("+1") || /^\+1[2-9]\d{2}[2-9]\d{6}$/.test(e164));
    const facts = state.lookups.get(e164) ?? {};
    const base = {
      calling_country_code: valid && e164.startsWith("+1") ? "1" : null,
      country_code: valid && e164.startsWith("+1") ? "US" : null,
      phone_number: valid ? e164 : raw,
      national_format: valid ? formatNational(e164) : null,
      valid,
      validation_errors: valid ? [] : ["NOT_A_NUMBER"],
      caller_name:
        fields.includes("caller_name") && valid
          ? {
              caller_name: facts.callerName ?? null,
              caller_type: facts.callerType ?? null,
              error_code: null,
            }
          : null,
      sim_swap: null,
      call_forwarding: null,
      line_type_intelligence:
        fields.includes("line_type_intelligence") && valid
          ? {
              mobile_country_code: "310",
              mobile_network_code: "456",
              carrier_name: facts.carrierName ?? "Simulated Wireless",
              type: facts.lineType ?? "mobile",
              error_code: null,
            }
          : null,
      line_status: null,
      identity_match: null,
      reassigned_number: null,
      sms_pumping_risk: null,
      phone_number_quality_score: null,
      pre_fill: null,
      url: `${state.baseUrl}/v2/PhoneNumbers/${encodeURIComponent(valid ? e164 : raw)}`,
    };
    return ok(base);
  });
}

// User-Agents of SIP scanners and war-dialling tools. Their requests are dropped without an answer, so the
// scan finds nothing here. Matched case-insensitively anywhere in the header; a real phone never sends these.
const SCANNER_AGENTS = [
  "friendly-scanner",
  "friendly-request",
  "sipvicious",
  "sipcli",
  "sip-cli",
  "vaxsipuseragent",
  "sundayddr",
  "sip-scan",
  "iwar",
  "sivus",
  "gulp",
  "pplsip",
  "portsip voip sdk",
  "smap",
  "nessus",
  "sipptk",
  "siparmyknife",
  "voipbuster",
  "cpxinterface",
  "fbsip",
  "masscan",
];

const SCANNER_RE = new RegExp(
  SCANNER_AGENTS.map((s) => s.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")).join("|"),
  "i",
);

/** True when the User-Agent names a known scanner. */
export function isScannerAgent(userAgent: string | undefined): boolean {
  return userAgent !== undefined && userAgent !== "" && SCANNER_RE.test(userAgent);
}

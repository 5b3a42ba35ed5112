// CSeq parsing, standard reason phrases and building a response from a request (RFC 3261 §8.2.6).

import { TOKEN } from "./chars.ts";
import { SipHeaders } from "./headers.ts";
import type { CSeq, SipRequest, SipResponse } from "./message.ts";

/** Largest CSeq number: the grammar allows a 32-bit unsigned value. */
const MAX_CSEQ = 0xffffffff;

/** Parse "1234 INVITE" (any whitespace between). Numbers above 2^32-1 or non-token methods give undefined. */
export function parseCSeq(value: string): CSeq | undefined {
  const s = value;
  const n = s.length;
  let i = 0;
  while (i < n && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  const numStart = i;
  let seq = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
    if (seq > MAX_CSEQ) return undefined;
    i++;
  }
  if (i === numStart) return undefined;
  const wsStart = i;
  while (i < n && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  if (i === wsStart) return undefined;
  const mStart = i;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) break;
    i++;
  }
  if (i === mStart) return undefined;
  const mEnd = i;
  while (i < n && (s.charCodeAt(i) === 32 || s.charCodeAt(i) === 9)) i++;
  if (i !== n) return undefined;
  return { seq, method: s.slice(mStart, mEnd) };
}

const REASONS: Record<number, string> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  182: "Queued",
  183: "Session Progress",
  199: "Early Dialog Terminated",
  200: "OK",
  202: "Accepted",
  204: "No Notification",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  305: "Use Proxy",
  380: "Alternative Service",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  410: "Gone",
  412: "Conditional Request Failed",
  413: "Request Entity Too Large",
  414: "Request-URI Too Long",
  415: "Unsupported Media Type",
  416: "Unsupported URI Scheme",
  417: "Unknown Resource-Priority",
  420: "Bad Extension",
  421: "Extension Required",
  422: "Session Interval Too Small",
  423: "Interval Too Brief",
  428: "Use Identity Header",
  429: "Provide Referrer Identity",
  430: "Flow Failed",
  433: "Anonymity Disallowed",
  436: "Bad Identity-Info",
  437: "Unsupported Certificate",
  438: "Invalid Identity Header",
  439: "First Hop Lacks Outbound Support",
  440: "Max-Breadth Exceeded",
  469: "Bad Info Package",
  470: "Consent Needed",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  483: "Too Many Hops",
  484: "Address Incomplete",
  485: "Ambiguous",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  489: "Bad Event",
  491: "Request Pending",
  493: "Undecipherable",
  494: "Security Agreement Required",
  500: "Server Internal Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Server Time-out",
  505: "Version Not Supported",
  513: "Message Too Large",
  555: "Push Notification Service Not Supported",
  580: "Precondition Failure",
  600: "Busy Everywhere",
  603: "Decline",
  604: "Does Not Exist Anywhere",
  606: "Not Acceptable",
  607: "Unwanted",
  608: "Rejected",
};

/** Standard reason phrase for a status code (class default for unknown codes). */
export function reasonPhrase(status: number): string {
  const r = REASONS[status];
  if (r !== undefined) return r;
  if (status < 200) return "Trying";
  if (status < 300) return "OK";
  if (status < 400) return "Redirection";
  if (status < 500) return "Client Error";
  if (status < 600) return "Server Error";
  return "Global Failure";
}

export interface CreateResponseOptions {
  /** Tag to add to the To header if it has none (required for responses other than 100 that create a dialog). */
  toTag?: string;
}

/**
 * Build a response to a request per §8.2.6: copies every Via (in order), From, To, Call-ID and CSeq; empty body.
 * The To tag is added only when `opts.toTag` is given and the request's To has no tag yet.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts?: CreateResponseOptions,
): SipResponse {
  const h = new SipHeaders();
  const src = req.headers;
  for (const v of src.getAll("via")) h.append("Via", v);
  const from = src.get("from");
  if (from !== undefined) h.append("From", from);
  let to = src.get("to");
  if (to !== undefined && opts?.toTag !== undefined && !hasTag(to)) to = `${to};tag=${opts.toTag}`;
  if (to !== undefined) h.append("To", to);
  const callId = src.get("call-id");
  if (callId !== undefined) h.append("Call-ID", callId);
  const cseq = src.get("cseq");
  if (cseq !== undefined) h.append("CSeq", cseq);
  return {
    kind: "response",
    status,
    reason: reason ?? reasonPhrase(status),
    version: "SIP/2.0",
    headers: h,
    body: Buffer.alloc(0),
  };
}

/** Whether a To/From value carries a tag parameter (outside the URI's angle brackets and quotes). */
export function hasTag(value: string): boolean {
  return tagOf(value) !== undefined;
}

/**
 * The tag parameter of a From/To value, found by scanning header params after the URI (fast path for the stack,
 * which needs tags on every message); undefined if absent.
 */
export function tagOf(value: string): string | undefined {
  const s = value;
  const n = s.length;
  let i = 0;
  let inQuote = false;
  // Params start after '>' when there are angle brackets, else after the addr-spec.
  const gt = s.lastIndexOf(">");
  if (gt !== -1) i = gt + 1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
      continue;
    }
    if (c === 34) inQuote = true;
    else if (c === 59 /* ; */) {
      let j = i + 1;
      while (j < n && (s.charCodeAt(j) === 32 || s.charCodeAt(j) === 9)) j++;
      if (
        j + 3 <= n &&
        (s.charCodeAt(j) | 32) === 116 &&
        (s.charCodeAt(j + 1) | 32) === 97 &&
        (s.charCodeAt(j + 2) | 32) === 103
      ) {
        let k = j + 3;
        while (k < n && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9)) k++;
        if (k < n && s.charCodeAt(k) === 61 /* = */) {
          k++;
          while (k < n && (s.charCodeAt(k) === 32 || s.charCodeAt(k) === 9)) k++;
          let e = k;
          while (e < n) {
            const d = s.charCodeAt(e);
            if (d > 127 || TOKEN[d] !== 1) break;
            e++;
          }
          if (e > k) return s.slice(k, e);
        }
      }
    }
  }
  return undefined;
}

// SIP message model (Contract 1 of the engine): the request/response types shared by the stack and the agent,
// plus the public entry points of the parser, serializer and header helpers, re-exported from their modules.

import type { SipHeaders } from "./headers.ts";

export { StreamFramer } from "./framer.ts";
export { headerKey, isListHeader, SipHeaderError, SipHeaders, splitList } from "./headers.ts";
export { newBranch, newCallId, newTag } from "./ids.ts";
export { formatNameAddr, formatParams, isValidNameAddr, parseNameAddr } from "./name-addr.ts";
export { DEFAULT_LIMITS, parseMessage } from "./parse.ts";
export type { CreateResponseOptions } from "./response.ts";
export { createResponse, hasTag, parseCSeq, reasonPhrase, tagOf } from "./response.ts";
export { serializeMessage } from "./serialize.ts";
export { formatUri, parseUri } from "./uri.ts";
export { formatVia, parseVia } from "./via.ts";

export type SipMessage = SipRequest | SipResponse;

export interface SipRequest {
  kind: "request";
  method: string;
  uri: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  kind: "response";
  status: number;
  reason: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
      ok: false;
      reason: string;
      /** Enough of the request to send an error response (Via, From, To, Call-ID, CSeq present; never for ACK). */
      respondable?: SipRequest;
      /** Status the stack should answer a respondable request with: 400 unless noted (505 version, 513 too large). */
      status?: number;
    };

/** Size limits applied by parseMessage and StreamFramer. */
export interface ParseLimits {
  /** Whole message including body, bytes (default 65536). */
  maxMessageSize: number;
  /** Number of header lines (default 256). */
  maxHeaders: number;
  /** Length of one header line after unfolding, characters (default 16384). */
  maxLineLength: number;
}

/** Generic parameter map: lower-cased names; `null` for a parameter without value (";lr"). */
export type Params = Map<string, string | null>;

export interface Via {
  /** "SIP/2.0" */
  protocol: string;
  /** Upper-cased: "UDP", "TCP", "TLS", "WS"... */
  transport: string;
  /** Host as written; IPv6 references keep their brackets ("[2001:db8::1]"). */
  host: string;
  port?: number;
  /** Every parameter in order, including branch/received/rport. */
  params: Params;
  branch?: string;
  received?: string;
  /** RFC 3581: `true` when present without value (request), a number once filled in. */
  rport?: number | true;
}

export interface NameAddr {
  /** Unquoted and unescaped display name. */
  displayName?: string;
  /** The URI as written (without angle brackets). */
  uri: string;
  /** Header parameters (tag, expires, q, ...). */
  params: Params;
}

export interface SipUri {
  /** Lower-cased scheme: "sip", "sips" or "tel". */
  scheme: string;
  /** Unescaped user part (for tel: the telephone-subscriber number). */
  user?: string;
  /** Unescaped password. */
  password?: string;
  /** Host as written, lower-cased; IPv6 references keep their brackets. Empty for tel: URIs. */
  host: string;
  port?: number;
  /** URI parameters, names lower-cased, values unescaped. */
  params: Params;
  /** URI headers (?a=b&c=d), unescaped. */
  headers: Map<string, string>;
}

export interface CSeq {
  seq: number;
  method: string;
}

// Via header values (RFC 3261 §20.42, RFC 3581 rport): `SIP / 2.0 / UDP host:port;branch=z9hG4bK..;rport`.
// Whitespace is allowed around the slashes and parameter separators.

import { TOKEN } from "./chars.ts";
import type { Params, Via } from "./message.ts";
import { parseHeaderParams } from "./name-addr.ts";
import { parseHostPort } from "./uri.ts";

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

function readToken(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c > 127 || TOKEN[c] !== 1) break;
    i++;
  }
  return i;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** 1*DIGIT "." 1*DIGIT */
function isProtocolVersion(v: string): boolean {
  const dot = v.indexOf(".");
  if (dot < 1 || dot === v.length - 1) return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (i !== dot && (c < 48 || c > 57)) return false;
  }
  return true;
}

/** Parse one Via value (use SipHeaders.getAll("via") to get the values). */
export function parseVia(value: string): Via | undefined {
  const s = value;
  let i = skipWs(s, 0);
  let e = readToken(s, i);
  if (e === i) return undefined;
  const name = s.slice(i, e);
  // Only SIP itself (spelled as every implementation, including drachtio-srf, expects it).
  if (name !== "SIP") return undefined;
  i = skipWs(s, e);
  if (s.charCodeAt(i) !== 47 /* / */) return undefined;
  i = skipWs(s, i + 1);
  e = readToken(s, i);
  if (e === i) return undefined;
  const version = s.slice(i, e);
  if (!isProtocolVersion(version)) return undefined;
  i = skipWs(s, e);
  if (s.charCodeAt(i) !== 47) return undefined;
  i = skipWs(s, i + 1);
  e = readToken(s, i);
  if (e === i) return undefined;
  const transport = s.slice(i, e).toUpperCase();
  i = e;
  if (!isWs(s.charCodeAt(i))) return undefined;
  i = skipWs(s, i);
  // sent-by runs to ';' or whitespace (a comment or params may follow).
  const hpStart = i;
  if (s.charCodeAt(i) === 91 /* [ */) {
    const close = s.indexOf("]", i);
    if (close === -1) return undefined;
    i = close + 1;
  }
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 59 || isWs(c)) break;
    i++;
  }
  const hp = parseHostPort(s.slice(hpStart, i));
  if (hp === undefined) return undefined;
  const params: Params = new Map();
  if (!parseHeaderParams(s, i, params)) return undefined;
  // Every field present from the start: one object shape for all Vias keeps property access monomorphic.
  const via: Via = {
    protocol: version === "2.0" ? "SIP/2.0" : `SIP/${version}`,
    transport,
    host: hp.host,
    port: hp.port,
    params,
    branch: undefined,
    received: undefined,
    rport: undefined,
  };
  const branch = params.get("branch");
  if (branch !== undefined) {
    // A branch is a token; a quoted or empty one is malformed.
    if (branch === null || branch.charCodeAt(0) === 34) return undefined;
    via.branch = branch;
  }
  const received = params.get("received");
  if (received !== undefined) {
    if (received === null) return undefined;
    via.received = received;
  }
  const rport = params.get("rport");
  if (rport !== undefined) {
    if (rport === null) via.rport = true;
    else {
      const p = Number(rport);
      if (!Number.isInteger(p) || p < 1 || p > 65535) return undefined;
      via.rport = p;
    }
  }
  return via;
}

/** Format a Via value; branch/received/rport fields override same-named entries in params. */
export function formatVia(via: Via): string {
  let s = `${via.protocol}/${via.transport} ${via.host}`;
  if (via.port !== undefined) s += `:${via.port}`;
  const params = new Map(via.params);
  if (via.branch !== undefined) params.set("branch", via.branch);
  if (via.received !== undefined) params.set("received", via.received);
  if (via.rport !== undefined) params.set("rport", via.rport === true ? null : String(via.rport));
  for (const [k, v] of params) s += v === null ? `;${k}` : `;${k}=${v}`;
  return s;
}

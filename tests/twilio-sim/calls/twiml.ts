/**
 * TwiML as the Twilio simulator reads it: the XML a voice webhook answered, validated and turned into
 * typed verbs with Twilio's defaults applied. Like Twilio, a document that is not well-formed XML, whose
 * root is not <Response>, or that holds a verb or noun Twilio does not know where it stands, is refused
 * (Twilio's error 12100/12200: the caller hears "an application error has occurred" and the Voice
 * Fallback URL is tried). Unknown attributes are ignored, as Twilio ignores them; a malformed numeric
 * attribute falls back to its default, as Twilio does with a warning.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";

export type HttpMethod = "GET" | "POST";

export interface SayVerb {
  verb: "Say";
  text: string;
  voice: string | undefined;
  language: string | undefined;
  loop: number;
}

export interface PlayVerb {
  verb: "Play";
  /** Absolute URL (resolved against the document's URL). Empty with `digits` alone. */
  url: string;
  loop: number;
  digits: string | undefined;
}

export interface PauseVerb {
  verb: "Pause";
  length: number;
}

export interface GatherVerb {
  verb: "Gather";
  action: string | undefined;
  method: HttpMethod;
  timeout: number;
  numDigits: number | undefined;
  finishOnKey: string;
  input: string;
  actionOnEmptyResult: boolean;
  /** What Twilio plays while it listens (<Say>, <Play>, <Pause> only). */
  prompts: (SayVerb | PlayVerb | PauseVerb)[];
}

export interface RecordVerb {
  verb: "Record";
  action: string | undefined;
  method: HttpMethod;
  timeout: number;
  finishOnKey: string;
  maxLength: number;
  playBeep: boolean;
  trim: "trim-silence" | "do-not-trim";
  recordingStatusCallback: string | undefined;
  recordingStatusCallbackMethod: HttpMethod;
  recordingStatusCallbackEvent: string[];
  transcribe: boolean;
  transcribeCallback: string | undefined;
}

export interface SipNoun {
  kind: "sip";
  /** The SIP URI as written (may carry `?X-Header=value&…`). */
  uri: string;
  username: string | undefined;
  password: string | undefined;
  url: string | undefined;
  statusCallback: string | undefined;
}

export interface NumberNoun {
  kind: "number";
  number: string;
  sendDigits: string | undefined;
  url: string | undefined;
  statusCallback: string | undefined;
}

export interface ClientNoun {
  kind: "client";
  identity: string;
}

export type DialNoun = SipNoun | NumberNoun | ClientNoun;

export interface DialVerb {
  verb: "Dial";
  action: string | undefined;
  method: HttpMethod;
  timeout: number;
  callerId: string | undefined;
  answerOnBridge: boolean;
  timeLimit: number;
  record: string | undefined;
  hangupOnStar: boolean;
  nouns: DialNoun[];
}

export interface RedirectVerb {
  verb: "Redirect";
  url: string;
  method: HttpMethod;
}

export interface RejectVerb {
  verb: "Reject";
  reason: "rejected" | "busy";
}

export interface HangupVerb {
  verb: "Hangup";
}

export type TwimlVerb =
  | SayVerb
  | PlayVerb
  | PauseVerb
  | GatherVerb
  | RecordVerb
  | DialVerb
  | RedirectVerb
  | RejectVerb
  | HangupVerb;

/** TwiML Twilio would refuse (its error codes: 12100 parse failure, 12200 schema validation). */
export class TwimlError extends Error {
  constructor(
    readonly code: 12100 | 12200,
    message: string,
  ) {
    super(message);
    this.name = "TwimlError";
  }
}

type Attrs = Record<string, string>;
/** One element of fast-xml-parser's ordered output: `{ Tag: children, ":@": attrs }` or `{ "#text": … }`. */
type OrderedNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "",
  preserveOrder: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
});

function tagOf(node: OrderedNode): string | undefined {
  return Object.keys(node).find((k) => k !== ":@");
}

function attrsOf(node: OrderedNode): Attrs {
  const a = node[":@"];
  const out: Attrs = {};
  if (a && typeof a === "object")
    for (const [k, v] of Object.entries(a as Record<string, unknown>)) out[k] = String(v);
  return out;
}

function childrenOf(node: OrderedNode, tag: string): OrderedNode[] {
  const c = node[tag];
  return Array.isArray(c) ? (c as OrderedNode[]) : [];
}

function textOf(node: OrderedNode, tag: string): string {
  return childrenOf(node, tag)
    .map((c) => (typeof c["#text"] === "string" || typeof c["#text"] === "number" ? String(c["#text"]) : ""))
    .join("")
    .trim();
}

function elementsOf(node: OrderedNode, tag: string): OrderedNode[] {
  return childrenOf(node, tag).filter((c) => tagOf(c) !== "#text");
}

function int(value: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || !/^\s*-?\d+\s*$/.test(value)) return fallback;
  const n = Number(value);
  return n < min || n > max ? fallback : n;
}

function bool(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  return fallback;
}

function method(value: string | undefined): HttpMethod {
  return value?.trim().toUpperCase() === "GET" ? "GET" : "POST";
}

/** An action/callback URL resolved against the document's URL (Twilio accepts relative URLs). */
function url(value: string | undefined, base: string): string | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  try {
    return new URL(value.trim(), base).toString();
  } catch {
    throw new TwimlError(12200, `not a URL: ${value}`);
  }
}

function say(node: OrderedNode, a: Attrs): SayVerb {
  return {
    verb: "Say",
    text: textOf(node, "Say"),
    voice: a.voice,
    language: a.language,
    loop: int(a.loop, 1, 0, 1000),
  };
}

function play(node: OrderedNode, a: Attrs, base: string): PlayVerb {
  const text = textOf(node, "Play");
  if (!text && !a.digits) throw new TwimlError(12200, "<Play> needs a URL or digits");
  return {
    verb: "Play",
    url: text ? (url(text, base) ?? "") : "",
    loop: int(a.loop, 1, 0, 1000),
    digits: a.digits,
  };
}

function pause(a: Attrs): PauseVerb {
  return { verb: "Pause", length: int(a.length, 1, 0, 600) };
}

function gather(node: OrderedNode, a: Attrs, base: string): GatherVerb {
  const prompts: GatherVerb["prompts"] = [];
  for (const child of elementsOf(node, "Gather")) {
    const tag = tagOf(child);
    const ca = attrsOf(child);
    if (tag === "Say") prompts.push(say(child, ca));
    else if (tag === "Play") prompts.push(play(child, ca, base));
    else if (tag === "Pause") prompts.push(pause(ca));
    else throw new TwimlError(12200, `<${tag}> cannot be nested in <Gather>`);
  }
  const numDigits = a.numDigits === undefined ? undefined : int(a.numDigits, 0, 1, 100);
  return {
    verb: "Gather",
    action: url(a.action, base),
    method: method(a.method),
    timeout: int(a.timeout, 5, 1, 600),
    numDigits: numDigits === 0 ? undefined : numDigits,
    finishOnKey: a.finishOnKey ?? "#",
    input: a.input ?? "dtmf",
    actionOnEmptyResult: bool(a.actionOnEmptyResult, false),
    prompts,
  };
}

function record(a: Attrs, base: string): RecordVerb {
  return {
    verb: "Record",
    action: url(a.action, base),
    method: method(a.method),
    timeout: int(a.timeout, 5, 0, 3600),
    finishOnKey: a.finishOnKey ?? "1234567890*#",
    maxLength: int(a.maxLength, 3600, 1, 14400),
    playBeep: bool(a.playBeep, true),
    trim: a.trim === "do-not-trim" ? "do-not-trim" : "trim-silence",
    recordingStatusCallback: url(a.recordingStatusCallback, base),
    recordingStatusCallbackMethod: method(a.recordingStatusCallbackMethod),
    recordingStatusCallbackEvent: (a.recordingStatusCallbackEvent ?? "completed")
      .split(/[\s,]+/)
      .filter(Boolean),
    transcribe: bool(a.transcribe, false),
    transcribeCallback: url(a.transcribeCallback, base),
  };
}

function dial(node: OrderedNode, a: Attrs, base: string): DialVerb {
  const nouns: DialNoun[] = [];
  const text = textOf(node, "Dial");
  if (text)
    nouns.push({
      kind: "number",
      number: text,
      sendDigits: undefined,
      url: undefined,
      statusCallback: undefined,
    });
  for (const child of elementsOf(node, "Dial")) {
    const tag = tagOf(child) ?? "";
    const ca = attrsOf(child);
    const body = textOf(child, tag);
    if (tag === "Sip") {
      if (!/^sips?:/i.test(body)) throw new TwimlError(12200, `<Sip> needs a sip: URI, got "${body}"`);
      nouns.push({
        kind: "sip",
        uri: body,
        username: ca.username,
        password: ca.password,
        url: url(ca.url, base),
        statusCallback: url(ca.statusCallback, base),
      });
    } else if (tag === "Number") {
      if (!body) throw new TwimlError(12200, "<Number> needs a phone number");
      nouns.push({
        kind: "number",
        number: body,
        sendDigits: ca.sendDigits,
        url: url(ca.url, base),
        statusCallback: url(ca.statusCallback, base),
      });
    } else if (tag === "Client") {
      nouns.push({ kind: "client", identity: body });
    } else {
      throw new TwimlError(12200, `<${tag}> cannot be nested in <Dial>`);
    }
  }
  if (nouns.length === 0) throw new TwimlError(12200, "<Dial> has nothing to dial");
  if (nouns.filter((n) => n.kind === "number").length > 10)
    throw new TwimlError(12200, "<Dial> can dial at most 10 numbers at once");
  return {
    verb: "Dial",
    action: url(a.action, base),
    method: method(a.method),
    timeout: int(a.timeout, 30, 5, 600),
    callerId: a.callerId,
    answerOnBridge: bool(a.answerOnBridge, false),
    timeLimit: int(a.timeLimit, 14400, 1, 14400),
    record: a.record,
    hangupOnStar: bool(a.hangupOnStar, false),
    nouns,
  };
}

/**
 * Parses a TwiML document fetched from `documentUrl` (relative URLs in it resolve against that).
 * Throws `TwimlError` for anything Twilio would refuse.
 */
export function parseTwiml(xml: string, documentUrl: string): TwimlVerb[] {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new TwimlError(12100, `not well-formed XML: ${valid.err.msg}`);
  const doc = parser.parse(xml) as OrderedNode[];
  const roots = doc.filter((n) => {
    const t = tagOf(n);
    return t !== undefined && t !== "?xml" && t !== "#text" && t !== "#comment";
  });
  const root = roots[0];
  if (roots.length !== 1 || !root || tagOf(root) !== "Response")
    throw new TwimlError(12100, "the document root must be one <Response>");
  const verbs: TwimlVerb[] = [];
  for (const node of elementsOf(root, "Response")) {
    const tag = tagOf(node);
    const a = attrsOf(node);
    switch (tag) {
      case "Say":
        verbs.push(say(node, a));
        break;
      case "Play":
        verbs.push(play(node, a, documentUrl));
        break;
      case "Pause":
        verbs.push(pause(a));
        break;
      case "Gather":
        verbs.push(gather(node, a, documentUrl));
        break;
      case "Record":
        verbs.push(record(a, documentUrl));
        break;
      case "Dial":
        verbs.push(dial(node, a, documentUrl));
        break;
      case "Redirect": {
        const target = url(textOf(node, "Redirect"), documentUrl);
        if (!target) throw new TwimlError(12200, "<Redirect> needs a URL");
        verbs.push({ verb: "Redirect", url: target, method: method(a.method) });
        break;
      }
      case "Reject":
        verbs.push({ verb: "Reject", reason: a.reason === "busy" ? "busy" : "rejected" });
        break;
      case "Hangup":
        verbs.push({ verb: "Hangup" });
        break;
      default:
        throw new TwimlError(12200, `<${tag}> is not a voice verb the simulator knows`);
    }
  }
  return verbs;
}

/** Splits `sip:user@host;params?X-A=1&X-B=2` into the URI without headers and the headers Twilio sends. */
export function splitSipUri(uri: string): { uri: string; headers: Record<string, string> } {
  const q = uri.indexOf("?");
  if (q < 0) return { uri, headers: {} };
  const headers: Record<string, string> = {};
  for (const pair of uri.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const name = decodeURIComponent(pair.slice(0, eq));
    const value = decodeURIComponent(pair.slice(eq + 1));
    // Twilio passes only X- headers and a few standard ones (its warning 13252 for the rest).
    if (
      /^x-[A-Za-z0-9-]+$/i.test(name) ||
      /^(User-to-User|Remote-Party-ID|P-Preferred-Identity|P-Called-Party-ID)$/i.test(name)
    )
      headers[name] = value;
  }
  return { uri: uri.slice(0, q), headers };
}

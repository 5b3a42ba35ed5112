/**
 * TwiML as data: verbs and nouns are plain objects, rendered to XML in one place
 * where every attribute and every text node is escaped. Nothing outside this file
 * writes XML by hand, so no caller name, SMS body or rule text can inject markup.
 *
 *   twiml([el("Dial", { timeout: 30, action: url }, [el("Sip", {}, [uri])])])
 */

export type TwimlAttributes = Readonly<Record<string, string | number | boolean | undefined>>;

export interface TwimlElement {
  name: string;
  attributes: TwimlAttributes;
  children: readonly TwimlNode[];
}

/** An element, or text content (escaped when rendered). */
export type TwimlNode = TwimlElement | string;

const NAME = /^[A-Za-z][A-Za-z0-9]*$/;

/** An element; `children` are elements or text. Names are TwiML verb/noun names only. */
export function el(
  name: string,
  attributes: TwimlAttributes = {},
  children: readonly TwimlNode[] = [],
): TwimlElement {
  if (!NAME.test(name)) throw new TypeError(`invalid TwiML element name: ${name}`);
  for (const key of Object.keys(attributes)) {
    if (!NAME.test(key)) throw new TypeError(`invalid TwiML attribute name: ${key}`);
  }
  return { name, attributes, children };
}

// XML 1.0 forbids most control characters even escaped; they are dropped.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Escapes text for an XML text node or a double-quoted attribute. */
export function escapeXml(value: string): string {
  return value
    .replace(FORBIDDEN, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function render(node: TwimlNode): string {
  if (typeof node === "string") return escapeXml(node);
  let attrs = "";
  for (const [key, value] of Object.entries(node.attributes)) {
    if (value === undefined) continue;
    attrs += ` ${key}="${escapeXml(String(value))}"`;
  }
  if (node.children.length === 0) return `<${node.name}${attrs}/>`;
  return `<${node.name}${attrs}>${node.children.map(render).join("")}</${node.name}>`;
}

/** A whole TwiML document: `<Response>` around the verbs. */
export function twiml(verbs: readonly TwimlElement[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${render(el("Response", {}, verbs))}`;
}

/** The HTTP answer Twilio expects for a TwiML document. */
export function twimlResponse(body: string, status = 200): Response {
  return new Response(body, { status, headers: { "Content-Type": "text/xml; charset=utf-8" } });
}

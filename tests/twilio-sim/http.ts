/**
 * The simulator's HTTP vocabulary: Twilio's error body, its form parameters
 * (PascalCase, repeatable), a small path router, and the two list envelopes —
 * v2010's (page, page_size, first_page_uri, next_page_uri, …, the collection
 * under its own key) and the v1/v2 products' `meta` block.
 */
import type { AccountResource, HttpMethod, SimState } from "./state.ts";

/** A Twilio error answer: { code, message, more_info, status }. */
export class SimError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function errorBody(status: number, code: number, message: string) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

export const notFound = (path: string) =>
  new SimError(404, 20404, `The requested resource ${path} was not found`);

/** Form or query parameters; a name can repeat (MediaUrl, StatusCallbackEvent). */
export class Params {
  constructor(private readonly values: Map<string, string[]>) {}

  static from(search: URLSearchParams): Params {
    const map = new Map<string, string[]>();
    for (const [k, v] of search) map.set(k, [...(map.get(k) ?? []), v]);
    return new Params(map);
  }

  static empty(): Params {
    return new Params(new Map());
  }

  get(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }

  all(name: string): string[] {
    return this.values.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  /** A boolean parameter ("true"/"false", case-insensitive); 400 for anything else. */
  bool(name: string): boolean | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (/^true$/i.test(v)) return true;
    if (/^false$/i.test(v)) return false;
    throw new SimError(400, 20001, `Invalid value for ${name}: ${v}`);
  }

  /** The set value, or the fallback when absent; "" clears (Twilio: empty string unsets a URL). */
  urlOr(name: string, fallback: string | null): string | null {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v === "") return null;
    if (!/^https?:\/\/[^\s]+$/i.test(v)) throw new SimError(400, 21502, `Invalid ${name}: ${v}`);
    return v;
  }

  /** An HTTP method parameter (GET or POST). */
  methodOr(name: string, fallback: string): string {
    const v = this.get(name);
    if (v === undefined) return fallback;
    const upper = v.toUpperCase();
    if (upper !== "GET" && upper !== "POST") throw new SimError(400, 21502, `Invalid ${name}: ${v}`);
    return upper;
  }

  record(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of this.values) out[k] = v.length === 1 ? (v[0] ?? "") : v;
    return out;
  }
}

/** What a handler gets. */
export interface SimRequest {
  method: HttpMethod;
  path: string;
  params: Record<string, string>;
  query: Params;
  form: Params;
  /** Multipart parts with a file (Serverless uploads). */
  files: Map<string, { name: string; type: string; content: Uint8Array }>;
  account: AccountResource;
  state: SimState;
}

export type SimResponse =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; bytes: Uint8Array; contentType: string; headers?: Record<string, string> }
  | { status: 204 };

export type Handler = (req: SimRequest) => SimResponse | Promise<SimResponse>;

interface Route {
  method: HttpMethod;
  regex: RegExp;
  keys: string[];
  handler: Handler;
}

/** Method + path template ("/…/Messages/:Sid.json") → handler. Params never contain "/" or ".". */
export class Router {
  private readonly routes: Route[] = [];

  on(method: HttpMethod, template: string, handler: Handler): this {
    const keys: string[] = [];
    const source = template
      .split(/(:[A-Za-z]+)/)
      .map((part) => {
        if (part.startsWith(":")) {
          keys.push(part.slice(1));
          return "([^/.]+)";
        }
        return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      })
      .join("");
    this.routes.push({ method, regex: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  get(t: string, h: Handler): this {
    return this.on("GET", t, h);
  }
  post(t: string, h: Handler): this {
    return this.on("POST", t, h);
  }
  delete(t: string, h: Handler): this {
    return this.on("DELETE", t, h);
  }

  /** The route for a request; "method" when the path exists with another method. */
  match(
    method: string,
    path: string,
  ): { handler: Handler; params: Record<string, string> } | "method" | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      for (const [i, k] of r.keys.entries()) {
        try {
          params[k] = decodeURIComponent(m[i + 1] ?? "");
        } catch {
          return undefined; // malformed %-escape: no such resource
        }
      }
      return { handler: r.handler, params };
    }
    return pathMatched ? "method" : undefined;
  }
}

const PAGING = new Set(["Page", "PageSize", "PageToken"]);

/** PageSize (default 50, at most `max`: 1000 for most lists), Page and PageToken (which wins when present). */
export function paging(query: Params, max = 1000): { page: number; pageSize: number; start: number } {
  const rawSize = query.get("PageSize");
  const pageSize = rawSize === undefined ? 50 : Number(rawSize);
  if (!Number.isInteger(pageSize) || pageSize < 1)
    throw new SimError(400, 20001, `Invalid PageSize: ${rawSize ?? ""}`);
  const size = Math.min(pageSize, max);
  const rawPage = query.get("Page");
  const page = rawPage === undefined ? 0 : Number(rawPage);
  if (!Number.isInteger(page) || page < 0) throw new SimError(400, 20001, `Invalid Page: ${rawPage ?? ""}`);
  const token = query.get("PageToken");
  let start = page * size;
  if (token !== undefined) {
    const m = /^PA(\d+)$/.exec(token);
    if (!m) throw new SimError(400, 20001, `Invalid PageToken: ${token}`);
    start = Number(m[1]);
  }
  return { page, pageSize: size, start };
}

function filterQuery(query: Params): string {
  const search = new URLSearchParams();
  for (const name of query.names()) {
    if (PAGING.has(name)) continue;
    for (const v of query.all(name)) search.append(name, v);
  }
  const s = search.toString();
  return s ? `${s}&` : "";
}

/** A v2010 list page: the collection under `key` and Twilio's paging fields. */
export function listV2010<T>(req: SimRequest, key: string, items: T[], render: (item: T) => unknown) {
  const { page, pageSize, start } = paging(req.query);
  const slice = items.slice(start, start + pageSize);
  const filters = filterQuery(req.query);
  const at = (p: number, s: number) =>
    `${req.path}?${filters}PageSize=${pageSize}&Page=${p}${s > 0 ? `&PageToken=PA${s}` : ""}`;
  const hasNext = start + pageSize < items.length;
  return {
    status: 200,
    json: {
      [key]: slice.map(render),
      page,
      page_size: pageSize,
      start,
      end: start + Math.max(slice.length - 1, 0),
      uri: at(page, start),
      first_page_uri: at(0, 0),
      next_page_uri: hasNext ? at(page + 1, start + pageSize) : null,
      previous_page_uri: page > 0 ? at(page - 1, Math.max(0, start - pageSize)) : null,
    },
  } satisfies SimResponse;
}

/** A v1/v2 product list page: the collection under `key` and `meta`. */
export function listMeta<T>(
  req: SimRequest,
  key: string,
  items: T[],
  render: (item: T) => unknown,
  maxPageSize = 1000,
) {
  const { page, pageSize, start } = paging(req.query, maxPageSize);
  const slice = items.slice(start, start + pageSize);
  const filters = filterQuery(req.query);
  const base = `${req.state.baseUrl}${req.path}`;
  const at = (p: number, s: number) =>
    `${base}?${filters}PageSize=${pageSize}&Page=${p}${s > 0 ? `&PageToken=PA${s}` : ""}`;
  const hasNext = start + pageSize < items.length;
  return {
    status: 200,
    json: {
      [key]: slice.map(render),
      meta: {
        page,
        page_size: pageSize,
        first_page_url: at(0, 0),
        previous_page_url: page > 0 ? at(page - 1, Math.max(0, start - pageSize)) : null,
        url: at(page, start),
        next_page_url: hasNext ? at(page + 1, start + pageSize) : null,
        key,
      },
    },
  } satisfies SimResponse;
}

export const ok = (json: unknown, status = 200): SimResponse => ({ status, json });
export const noContent = (): SimResponse => ({ status: 204 });

/** Newest first, as Twilio lists. */
export function newestFirst<T extends { date_created: string }>(items: Iterable<T>): T[] {
  return [...items].reverse().sort((a, b) => Date.parse(b.date_created) - Date.parse(a.date_created));
}

/**
 * A date filter such as DateSent, DateSent< or DateSent> (Twilio: on that day,
 * on or before, on or after). Values are YYYY-MM-DD or an ISO 8601 date-time.
 */
export function dateFilter(query: Params, name: string): (value: string | null) => boolean {
  const checks: Array<(t: number) => boolean> = [];
  const parse = (raw: string) => {
    const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(raw);
    const t = Date.parse(dayOnly ? `${raw}T00:00:00Z` : raw);
    if (Number.isNaN(t)) throw new SimError(400, 20001, `Invalid ${name}: ${raw}`);
    return { t, dayOnly };
  };
  const exact = query.get(name);
  if (exact !== undefined) {
    const { t } = parse(exact.slice(0, 10));
    checks.push((v) => v >= t && v < t + 86_400_000);
  }
  const before = query.get(`${name}<`) ?? query.get(`${name}<=`);
  if (before !== undefined) {
    const { t, dayOnly } = parse(before);
    const limit = dayOnly ? t + 86_400_000 : t + 1;
    checks.push((v) => v < limit);
  }
  const after = query.get(`${name}>`) ?? query.get(`${name}>=`);
  if (after !== undefined) {
    const { t } = parse(after);
    checks.push((v) => v >= t);
  }
  return (value) => {
    if (checks.length === 0) return true;
    if (value === null) return false;
    const t = Date.parse(value);
    return checks.every((c) => c(t));
  };
}

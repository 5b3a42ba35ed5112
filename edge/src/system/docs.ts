/**
 * The API's self-description: /api/openapi.json (OpenAPI 3.1, generated from the
 * same zod schemas that validate requests), /api/docs (a plain HTML list of the
 * endpoints, no external assets), and a minimal index page at / that links to
 * both until the web UI replaces it.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { html } from "hono/html";
import { SESSION_COOKIE } from "../auth/sessions.ts";
import type { AppEnv } from "../env.ts";
import { EDGE_VERSION } from "./version.ts";

const documentConfig = {
  openapi: "3.1.0",
  info: {
    title: "GoSIP API",
    version: EDGE_VERSION,
    description:
      `Home-office PBX API. Sign in with POST /api/auth/login; the session travels in the ${SESSION_COOKIE} ` +
      "cookie. State-changing requests with that cookie must send the header X-GoSIP-CSRF: 1. Errors have " +
      'the shape {"error":{"code","message","details"?}}; lists are paginated with limit (default 20, max 100) ' +
      "and offset.",
  },
};

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

interface Operation {
  method: string;
  path: string;
  summary: string;
  tag: string;
}

function operationsOf(app: OpenAPIHono<AppEnv>): Operation[] {
  const doc = app.getOpenAPI31Document(documentConfig);
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (op)
        ops.push({ method: method.toUpperCase(), path, summary: op.summary ?? "", tag: op.tags?.[0] ?? "" });
    }
  }
  return ops.sort((a, b) => a.tag.localeCompare(b.tag) || a.path.localeCompare(b.path));
}

const page = (title: string, body: unknown) => html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
      table { border-collapse: collapse; width: 100%; }
      td, th { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
      code { font-size: 0.95em; }
    </style>
  </head>
  <body>
    ${body}
  </body>
</html>`;

/** Mount /api/openapi.json, /api/docs and the index page on the root app. */
export function mountApiDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "sessionCookie", {
    type: "apiKey",
    in: "cookie",
    name: SESSION_COOKIE,
  });
  app.doc31("/api/openapi.json", documentConfig);

  app.get("/api/docs", (c) => {
    const rows = operationsOf(app).map(
      (op) =>
        html`<tr><td>${op.tag}</td><td><code>${op.method}</code></td><td><code>${op.path}</code></td><td>${op.summary}</td></tr>`,
    );
    return c.html(
      page(
        "GoSIP API",
        html`<h1>GoSIP API <small>${EDGE_VERSION}</small></h1>
          <p>${documentConfig.info.description}</p>
          <p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).</p>
          <table>
            <thead><tr><th>Area</th><th>Method</th><th>Path</th><th>What it does</th></tr></thead>
            <tbody>${rows}</tbody>
          </table>`,
      ),
    );
  });

  app.get("/", (c) =>
    c.html(
      page(
        "GoSIP",
        html`<h1>GoSIP</h1>
          <p>The GoSIP edge is running. The web interface is not installed yet.</p>
          <ul>
            <li><a href="/api/docs">API documentation</a></li>
            <li><a href="/api/openapi.json">OpenAPI document</a></li>
            <li><a href="/api/system/health">Health</a></li>
            <li><a href="/api/setup/status">Setup status</a> (first run: <code>POST /api/setup</code>)</li>
          </ul>`,
      ),
    ),
  );
}

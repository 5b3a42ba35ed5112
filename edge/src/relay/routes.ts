/**
 * /api/relay: relay tokens (admin) and the relay's WebSocket endpoint.
 *
 * GET /api/relay/connect authenticates `Authorization: Bearer <relay token>`
 * before anything is upgraded (401 otherwise), then hands the upgrade to the
 * runtime: the RelayLink Durable Object on Workers (`deps.relayLink`), or the
 * Node WebSocket server wired by `attachNodeRelayLink` (node-link.ts).
 */
import { publicRelayTokenSchema, relayTokens } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq } from "drizzle-orm";
import { requireAdmin } from "../auth/middleware.ts";
import { AppError } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  errorResponses,
  findSelectedOr404,
  idParams,
  iso,
  isoTimestamp,
  jsonBody,
  jsonResponse,
  listSelected,
  safeWrite,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";
import { closeRelayConnections, nodeRelayUpgrade } from "./node-link.ts";
import { bearerToken, newRelayToken, relayTokenHash, verifyRelayToken } from "./tokens.ts";

export const relayTokenSchema = publicRelayTokenSchema
  .extend({
    createdAt: isoTimestamp,
    lastUsedAt: isoTimestamp.nullable(),
    revokedAt: isoTimestamp.nullable(),
  })
  .openapi("RelayToken");

const createdTokenSchema = relayTokenSchema
  .extend({
    token: z.string().openapi({
      description: "The relay token. Shown only in this response; configure the relay with it now.",
    }),
  })
  .openapi("RelayTokenWithSecret");

const createTokenSchema = z
  .object({ name: z.string().trim().min(1, "must not be empty").max(100) })
  .strict()
  .openapi("CreateRelayToken");

/** The columns a token response shows: never the token's hash. */
const tokenColumns = {
  id: relayTokens.id,
  name: relayTokens.name,
  createdAt: relayTokens.createdAt,
  lastUsedAt: relayTokens.lastUsedAt,
  revokedAt: relayTokens.revokedAt,
};
type TokenRow = SelectedRow<typeof tokenColumns>;

function toDto(row: TokenRow): z.infer<typeof relayTokenSchema> {
  return {
    id: row.id,
    name: row.name,
    createdAt: iso(row.createdAt),
    lastUsedAt: iso(row.lastUsedAt),
    revokedAt: iso(row.revokedAt),
  };
}

const listRoute = createRoute({
  method: "get",
  path: "/tokens",
  tags: ["relay"],
  summary: "List relay tokens (admin); the tokens themselves are never shown again",
  middleware: [requireAdmin] as const,
  request: { query: pageQuery },
  responses: {
    200: jsonResponse(pageOf(relayTokenSchema), "A page of relay tokens"),
    ...errorResponses(400, 401, 403),
  },
});

const createTokenRoute = createRoute({
  method: "post",
  path: "/tokens",
  tags: ["relay"],
  summary: "Create a relay token (admin); the token is in this response only",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createTokenSchema) },
  responses: { 201: jsonResponse(createdTokenSchema, "The new token"), ...errorResponses(400, 401, 403) },
});

const revokeRoute = createRoute({
  method: "delete",
  path: "/tokens/{id}",
  tags: ["relay"],
  summary: "Revoke a relay token (admin); a relay connected with it is disconnected",
  middleware: [requireAdmin] as const,
  request: { params: idParams },
  responses: { 204: { description: "Revoked" }, ...errorResponses(401, 403, 404) },
});

const connectRoute = createRoute({
  method: "get",
  path: "/connect",
  tags: ["relay"],
  summary: "The relay's WebSocket (Authorization: Bearer <relay token>)",
  security: [{ relayToken: [] }],
  responses: {
    101: { description: "Switching to the WebSocket protocol" },
    ...errorResponses(401),
    426: { description: "Not a WebSocket upgrade request" },
    503: { description: "This runtime has no relay link wired" },
  },
});

const router = createRouter();
router.openAPIRegistry.registerComponent("securitySchemes", "relayToken", {
  type: "http",
  scheme: "bearer",
  description: "A relay token created under /api/relay/tokens",
});

export const relayRouter = router
  .openapi(listRoute, async (c) => {
    const { limit, offset } = c.req.valid("query");
    const db = c.get("deps").db;
    const orderBy = [desc(relayTokens.createdAt), relayTokens.id];
    return c.json(await listSelected(db, relayTokens, tokenColumns, { orderBy, limit, offset }, toDto), 200);
  })
  .openapi(createTokenRoute, async (c) => {
    const { name } = c.req.valid("json");
    const token = newRelayToken();
    const db = c.get("deps").db;
    const [row] = await safeWrite(() =>
      db
        .insert(relayTokens)
        .values({ name, tokenHash: relayTokenHash(token) })
        .returning(tokenColumns),
    );
    if (!row) throw new Error("insert returned no row");
    return c.json({ ...toDto(row), token }, 201);
  })
  .openapi(revokeRoute, async (c) => {
    const { id } = c.req.valid("param");
    const deps = c.get("deps");
    const row = await findSelectedOr404(deps.db, relayTokens, tokenColumns, id, "Relay token");
    if (!row.revokedAt) {
      await deps.db
        .update(relayTokens)
        .set({ revokedAt: new Date(deps.clock.now()) })
        .where(eq(relayTokens.id, id));
    }
    closeRelayConnections(deps, id);
    await deps.relayLink?.disconnect(id);
    return c.body(null, 204);
  })
  .openapi(connectRoute, async (c) => {
    const deps = c.get("deps");
    const token = bearerToken(c.req.header("authorization"));
    const relay = token ? await verifyRelayToken(deps.db, token, new Date(deps.clock.now())) : undefined;
    if (!relay) {
      throw new AppError(401, "unauthorized", "A valid relay token is required", undefined, {
        "WWW-Authenticate": 'Bearer realm="gosip-relay"',
      });
    }
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json({ error: { code: "bad_request", message: "Expected a WebSocket upgrade" } }, 426);
    }
    deps.logger.info({ relayId: relay.id }, "relay connecting");
    if (deps.relayLink) return deps.relayLink.accept(c.req.raw, relay);
    const upgrade = nodeRelayUpgrade(deps);
    if (upgrade) return upgrade(c, relay);
    return c.json({ error: { code: "internal", message: "No relay link on this runtime" } }, 503);
  });

/**
 * What the relay reports, for the admin: GET /api/relay/status (the live link,
 * from the relay's hello), GET /api/relay/bans (source addresses the relay's
 * scanner defence has banned now) and DELETE /api/relay/bans/{address} (lift one:
 * the relay is told first, then the ban is marked lifted).
 */
import { sipBans } from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, gt, isNull } from "drizzle-orm";
import { requireAdmin } from "../auth/middleware.ts";
import { AppError, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  errorEnvelopeSchema,
  errorResponses,
  iso,
  isoTimestamp,
  jsonResponse,
  listSelected,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";

export const relayStatusSchema = z
  .object({
    connected: z.boolean(),
    relayId: z.string().nullable().openapi({ description: "Relay token id of the connected relay" }),
    relayName: z.string().nullable(),
    since: isoTimestamp.nullable().openapi({ description: "When the live link said hello" }),
    software: z.string().nullable(),
    protocolVersion: z.int().nullable(),
    sip: z
      .array(z.string())
      .openapi({ description: 'Where its SIP engine listens, e.g. "udp/192.0.2.10:5060"' }),
    configVersion: z.int().nullable().openapi({ description: "Last config version the relay acknowledged" }),
  })
  .openapi("RelayStatus");

export const sipBanSchema = z
  .object({
    address: z.string(),
    level: z.int().openapi({ description: "1 for a first ban, growing with each repeat" }),
    reason: z.string(),
    failures: z.int(),
    bannedAt: isoTimestamp,
    until: isoTimestamp,
  })
  .openapi("SipBan");

const banColumns = {
  address: sipBans.address,
  level: sipBans.level,
  reason: sipBans.reason,
  failures: sipBans.failures,
  bannedAt: sipBans.bannedAt,
  until: sipBans.until,
};

function toBanDto(row: SelectedRow<typeof banColumns>): z.infer<typeof sipBanSchema> {
  return { ...row, bannedAt: iso(row.bannedAt), until: iso(row.until) };
}

const unavailable = {
  description: "The relay is not connected or did not answer (unavailable)",
  content: { "application/json": { schema: errorEnvelopeSchema } },
};

const statusRoute = createRoute({
  method: "get",
  path: "/status",
  tags: ["relay"],
  summary: "The relay link: connected, since when, software and SIP addresses (admin)",
  middleware: [requireAdmin] as const,
  responses: { 200: jsonResponse(relayStatusSchema, "The link"), ...errorResponses(401, 403) },
});

const bansRoute = createRoute({
  method: "get",
  path: "/bans",
  tags: ["relay"],
  summary: "Source addresses banned by the relay now (admin)",
  middleware: [requireAdmin] as const,
  request: { query: pageQuery },
  responses: {
    200: jsonResponse(pageOf(sipBanSchema), "Active bans, newest first"),
    ...errorResponses(400, 401, 403),
  },
});

const liftRoute = createRoute({
  method: "delete",
  path: "/bans/{address}",
  tags: ["relay"],
  summary: "Lift a ban (admin): the relay lets the address in again",
  middleware: [requireAdmin] as const,
  request: {
    params: z.object({
      address: z
        .string()
        .min(2)
        .max(64)
        .openapi({ param: { name: "address", in: "path" }, description: "The banned IP address" }),
    }),
  },
  responses: { 204: { description: "Lifted" }, ...errorResponses(401, 403, 404), 503: unavailable },
});

export const relayLinkRouter = createRouter()
  .openapi(statusRoute, async (c) => c.json(await c.get("deps").relayChannel.status(), 200))
  .openapi(bansRoute, async (c) => {
    const { limit, offset } = c.req.valid("query");
    const deps = c.get("deps");
    const where = and(isNull(sipBans.liftedAt), gt(sipBans.until, new Date(deps.clock.now())));
    const orderBy = [desc(sipBans.bannedAt), sipBans.address];
    return c.json(
      await listSelected(deps.db, sipBans, banColumns, { where, orderBy, limit, offset }, toBanDto),
      200,
    );
  })
  .openapi(liftRoute, async (c) => {
    const { address } = c.req.valid("param");
    const deps = c.get("deps");
    const active = and(
      eq(sipBans.address, address),
      isNull(sipBans.liftedAt),
      gt(sipBans.until, new Date(deps.clock.now())),
    );
    const [ban] = await deps.db.select({ address: sipBans.address }).from(sipBans).where(active);
    if (!ban) throw notFound("Ban");
    const outcome = await deps.relayChannel.command({ kind: "ban.lift", address });
    // "refused" means the relay holds no such ban (it expired there): lifted either way.
    if (!outcome.ok && outcome.reason !== "refused") {
      throw new AppError(503, "unavailable", `The relay could not be told: ${outcome.error}`);
    }
    await deps.db
      .update(sipBans)
      .set({ liftedAt: new Date(deps.clock.now()), liftedBy: "admin" })
      .where(eq(sipBans.address, address));
    return c.body(null, 204);
  });

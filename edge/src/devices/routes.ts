/**
 * /api/devices: SIP phones and softphones. Admins manage every device; a user
 * sees and renames only their own, and another user's device answers 404 on
 * every verb. The SIP password is generated here, returned once (create and
 * reset-password) and stored only as HA1 (MD5 and SHA-256) under the
 * installation's fixed realm.
 */
import {
  computeDeviceHa1,
  type Db,
  devices,
  outboundPolicySchema,
  publicDeviceSchema,
  registrations,
  sipTransports,
} from "@gosip/drizzle";
import { createRoute, z } from "@hono/zod-openapi";
import { desc, eq, sql } from "drizzle-orm";
import { currentUser, requireAdmin, requireUser } from "../auth/middleware.ts";
import type { AuthUser } from "../env.ts";
import { AppError, badRequest, conflict, notFound } from "../http/errors.ts";
import { pageOf, pageQuery } from "../http/pagination.ts";
import {
  assertSelfServiceFields,
  errorResponses,
  idParams,
  isForeignKeyViolation,
  iso,
  isoTimestamp,
  isUniqueViolation,
  jsonBody,
  jsonResponse,
  prepareFind,
  preparePage,
  safeWrite,
} from "../http/resource-api.ts";
import { createRouter } from "../http/router.ts";
import type { SelectedRow } from "../http/selected-rows.ts";
import { pushDevices } from "../relay/push.ts";
import { allocateExtension, extensionSchema, generateSipPassword, getSipRealm } from "./credentials.ts";
import { deviceReferences } from "./references.ts";

// HA1 columns never leave the server.
export const deviceSchema = publicDeviceSchema
  .extend({ outboundPolicy: outboundPolicySchema, createdAt: isoTimestamp, updatedAt: isoTimestamp })
  .openapi("Device");
export type DeviceDto = z.infer<typeof deviceSchema>;

/** A contact the device registered, as the relay reported it. */
export const deviceRegistrationSchema = z
  .object({
    contactUri: z.string(),
    transport: z.enum(sipTransports),
    sourceAddress: z
      .string()
      .openapi({ description: "Where the REGISTER came from (differs from the Contact behind NAT)" }),
    sourcePort: z.int(),
    userAgent: z.string().nullable(),
    expiresAt: isoTimestamp,
    lastSeenAt: isoTimestamp,
    online: z.boolean().openapi({ description: "Not expired yet" }),
  })
  .openapi("DeviceRegistration");

const deviceDetailSchema = deviceSchema
  .extend({ registrations: z.array(deviceRegistrationSchema) })
  .openapi("DeviceDetail");

/** The device's current contacts, most recently seen first. */
async function deviceRegistrations(
  db: Db,
  deviceId: string,
  now: number,
): Promise<z.infer<typeof deviceRegistrationSchema>[]> {
  const rows = await db
    .select({
      contactUri: registrations.contactUri,
      transport: registrations.transport,
      sourceAddress: registrations.sourceAddress,
      sourcePort: registrations.sourcePort,
      userAgent: registrations.userAgent,
      expiresAt: registrations.expiresAt,
      lastSeenAt: registrations.lastSeenAt,
    })
    .from(registrations)
    .where(eq(registrations.deviceId, deviceId))
    .orderBy(desc(registrations.lastSeenAt));
  return rows.map((r) => ({
    ...r,
    expiresAt: iso(r.expiresAt),
    lastSeenAt: iso(r.lastSeenAt),
    online: r.expiresAt.getTime() > now,
  }));
}

const withPassword = deviceSchema
  .extend({
    sipPassword: z
      .string()
      .openapi({ description: "The SIP password. Shown only in this response; store it now." }),
  })
  .openapi("DeviceWithPassword");

const nameSchema = z.string().trim().min(1, "must not be empty").max(100);
const sipUsernameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$/, "must be 3–32 letters, digits, dots, dashes or underscores");

const createDeviceSchema = z
  .object({
    name: nameSchema,
    userId: z.string().min(1).max(64).optional().openapi({ description: "Owner; defaults to you" }),
    extension: extensionSchema.optional().openapi({ description: "Defaults to the next free one from 101" }),
    sipUsername: sipUsernameSchema.optional().openapi({ description: "Defaults to `<extension>-<random>`" }),
    enabled: z.boolean().optional(),
    recordAlways: z.boolean().optional(),
    outboundPolicy: outboundPolicySchema.optional(),
  })
  .strict()
  .openapi("CreateDevice");

const updateDeviceSchema = z
  .object({
    name: nameSchema.optional(),
    userId: z.string().min(1).max(64).optional(),
    extension: extensionSchema.optional(),
    enabled: z.boolean().optional(),
    recordAlways: z.boolean().optional(),
    outboundPolicy: outboundPolicySchema.optional(),
  })
  .strict()
  .openapi("UpdateDevice");
type UpdateDevice = z.infer<typeof updateDeviceSchema>;
/** A user may only rename their own device; the rest is the admin's (toll-fraud policy, ownership). */
const SELF_SERVICE_FIELDS = new Set<keyof UpdateDevice>(["name"]);

const listQuery = pageQuery.extend({
  userId: z.string().min(1).max(64).optional().openapi({ description: "Only this owner's devices (admin)" }),
});

/** The columns a device response shows: never the HA1s, which stay on writes and the relay sync. */
const deviceColumns = {
  id: devices.id,
  userId: devices.userId,
  name: devices.name,
  extension: devices.extension,
  sipUsername: devices.sipUsername,
  enabled: devices.enabled,
  recordAlways: devices.recordAlways,
  outboundPolicy: devices.outboundPolicy,
  createdAt: devices.createdAt,
  updatedAt: devices.updatedAt,
};
type DeviceRow = SelectedRow<typeof deviceColumns>;

export function toDeviceDto(row: DeviceRow): DeviceDto {
  return {
    id: row.id,
    userId: row.userId,
    name: row.name,
    extension: row.extension,
    sipUsername: row.sipUsername,
    enabled: row.enabled,
    recordAlways: row.recordAlways,
    outboundPolicy: row.outboundPolicy,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
  };
}

// Numeric order (extensions are unique digit strings): shorter first, then by digits.
const deviceOrder = [sql`length(${devices.extension})`, devices.extension];
/** The list's two shapes, each built into SQL once: every device, or one owner's. */
const devicePages = {
  all: preparePage(devices, deviceColumns, { orderBy: deviceOrder }),
  ofOwner: preparePage(devices, deviceColumns, {
    where: eq(devices.userId, sql.placeholder("owner")),
    orderBy: deviceOrder,
  }),
};

/** By-id reads, each built into SQL once: any device (admins), or one of the owner's. */
const deviceFinds = {
  any: prepareFind(devices, deviceColumns),
  owned: prepareFind(devices, deviceColumns, eq(devices.userId, sql.placeholder("owner"))),
};

/** The device, or 404 when it does not exist or belongs to someone else (for a non-admin). */
function findVisibleDevice(db: Db, me: AuthUser, id: string): Promise<DeviceRow> {
  return me.role === "admin"
    ? deviceFinds.any.findOr404(db, id, "Device")
    : deviceFinds.owned.findOr404(db, id, "Device", { owner: me.id });
}

function randomSuffix(length: number): string {
  const alphabet = "23456789abcdefghijkmnpqrstuvwxyz";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/**
 * Maps a failed device write to what the client did wrong: the owner (`userId`) does
 * not exist (FOREIGN KEY; checked by the database instead of a read before every
 * write), or the field that collided (UNIQUE). Anything else is not mapped.
 */
function deviceWriteError(err: unknown, extension: string | undefined): AppError | undefined {
  if (isForeignKeyViolation(err)) {
    return badRequest("The owner does not exist", [{ path: "userId", message: "no such user" }]);
  }
  if (!isUniqueViolation(err)) return undefined;
  // The constraint message names the column ("UNIQUE constraint failed: devices.sip_username");
  // drizzle's wrapper message also quotes the SQL, so match the constraint part only.
  const text = err instanceof Error ? `${err.message} ${String(err.cause)}` : "";
  if (/constraint failed: devices\.sip_username/.test(text)) {
    return conflict("This SIP username is already taken", { field: "sipUsername" });
  }
  return conflict(extension ? `Extension ${extension} is already taken` : "Extension already taken", {
    field: "extension",
  });
}

/**
 * Creates racing for the next free extension each retry after losing; every
 * round one of them wins, so this bounds how many simultaneous creates succeed.
 */
const MAX_ALLOCATION_ATTEMPTS = 20;

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["devices"],
  summary: "List devices (admin: all, user: own)",
  middleware: [requireUser] as const,
  request: { query: listQuery },
  responses: { 200: jsonResponse(pageOf(deviceSchema), "A page of devices"), ...errorResponses(400, 401) },
});

const createDeviceRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["devices"],
  summary: "Create a device (admin); the SIP password is in this response only",
  middleware: [requireAdmin] as const,
  request: { body: jsonBody(createDeviceSchema) },
  responses: {
    201: jsonResponse(withPassword, "The new device and its SIP password"),
    ...errorResponses(400, 401, 403, 409),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["devices"],
  summary: "Get a device, with its current registrations",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 200: jsonResponse(deviceDetailSchema, "The device"), ...errorResponses(401, 404) },
});

const updateRoute = createRoute({
  method: "patch",
  path: "/{id}",
  tags: ["devices"],
  summary: "Change a device (admin), or rename your own",
  middleware: [requireUser] as const,
  request: { params: idParams, body: jsonBody(updateDeviceSchema) },
  responses: {
    200: jsonResponse(deviceSchema, "The changed device"),
    ...errorResponses(400, 401, 403, 404, 409),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["devices"],
  summary: "Delete a device (admin)",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 409) },
});

const resetRoute = createRoute({
  method: "post",
  path: "/{id}/reset-password",
  tags: ["devices"],
  summary: "Generate a new SIP password (shown once); the old one stops working",
  middleware: [requireUser] as const,
  request: { params: idParams },
  responses: {
    200: jsonResponse(withPassword, "The device and its new SIP password"),
    ...errorResponses(401, 404),
  },
});

export const devicesRouter = createRouter()
  .openapi(listRoute, async (c) => {
    const me = currentUser(c);
    const { limit, offset, userId } = c.req.valid("query");
    const db = c.get("deps").db;
    // An admin sees every device or one owner's; anyone else only their own.
    const owner = me.role === "admin" ? userId : me.id;
    if (userId !== undefined && userId !== owner) return c.json({ items: [], total: 0, limit, offset }, 200);
    const page = { limit, offset };
    const list =
      owner === undefined
        ? devicePages.all.list(db, {}, page, toDeviceDto)
        : devicePages.ofOwner.list(db, { owner }, page, toDeviceDto);
    return c.json(await list, 200);
  })
  .openapi(createDeviceRoute, async (c) => {
    const me = currentUser(c);
    const body = c.req.valid("json");
    const db = c.get("deps").db;
    const userId = body.userId ?? me.id;
    const realm = await getSipRealm(db);
    const sipPassword = generateSipPassword();
    // Allocation can race with another create; retry a few times on an extension collision.
    for (let attempt = 0; ; attempt++) {
      const extension = body.extension ?? (await allocateExtension(db));
      const sipUsername = body.sipUsername ?? `${extension}-${randomSuffix(8)}`;
      try {
        const [row] = await safeWrite(() =>
          db
            .insert(devices)
            .values({
              userId,
              name: body.name,
              extension,
              sipUsername,
              ...computeDeviceHa1(sipUsername, realm, sipPassword),
              enabled: body.enabled,
              recordAlways: body.recordAlways,
              outboundPolicy: body.outboundPolicy,
            })
            .returning(deviceColumns),
        );
        if (!row) throw new Error("insert returned no row");
        // The relay learns the credentials now, so the phone can register right away.
        await pushDevices(c.get("deps"), { upsert: [row.id] });
        return c.json({ ...toDeviceDto(row), sipPassword }, 201);
      } catch (err) {
        const mapped = deviceWriteError(err, extension);
        if (!mapped) throw err;
        // Only a lost race for an allocated extension is worth another attempt.
        const retry =
          mapped.status === 409 && body.extension === undefined && attempt < MAX_ALLOCATION_ATTEMPTS;
        if (!retry) throw mapped;
      }
    }
  })
  .openapi(getRoute, async (c) => {
    const deps = c.get("deps");
    const row = await findVisibleDevice(deps.db, currentUser(c), c.req.valid("param").id);
    const contacts = await deviceRegistrations(deps.db, row.id, deps.clock.now());
    return c.json({ ...toDeviceDto(row), registrations: contacts }, 200);
  })
  .openapi(updateRoute, async (c) => {
    const me = currentUser(c);
    const db = c.get("deps").db;
    const current = await findVisibleDevice(db, me, c.req.valid("param").id);
    const body = c.req.valid("json");
    assertSelfServiceFields(me, body, SELF_SERVICE_FIELDS);
    const patch: Partial<typeof devices.$inferInsert> = {};
    for (const key of Object.keys(body) as (keyof UpdateDevice)[]) {
      if (body[key] !== undefined) Object.assign(patch, { [key]: body[key] });
    }
    if (Object.keys(patch).length === 0) return c.json(toDeviceDto(current), 200);
    try {
      const [row] = await safeWrite(() =>
        db.update(devices).set(patch).where(eq(devices.id, current.id)).returning(deviceColumns),
      );
      if (!row) throw notFound("Device");
      await pushDevices(c.get("deps"), { upsert: [row.id] });
      return c.json(toDeviceDto(row), 200);
    } catch (err) {
      throw deviceWriteError(err, body.extension) ?? err;
    }
  })
  .openapi(deleteRoute, async (c) => {
    const me = currentUser(c);
    const db = c.get("deps").db;
    // Ownership first: someone else's device is 404 whatever the role rules say.
    const current = await findVisibleDevice(db, me, c.req.valid("param").id);
    if (me.role !== "admin") throw new AppError(403, "forbidden", "Only an administrator can delete devices");
    const refs = await deviceReferences(db, [current.id]);
    if (refs.length) {
      throw conflict("The device is still a ring target; remove it from these first", { references: refs });
    }
    await db.delete(devices).where(eq(devices.id, current.id));
    await pushDevices(c.get("deps"), { remove: [current.id] });
    return c.body(null, 204);
  })
  .openapi(resetRoute, async (c) => {
    const db = c.get("deps").db;
    const current = await findVisibleDevice(db, currentUser(c), c.req.valid("param").id);
    const realm = await getSipRealm(db);
    const sipPassword = generateSipPassword();
    const [row] = await safeWrite(() =>
      db
        .update(devices)
        .set(computeDeviceHa1(current.sipUsername, realm, sipPassword))
        .where(eq(devices.id, current.id))
        .returning(deviceColumns),
    );
    if (!row) throw notFound("Device");
    // The old password stops working on the relay now, not at its next reconnect.
    await pushDevices(c.get("deps"), { upsert: [row.id] });
    return c.json({ ...toDeviceDto(row), sipPassword }, 200);
  });

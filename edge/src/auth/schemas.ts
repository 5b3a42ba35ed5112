/** Request/response schemas of the auth and setup endpoints (they also feed the OpenAPI document). */

import { userRoles } from "@gosip/drizzle";
import { z } from "@hono/zod-openapi";
import { newPasswordSchema, PASSWORD_MAX_LENGTH } from "./password.ts";

/** The error envelope, for documenting error responses. */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "unauthorized" }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

/** `responses` entries for the usual errors of an endpoint, by status. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Not signed in",
    403: "Forbidden (role, or CSRF check failed)",
    404: "Not found",
    409: "Conflict",
    423: "Account locked after repeated failed sign-ins",
    429: "Too many failed sign-ins from this address",
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: descriptions[s] ?? "Error", content: { "application/json": { schema: errorSchema } } },
    ]),
  );
}

export const authUserSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(userRoles),
  })
  .openapi("AuthUser");

export const userEnvelopeSchema = z.object({ user: authUserSchema });

const emailInput = z.string().trim().toLowerCase().max(254);

export const loginBodySchema = z
  .object({
    email: emailInput.openapi({ example: "admin@example.com" }),
    // Longer than any stored password can be: such input just fails, without hashing megabytes.
    password: z
      .string()
      .min(1)
      .max(PASSWORD_MAX_LENGTH * 4),
  })
  .openapi("LoginRequest");

export const setupBodySchema = z
  .object({
    email: z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.email({ message: "must be an email address" }).max(254))
      .openapi({ example: "admin@example.com" }),
    password: newPasswordSchema,
    name: z.string().trim().min(1).max(100).optional(),
  })
  .openapi("SetupRequest");

export const setupStatusSchema = z
  .object({ needsSetup: z.boolean().openapi({ description: "True until the first admin is created" }) })
  .openapi("SetupStatus");

export const passwordChangeSchema = z
  .object({
    currentPassword: z
      .string()
      .min(1)
      .max(PASSWORD_MAX_LENGTH * 4),
    newPassword: newPasswordSchema,
  })
  .openapi("PasswordChange");

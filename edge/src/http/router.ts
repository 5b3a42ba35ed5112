/**
 * Factory for the edge's sub-apps. Every router validates with zod through
 * @hono/zod-openapi, so the OpenAPI document and the validation come from the
 * same schemas, and a failed validation answers with the one error envelope.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { errorBody } from "./errors.ts";

export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const details = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
        return c.json(errorBody("validation_failed", "The request is not valid", details), 400);
      }
      return undefined;
    },
  });
}

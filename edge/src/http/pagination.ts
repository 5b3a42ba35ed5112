/** List pagination shared by every collection endpoint: ?limit (default 20, max 100) & ?offset. */
import { z } from "@hono/zod-openapi";

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});

export type PageQuery = z.infer<typeof pageQuery>;

/** Response envelope of a list: the page of items plus the total count over all pages. */
export function pageOf<T extends z.ZodTypeAny>(item: T) {
  return z.object({
    items: z.array(item),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
  });
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

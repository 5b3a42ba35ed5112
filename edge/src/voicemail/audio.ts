/** Serving stored audio over HTTP with its content type and Range support (RFC 9110 §14). */
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { AppError, notFound } from "../http/errors.ts";
import type { EdgeDeps } from "../platform/types.ts";
import { decideRange } from "../recordings/range.ts";

/**
 * Streams a blob with its content type, honouring one Range (206) or answering 416;
 * shared by the voicemail audio, the greeting preview and the signed prompt audio.
 */
export async function serveAudio(
  c: Context<AppEnv>,
  deps: EdgeDeps,
  blobKey: string,
  opts: { contentType: string | null; filename: string; cacheControl: string; what: string },
): Promise<Response> {
  const meta = await deps.blobs.head(blobKey);
  if (!meta) throw notFound(opts.what);
  const decision = decideRange(c.req.header("range"), meta.size);
  const headers: Record<string, string> = {
    "Content-Type": opts.contentType ?? meta.contentType,
    "Accept-Ranges": "bytes",
    ETag: `"${meta.sha256}"`,
    "Cache-Control": opts.cacheControl,
    "Content-Disposition": `inline; filename="${opts.filename}"`,
  };
  if (decision.kind === "unsatisfiable") {
    throw new AppError(416, "range_not_satisfiable", "The range lies outside the file", undefined, {
      "Content-Range": `bytes */${meta.size}`,
    });
  }
  const blob = await deps.blobs.get(blobKey, decision.kind === "partial" ? decision.range : undefined);
  if (!blob) throw notFound(opts.what);
  if (decision.kind === "partial") {
    const { offset, length } = decision.range;
    headers["Content-Range"] = `bytes ${offset}-${offset + length - 1}/${meta.size}`;
    headers["Content-Length"] = String(length);
    return c.body(blob.body, 206, headers);
  }
  headers["Content-Length"] = String(meta.size);
  return c.body(blob.body, 200, headers);
}

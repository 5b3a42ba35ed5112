// Types for `cloudflare:workers` in the tests: the Worker's bindings (env) and its
// main module (exports.default is the Worker's fetch handler, RelayLink its DO).
import type { WorkerEnv } from "../../edge/src/platform/workers/index.ts";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("../../edge/src/platform/workers/index.ts");
      durableNamespaces: "RelayLink";
    }
  }
}

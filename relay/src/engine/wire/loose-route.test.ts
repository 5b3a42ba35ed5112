// Record-Route values the engine inserts when proxying with recordRoute: one when both sides are reached the same
// way, two (RFC 5658) when the caller and the callee are on different transports, the callee-facing one on top.
import { afterEach, describe, expect, it } from "vitest";
import { SipStack } from "../stack/index.ts";
import { LooseRouter } from "./loose-route.ts";

const stacks: SipStack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.close();
});

async function router(): Promise<{ router: LooseRouter; port: number }> {
  const stack = await SipStack.listen({ host: "127.0.0.1", port: 0 });
  stacks.push(stack);
  return { router: new LooseRouter(stack, () => undefined, new Map()), port: stack.hostports[0]?.port ?? 0 };
}

describe("LooseRouter.recordRoute", () => {
  it("gives one Record-Route when caller and callee are reached over the same transport", async () => {
    const { router: r, port } = await router();
    const rr = r.recordRoute(
      { transport: "udp", address: "127.0.0.1", port: 5070 },
      { transport: "udp", address: "127.0.0.1", port: 5080 },
    );
    expect(rr).toEqual([`<sip:127.0.0.1:${port};lr>`]);
  });

  it("gives two when the callee is on TCP and the caller on UDP, the TCP one on top", async () => {
    const { router: r, port } = await router();
    const rr = r.recordRoute(
      { transport: "udp", address: "127.0.0.1", port: 5070 },
      { transport: "tcp", address: "127.0.0.1", port: 5080 },
    );
    expect(rr).toEqual([`<sip:127.0.0.1:${port};transport=tcp;lr>`, `<sip:127.0.0.1:${port};lr>`]);
  });
});

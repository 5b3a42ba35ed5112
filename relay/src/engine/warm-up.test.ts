// The start-up warm-up: it really runs transactions through the engine's code (a real srf app answering them on a
// private instance), runs once per process, and leaves no socket, server or timer behind.
import { describe, expect, it } from "vitest";
import { warmUp } from "./warm-up.ts";

/** Handles that keep the process alive (sockets, servers, timers), by kind. */
function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe("warmUp", () => {
  it("answers its transactions through a private engine and an srf app, once, leaving nothing open", async () => {
    const before = handles();
    const answered = await warmUp({ transactions: 400, budgetMs: 20_000 });
    expect(answered).toBe(400);
    expect(await warmUp()).toBe(0); // once per process
    // nothing more of any kind than before (closing sockets is asynchronous: give them a moment)
    const extra = (): string[] =>
      Object.entries(handles())
        .filter(([kind, n]) => n > (before[kind] ?? 0))
        .map(([kind]) => kind);
    const deadline = Date.now() + 5000;
    while (extra().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(extra()).toEqual([]);
  });
});

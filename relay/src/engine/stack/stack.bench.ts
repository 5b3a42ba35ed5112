// Throughput of the SIP stack alone: a raw UDP load generator (in a worker thread, so it gets its own core) keeps
// a window of REGISTER (non-INVITE) or INVITE transactions outstanding against a stack whose TU answers 200 at once.
// Prints transactions/s, latency percentiles and what the stack holds afterwards.
// Run: npx tsx relay/src/engine/stack/stack.bench.ts [register|invite] [seconds] [window] [rate] [udp|tcp]
// window: outstanding transactions in closed-loop mode; rate > 0: open loop at that many requests/s instead
// (the latency figures then show what a steady load sees, not queueing behind the window).
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { createResponse } from "../sip/message.ts";
import { SipStack } from "./index.ts";

const mode = process.argv[2] === "invite" ? "invite" : "register";
const seconds = Number(process.argv[3] ?? 5);
const windowSize = Number(process.argv[4] ?? 200);
const rate = Number(process.argv[5] ?? 0);
const transport = process.argv[6] === "tcp" ? "tcp" : "udp";

// Load generator: plain JS so the worker needs no TypeScript loader.
const generator = `
const { parentPort, workerData } = require("node:worker_threads");
const dgram = require("node:dgram");
const net = require("node:net");
const { port, mode, seconds, windowSize, rate, transport } = workerData;
let me = 0;
let write;
const sentAt = new Map();
const latencies = [];
let seq = 0, done = 0, errors = 0, stopped = false;
function send() {
  const id = ++seq;
  const method = mode === "invite" ? "INVITE" : "REGISTER";
  const text = method + " sip:bench@127.0.0.1 SIP/2.0\\r\\n" +
    "Via: SIP/2.0/" + transport.toUpperCase() + " 127.0.0.1:" + me + ";branch=z9hG4bKb" + id + ";rport\\r\\n" +
    "Max-Forwards: 70\\r\\n" +
    "From: <sip:u" + (id % 1000) + "@127.0.0.1>;tag=f" + id + "\\r\\n" +
    "To: <sip:u" + (id % 1000) + "@127.0.0.1>\\r\\n" +
    "Call-ID: bench-" + id + "\\r\\n" +
    "CSeq: 1 " + method + "\\r\\n" +
    "Contact: <sip:u@127.0.0.1:" + me + ">\\r\\n" +
    "Expires: 3600\\r\\n" +
    "User-Agent: stack-bench\\r\\n" +
    "Content-Length: 0\\r\\n\\r\\n";
  sentAt.set("bench-" + id, performance.now());
  write(text);
}
function handle(text) {
  const status = Number(text.slice(8, 11));
  if (status < 200) return;
  const i = text.indexOf("Call-ID: ");
  const callId = text.slice(i + 9, text.indexOf("\\r\\n", i));
  const t = sentAt.get(callId);
  if (t === undefined) return; // 2xx retransmission
  sentAt.delete(callId);
  if (status !== 200) errors++;
  latencies.push(performance.now() - t);
  done++;
  if (mode === "invite") {
    const via = text.slice(text.indexOf("Via: ") + 5, text.indexOf("\\r\\n", text.indexOf("Via: ")));
    const toLine = text.slice(text.indexOf("To: ") + 4, text.indexOf("\\r\\n", text.indexOf("To: ")));
    const fromLine = text.slice(text.indexOf("From: ") + 6, text.indexOf("\\r\\n", text.indexOf("From: ")));
    const ack = "ACK sip:bench@127.0.0.1 SIP/2.0\\r\\nVia: " + via.replace(/branch=[^;]+/, "branch=z9hG4bKack" + callId) +
      "\\r\\nMax-Forwards: 70\\r\\nFrom: " + fromLine + "\\r\\nTo: " + toLine + "\\r\\nCall-ID: " + callId +
      "\\r\\nCSeq: 1 ACK\\r\\nContent-Length: 0\\r\\n\\r\\n";
    write(ack);
  }
  if (!stopped && rate === 0) send();
}
let close;
if (transport === "tcp") {
  const conn = net.connect(port, "127.0.0.1", () => { me = conn.localPort; run(); });
  conn.setNoDelay(true);
  let buf = "";
  conn.on("data", (d) => {
    buf += d.toString("latin1");
    let i;
    // responses carry no body: each ends at its blank line
    while ((i = buf.indexOf("\\r\\n\\r\\n")) >= 0) { const m = buf.slice(0, i + 4); buf = buf.slice(i + 4); handle(m); }
  });
  write = (t) => conn.write(t);
  close = () => conn.destroy();
} else {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg) => handle(msg.toString("latin1")));
  sock.bind(0, "127.0.0.1", () => { me = sock.address().port; run(); });
  write = (t) => sock.send(t, port, "127.0.0.1");
  close = () => sock.close();
}
function run() {
  const start = performance.now();
  if (rate > 0) {
    let sent = 0;
    const pace = setInterval(() => {
      if (stopped) return clearInterval(pace);
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      while (sent < due) { send(); sent++; }
    }, 1);
  } else for (let i = 0; i < windowSize; i++) send();
  setTimeout(() => {
    stopped = true;
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    setTimeout(() => {
      parentPort.postMessage({ done, errors, elapsed, lost: sentAt.size, p50: pct(0.5), p99: pct(0.99) });
      close();
    }, 300);
  }, seconds * 1000);
}
`;

/** CPU seconds (user+system) of the main thread only, from /proc (Linux); the generator thread is excluded. */
function mainThreadCpu(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime in clock ticks (USER_HZ = 100)
  } catch {
    return Number.NaN;
  }
}

const stack = await SipStack.listen({ host: "127.0.0.1", port: 0, transports: [transport] });
stack.on("request", (st, msg) => {
  st.respond(createResponse(msg.request, 200));
});
const port = stack.hostports[0]?.port ?? 0;
const cpuBefore = process.cpuUsage();
const mainBefore = mainThreadCpu();
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const result = await new Promise<{
  done: number;
  errors: number;
  elapsed: number;
  lost: number;
  p50: number;
  p99: number;
}>((resolve, reject) => {
  const worker = new Worker(generator, {
    eval: true,
    workerData: { port, mode, seconds, windowSize, rate, transport },
  });
  worker.once("message", resolve);
  worker.once("error", reject);
});
const cpu = process.cpuUsage(cpuBefore);
const mainCpu = mainThreadCpu() - mainBefore;
const stats = stack.stats();
// With --expose-gc, count only what is really retained.
(globalThis as { gc?: () => void }).gc?.();
const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;
console.log(
  JSON.stringify(
    {
      mode,
      transport,
      window: rate > 0 ? undefined : windowSize,
      rate: rate > 0 ? rate : undefined,
      transactionsPerSecond: Math.round(result.done / result.elapsed),
      completed: result.done,
      errors: result.errors,
      lost: result.lost,
      p50ms: Number(result.p50.toFixed(2)),
      p99ms: Number(result.p99.toFixed(2)),
      // CPU the stack's thread spent per transaction (robust against a loaded machine, unlike the rate)
      stackCpuUsPerTransaction: Number(((mainCpu / result.done) * 1e6).toFixed(1)),
      // CPU of the whole process (stack + generator thread) per second of wall time
      cpuCoresUsed: Number(((cpu.user + cpu.system) / 1e6 / result.elapsed).toFixed(2)),
      // how long the stack's own event loop stalled (GC, CPU starvation on a shared box)
      stackLoopDelayP99ms: Number((loopDelay.percentile(99) / 1e6).toFixed(1)),
      stackLoopDelayMaxMs: Number((loopDelay.max / 1e6).toFixed(1)),
      liveServerTransactions: stats.serverTransactions,
      heapUsedMb: Math.round(heapMb),
      rssMb: Math.round(process.memoryUsage().rss / 1024 / 1024),
    },
    null,
    2,
  ),
);
await stack.close();

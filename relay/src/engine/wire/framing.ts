// drachtio wire framing: every message on the admin TCP connection is `<byte length>#<payload>`.
// The decoder is incremental (TCP chunks split or join frames anywhere) and never buffers more than one frame.

/** Largest frame we accept from an application; a SIP message is at most 64 KiB, so this is generous. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const MAX_LENGTH_DIGITS = 8;
const HASH = 0x23;
const ZERO = 0x30;
const NINE = 0x39;

export class FramingError extends Error {
  override readonly name = "FramingError";
}

/** Splits a byte stream into frame payloads; calls onError once and stops on malformed input. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** payload length of the frame being read, or -1 while reading the length prefix */
  private need = -1;
  private failed = false;

  /** Largest frame accepted from now on (raised once a connection has authenticated). */
  maxFrame: number;

  constructor(
    private readonly onFrame: (payload: Buffer) => void,
    private readonly onError: (err: FramingError) => void,
    maxFrame = MAX_FRAME_BYTES,
  ) {
    this.maxFrame = maxFrame;
  }

  push(chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.failed) {
      if (this.need < 0 && !this.readLength()) return;
      if (this.buffered < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      this.onFrame(payload);
    }
  }

  /** Drop buffered data; later pushes are ignored (used when the connection is being closed). */
  stop(): void {
    this.failed = true;
    this.chunks = [];
    this.buffered = 0;
  }

  private fail(reason: string): void {
    this.stop();
    this.onError(new FramingError(reason));
  }

  private readLength(): boolean {
    let head = this.chunks[0];
    if (head === undefined) return false;
    if (head.length <= MAX_LENGTH_DIGITS && this.chunks.length > 1) {
      // the prefix may straddle chunks: coalesce (only ever a few bytes here)
      head = Buffer.concat(this.chunks);
      this.chunks = [head];
    }
    const limit = Math.min(head.length, MAX_LENGTH_DIGITS + 1);
    let len = 0;
    for (let i = 0; i < limit; i++) {
      const c = head[i] as number;
      if (c === HASH) {
        if (i === 0) {
          this.fail("frame has no length before '#'");
          return false;
        }
        if (len === 0) {
          this.fail("frame length is zero");
          return false;
        }
        if (len > this.maxFrame) {
          this.fail(`frame of ${len} bytes exceeds the limit`);
          return false;
        }
        this.skip(i + 1);
        this.need = len;
        return true;
      }
      if (c < ZERO || c > NINE) {
        this.fail("invalid character in frame length");
        return false;
      }
      len = len * 10 + (c - ZERO);
    }
    if (limit > MAX_LENGTH_DIGITS) this.fail("frame length prefix too long");
    return false;
  }

  private skip(n: number): void {
    const head = this.chunks[0] as Buffer;
    this.buffered -= n;
    if (n === head.length) this.chunks.shift();
    else this.chunks[0] = head.subarray(n);
  }

  private take(n: number): Buffer {
    const head = this.chunks[0] as Buffer;
    if (head.length >= n) {
      const out = head.subarray(0, n);
      this.skip(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Buffer;
      const use = Math.min(c.length, n - off);
      c.copy(out, off, 0, use);
      off += use;
      this.skip(use);
    }
    return out;
  }
}

/** One frame as a single Buffer: `<len>#<leader>` followed by an optional raw SIP message. */
export function encodeFrame(leader: string, sip?: Buffer | string): Buffer {
  const sipBuf = sip === undefined ? undefined : typeof sip === "string" ? Buffer.from(sip, "utf8") : sip;
  const leaderLen = Buffer.byteLength(leader, "utf8");
  const total = leaderLen + (sipBuf ? sipBuf.length : 0);
  const prefix = `${total}#`;
  const out = Buffer.allocUnsafe(prefix.length + total);
  out.write(prefix, 0, "latin1");
  out.write(leader, prefix.length, "utf8");
  if (sipBuf) sipBuf.copy(out, prefix.length + leaderLen);
  return out;
}

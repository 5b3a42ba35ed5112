// TCP stream framer: cuts a byte stream into SIP messages using Content-Length (mandatory on stream transports,
// RFC 3261 §18.3), answers RFC 5626 CRLF keepalives through a callback, and enforces size limits. After an error it
// ignores further input: the transport is expected to close the connection.

import type { ParseLimits } from "./message.ts";
import { DEFAULT_LIMITS } from "./parse.ts";

const CRLFCRLF = Buffer.from("\r\n\r\n");
const LFLF = Buffer.from("\n\n");
const EMPTY = Buffer.alloc(0);

/** Find the Content-Length value in a header block (latin1 text). undefined = absent, -1 = malformed/conflicting. */
function contentLength(head: string): number | undefined {
  let found: number | undefined;
  let pos = head.indexOf("\n") + 1; // skip the start line
  const n = head.length;
  while (pos > 0 && pos < n) {
    let e = head.indexOf("\n", pos);
    if (e === -1) e = n;
    const colon = head.indexOf(":", pos);
    if (colon !== -1 && colon < e) {
      let ne = colon;
      while (ne > pos && (head.charCodeAt(ne - 1) === 32 || head.charCodeAt(ne - 1) === 9)) ne--;
      const nameLen = ne - pos;
      let match = false;
      if (nameLen === 1)
        match = (head.charCodeAt(pos) | 32) === 108; // "l"
      else if (nameLen === 14) match = head.slice(pos, ne).toLowerCase() === "content-length";
      if (match) {
        const v = head.slice(colon + 1, e).trim();
        if (v.length === 0 || v.length > 9) return -1;
        for (let i = 0; i < v.length; i++) {
          const c = v.charCodeAt(i);
          if (c < 48 || c > 57) return -1;
        }
        const cl = Number(v);
        if (found !== undefined && found !== cl) return -1;
        found = cl;
      }
    }
    pos = e + 1;
  }
  return found;
}

export class StreamFramer {
  /**
   * Received bytes; only [0, len) is valid. When the framer owns it (a buffer it allocated), new data is appended
   * in place, growing geometrically, so a peer trickling a message byte by byte costs O(n), not O(n²). Bytes below
   * `len` are never overwritten: frames handed out earlier are views on them.
   */
  private buf: Buffer = EMPTY;
  private len = 0;
  private owned = false;
  /** Bytes of buf already consumed. */
  private pos = 0;
  /** Absolute index in buf where the search for the end of the current header section resumes. */
  private scanFrom = 0;
  /** End (absolute, in buf) of the message whose header was already read and whose body is awaited; -1 if none. */
  private frameEnd = -1;
  private dead = false;
  private draining = false;
  private readonly maxSize: number;

  /**
   * @param onMessage one complete message (start line to end of body); a view on received data, not copied.
   * @param onKeepalive a double-CRLF ping arrived between messages: the transport should send a single CRLF.
   * @param onError framing failed (missing/bad Content-Length, too large); the transport should close.
   */
  constructor(
    private readonly onMessage: (raw: Buffer) => void,
    private readonly onKeepalive: () => void,
    private readonly onError: (reason: string) => void,
    limits?: Partial<ParseLimits>,
  ) {
    this.maxSize = limits?.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize;
  }

  /** Bytes buffered but not yet part of a complete message. */
  get pending(): number {
    return this.len - this.pos;
  }

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    if (this.pos >= this.len) {
      // Nothing pending: frame straight from the caller's chunk, no copy.
      this.buf = chunk;
      this.len = chunk.length;
      this.owned = false;
      this.pos = 0;
      this.scanFrom = 0;
      this.frameEnd = -1;
    } else if (this.owned && this.len + chunk.length <= this.buf.length) {
      chunk.copy(this.buf, this.len);
      this.len += chunk.length;
    } else {
      const keep = this.len - this.pos;
      const next = Buffer.allocUnsafe(Math.max(4096, 2 * (keep + chunk.length)));
      this.buf.copy(next, 0, this.pos, this.len);
      chunk.copy(next, keep);
      this.scanFrom = Math.max(0, this.scanFrom - this.pos);
      if (this.frameEnd !== -1) this.frameEnd -= this.pos;
      this.buf = next;
      this.len = keep + chunk.length;
      this.owned = true;
      this.pos = 0;
    }
    // A push from inside onMessage only appends; the running loop picks the bytes up.
    if (!this.draining) this.drain();
  }

  private fail(reason: string): void {
    this.dead = true;
    this.buf = EMPTY;
    this.len = 0;
    this.pos = 0;
    this.onError(reason);
  }

  private drain(): void {
    this.draining = true;
    try {
      while (!this.dead && this.pos < this.len) if (!this.step()) break;
    } finally {
      this.draining = false;
    }
    if (!this.dead && this.pos >= this.len) {
      this.buf = EMPTY;
      this.len = 0;
      this.owned = false;
      this.pos = 0;
      this.scanFrom = 0;
      this.frameEnd = -1;
    }
  }

  /** Consume one keepalive or message; false when more bytes are needed. */
  private step(): boolean {
    // Searches must not see the unused capacity beyond len.
    const buf = this.len === this.buf.length ? this.buf : this.buf.subarray(0, this.len);
    const pos = this.pos;
    if (this.frameEnd !== -1) {
      // Header already read: only wait for the rest of the body.
      if (this.frameEnd > buf.length) return false;
      return this.emit(buf, pos, this.frameEnd);
    }
    // Between messages: CRLF keepalives (RFC 5626 §4.4.1). "\r\n\r\n" is a ping; a lone "\r\n" is a pong.
    const c = buf[pos];
    if (c === 13 || c === 10) {
      if (c === 13 && buf[pos + 1] === 10 && buf[pos + 2] === 13 && buf[pos + 3] === 10) {
        this.pos = pos + 4;
        this.onKeepalive();
        return true;
      }
      if (c === 13 && buf.length - pos < 4) {
        // Possibly the start of a ping split across reads: wait for more bytes, unless it cannot be one.
        const rest = buf.subarray(pos);
        if (CRLFCRLF.subarray(0, rest.length).equals(rest)) return false;
      }
      this.pos = pos + 1;
      return true;
    }
    // The first empty line ends the headers (CRLF CRLF, or LF LF from bare-LF senders, as in parseMessage).
    const from = Math.max(pos, this.scanFrom - 3);
    let headEnd = buf.indexOf(CRLFCRLF, from);
    let sepLen = 4;
    const lfEnd = buf.indexOf(LFLF, from);
    if (lfEnd !== -1 && (headEnd === -1 || lfEnd < headEnd)) {
      headEnd = lfEnd;
      sepLen = 2;
    }
    if (headEnd === -1) {
      if (buf.length - pos > this.maxSize) this.fail("message too large");
      else this.scanFrom = buf.length;
      return false;
    }
    const cl = contentLength(buf.toString("latin1", pos, headEnd));
    if (cl === undefined) {
      this.fail("missing Content-Length on a stream transport");
      return false;
    }
    if (cl < 0) {
      this.fail("bad Content-Length");
      return false;
    }
    const end = headEnd + sepLen + cl;
    if (end - pos > this.maxSize) {
      this.fail("message too large");
      return false;
    }
    if (end > buf.length) {
      this.frameEnd = end;
      return false;
    }
    return this.emit(buf, pos, end);
  }

  private emit(buf: Buffer, start: number, end: number): boolean {
    this.pos = end;
    this.scanFrom = end;
    this.frameEnd = -1;
    this.onMessage(buf.subarray(start, end));
    return true;
  }
}

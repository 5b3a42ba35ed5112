// Typed errors of the SIP stack (bind failures, unresolvable targets, transport failures).
/** Error codes raised by the stack. */
export type StackErrorCode = "unresolvable" | "transport" | "closed" | "invalid-message" | "bind";

export class StackError extends Error {
  readonly code: StackErrorCode;
  constructor(code: StackErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StackError";
    this.code = code;
  }
}

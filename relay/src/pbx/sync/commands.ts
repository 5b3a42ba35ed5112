/**
 * The command bus: each PBX feature registers the handler of the edge commands it
 * owns (mwi → MWI, recording.* → recording, call.hangup → calls, ban.lift →
 * defence); the edge link dispatches every `command` frame here and answers with
 * `command-result`. A `CommandError`'s message goes back to the edge (it is written
 * for the admin); any other failure is logged here and reported generically, so
 * internal messages never leave the relay.
 */
import type { RelayCommand } from "@gosip/drizzle";
import type { Logger } from "pino";
import { type CommandBus, CommandError, type RelayCommandKind } from "../context.ts";

export type CommandResult = { ok: true } | { ok: false; error: string };

type AnyHandler = (command: RelayCommand) => Promise<void>;

/**
 * Runs before the kind's handler and may reject like one. Resolves true when it kept
 * the command's state itself (the directory stores mwi counts), which then succeeds
 * even when no feature handles the kind.
 */
export type CommandHook = (command: RelayCommand) => Promise<boolean>;

export class CommandRouter implements CommandBus {
  readonly #handlers = new Map<RelayCommandKind, AnyHandler>();
  readonly #before: CommandHook | undefined;

  constructor(
    private readonly log: Logger,
    options: { before?: CommandHook } = {},
  ) {
    this.#before = options.before;
  }

  handle<K extends RelayCommandKind>(
    kind: K,
    handler: (command: Extract<RelayCommand, { kind: K }>) => Promise<void>,
  ): void {
    if (this.#handlers.has(kind)) throw new Error(`a handler for command ${kind} is already registered`);
    // The map is keyed by kind, so a handler only ever sees commands of its own kind.
    this.#handlers.set(kind, handler as AnyHandler);
  }

  /** Whether some feature handles this kind (for the health page). */
  handles(kind: RelayCommandKind): boolean {
    return this.#handlers.has(kind);
  }

  /** Runs one command; never rejects. */
  async dispatch(command: RelayCommand): Promise<CommandResult> {
    const handler = this.#handlers.get(command.kind);
    try {
      const kept = (await this.#before?.(command)) ?? false;
      if (!handler) {
        return kept
          ? { ok: true }
          : { ok: false, error: `the relay does not handle ${command.kind} commands` };
      }
      await handler(command);
      return { ok: true };
    } catch (err) {
      if (err instanceof CommandError) return { ok: false, error: err.message.slice(0, 500) };
      this.log.error({ err, kind: command.kind }, "relay command failed");
      return { ok: false, error: `${command.kind} failed on the relay` };
    }
  }
}

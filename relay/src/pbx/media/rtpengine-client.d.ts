// Types for the parts of rtpengine-client (ng protocol over UDP, no bundled types) that the media service uses.
declare module "rtpengine-client" {
  import type { EventEmitter } from "node:events";

  export type NgValue = string | number | Buffer | NgValue[] | { [key: string]: NgValue | undefined };
  export type NgDict = { [key: string]: NgValue | undefined };
  export interface NgTarget {
    host: string;
    port: number;
  }

  export interface ClientOptions {
    localPort?: number;
    localAddress?: string;
    /** Milliseconds; the library rejects with RtpEngineError('rtpengine timeout ...') after it. */
    timeout?: number;
    rejectOnError?: boolean;
  }

  export class Client extends EventEmitter {
    constructor(opts: ClientOptions);
    ping(target: NgTarget, opts?: NgDict): Promise<NgDict>;
    offer(target: NgTarget, opts: NgDict): Promise<NgDict>;
    answer(target: NgTarget, opts: NgDict): Promise<NgDict>;
    delete(target: NgTarget, opts: NgDict): Promise<NgDict>;
    query(target: NgTarget, opts: NgDict): Promise<NgDict>;
    list(target: NgTarget, opts?: NgDict): Promise<NgDict>;
    startRecording(target: NgTarget, opts: NgDict): Promise<NgDict>;
    stopRecording(target: NgTarget, opts: NgDict): Promise<NgDict>;
    statistics(target: NgTarget, opts?: NgDict): Promise<NgDict>;
    close(): void;
  }

  export class RtpEngineError extends Error {}

  const rtpengine: { Client: typeof Client; RtpEngineError: typeof RtpEngineError };
  export default rtpengine;
}

/**
 * The call side of the Twilio simulator, started beside its REST server and sharing its state: one SIP
 * stack on loopback that both places Twilio's calls into the relay (the call driver) and receives the
 * relay's outbound calls (the SIP Domain), and the simulated PSTN behind both.
 *
 *   const sim = await startTwilioSim();
 *   const calls = await startTwilioSimCalls(sim);
 *   // relay: TWILIO_SIP_PROXY=127.0.0.1:${calls.sipPort}
 *   const call = await calls.driver.placeInboundCall({ from: "+15557654321", to: "+15551230001" });
 */
import type { SimState } from "../state.ts";
import { CallDriver, type CallDriverOptions } from "./driver.ts";
import { PstnNetwork } from "./pstn.ts";
import { SimSip } from "./sip.ts";
import { SipDomainSide } from "./sip-domain.ts";

export { CallDriver, type InboundCall, type InboundCallOptions, type InboundCallResult } from "./driver.ts";
export { type PstnBehaviour, PstnNetwork, type PstnParty } from "./pstn.ts";
export type { Bridge, CallerScript } from "./session.ts";
export { type DomainCall, SipDomainSide, TWILIO_SIP_REALM } from "./sip-domain.ts";
export { Transcript, type TranscriptEntry } from "./transcript.ts";

export interface TwilioSimCallsOptions extends CallDriverOptions {
  /** SIP port on 127.0.0.1 (UDP and TCP); 0, the default, picks a free one. */
  sipPort?: number;
}

export interface TwilioSimCalls {
  driver: CallDriver;
  domain: SipDomainSide;
  pstn: PstnNetwork;
  /** Where the relay sends its outbound calls (TWILIO_SIP_PROXY=127.0.0.1:sipPort). */
  sipPort: number;
  close(): Promise<void>;
}

/** Starts the SIP side for a simulator whose state is `sim.state`. */
export async function startTwilioSimCalls(
  sim: { state: SimState },
  options: TwilioSimCallsOptions = {},
): Promise<TwilioSimCalls> {
  const sip = await SimSip.start({ port: options.sipPort ?? 0 });
  const pstn = options.pstn ?? new PstnNetwork();
  const driver = new CallDriver(sim.state, sip, { ...options, pstn });
  const domain = new SipDomainSide(sim.state, sip, pstn, driver.sessionOptions);
  return {
    driver,
    domain,
    pstn,
    sipPort: sip.port,
    async close() {
      await domain.close();
      await driver.close();
      await sip.close();
    },
  };
}

/** Lines a command-line entry prints about the call side (for the simulator's CLI). */
export function describeTwilioSimCalls(calls: TwilioSimCalls): string[] {
  return [
    `  SIP (calls):   udp+tcp 127.0.0.1:${calls.sipPort}  (SIP Domain for outbound calls, <Dial><Sip> from here)`,
    `  relay:         TWILIO_SIP_PROXY=127.0.0.1:${calls.sipPort}`,
  ];
}

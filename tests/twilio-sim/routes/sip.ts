/**
 * api.twilio.com 2010-04-01 SIP: Domains (name.sip.twilio.com with a Voice
 * URL), Credential Lists and their Credentials (passwords kept for the SIP side,
 * never shown), and the mappings that attach a list to a domain — the current
 * Auth/Calls and Auth/Registrations collections and the older
 * Domains/{Sid}/CredentialListMappings.
 */
import { listV2010, noContent, notFound, ok, type Router, SimError, type SimRequest } from "../http.ts";
import type { SimContext } from "../server.ts";
import {
  API_VERSION,
  type CredentialListMapping,
  type CredentialListResource,
  type CredentialResource,
  type MappingKind,
  rfc2822,
  type SipDomainResource,
} from "../state.ts";

const A = `/${API_VERSION}/Accounts`;

function renderDomain(d: SipDomainResource) {
  const base = `${A}/${d.account_sid}/SIP/Domains/${d.sid}`;
  return {
    ...d,
    uri: `${base}.json`,
    subresource_uris: {
      ip_access_control_list_mappings: `${base}/IpAccessControlListMappings.json`,
      credential_list_mappings: `${base}/CredentialListMappings.json`,
      auth: `${base}/Auth.json`,
    },
  };
}

function renderList(l: CredentialListResource) {
  const base = `${A}/${l.account_sid}/SIP/CredentialLists/${l.sid}`;
  return { ...l, uri: `${base}.json`, subresource_uris: { credentials: `${base}/Credentials.json` } };
}

function renderCredential(c: CredentialResource) {
  return {
    ...c,
    uri: `${A}/${c.account_sid}/SIP/CredentialLists/${c.credential_list_sid}/Credentials/${c.sid}.json`,
  };
}

const MAPPING_PATH: Record<MappingKind, string> = {
  legacy: "CredentialListMappings",
  "auth-calls": "Auth/Calls/CredentialListMappings",
  "auth-registrations": "Auth/Registrations/CredentialListMappings",
};

function renderMapping(
  m: CredentialListMapping,
  lists: Map<string, CredentialListResource>,
  accountSid: string,
) {
  const list = lists.get(m.credentialListSid);
  const common = {
    account_sid: accountSid,
    date_created: m.date_created,
    date_updated: m.date_updated,
    friendly_name: list?.friendly_name ?? "",
    sid: m.credentialListSid,
  };
  if (m.kind === "legacy")
    return {
      ...common,
      domain_sid: m.domainSid,
      uri: `${A}/${accountSid}/SIP/Domains/${m.domainSid}/CredentialListMappings/${m.credentialListSid}.json`,
    };
  return common;
}

/** Twilio's domain names: letters, digits and hyphens, ending in .sip.twilio.com. */
const DOMAIN_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.sip\.twilio\.com$/i;

function applyDomain(d: SipDomainResource, req: SimRequest): void {
  const f = req.form;
  const name = f.get("FriendlyName");
  if (name !== undefined) d.friendly_name = name;
  d.voice_url = f.urlOr("VoiceUrl", d.voice_url);
  d.voice_method = f.methodOr("VoiceMethod", d.voice_method);
  d.voice_fallback_url = f.urlOr("VoiceFallbackUrl", d.voice_fallback_url);
  d.voice_fallback_method = f.methodOr("VoiceFallbackMethod", d.voice_fallback_method);
  d.voice_status_callback_url = f.urlOr("VoiceStatusCallbackUrl", d.voice_status_callback_url);
  d.voice_status_callback_method = f.methodOr("VoiceStatusCallbackMethod", d.voice_status_callback_method);
  const reg = f.bool("SipRegistration");
  if (reg !== undefined) d.sip_registration = reg;
  const emergency = f.bool("EmergencyCallingEnabled");
  if (emergency !== undefined) d.emergency_calling_enabled = emergency;
  const secure = f.bool("Secure");
  if (secure !== undefined) d.secure = secure;
  d.date_updated = rfc2822(new Date());
}

/** Twilio's SIP credential password rule: 12+ characters, a digit, upper and lower case. */
function checkPassword(password: string): void {
  if (password.length < 12 || !/\d/.test(password) || !/[a-z]/.test(password) || !/[A-Z]/.test(password))
    throw new SimError(
      400,
      21612,
      "Password must be at least 12 characters long and contain a mixed case letter and a digit",
    );
}

export function registerSipRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  const S = `${A}/:AccountSid/SIP`;

  const ownDomain = (req: SimRequest, sid = req.params.Sid ?? "") => {
    const d = state.sipDomains.get(sid);
    if (!d || d.account_sid !== req.account.sid) throw notFound(req.path);
    return d;
  };
  const ownList = (req: SimRequest, sid = req.params.Sid ?? "") => {
    const l = state.credentialLists.get(sid);
    if (!l || l.account_sid !== req.account.sid) throw notFound(req.path);
    return l;
  };
  const ownCredential = (req: SimRequest) => {
    const list = ownList(req, req.params.CredentialListSid);
    const c = state.credentials.get(req.params.Sid ?? "");
    if (!c || c.credential_list_sid !== list.sid) throw notFound(req.path);
    return c;
  };

  router
    .get(`${S}/Domains.json`, (req) =>
      listV2010(
        req,
        "domains",
        [...state.sipDomains.values()].filter((d) => d.account_sid === req.account.sid),
        renderDomain,
      ),
    )
    .post(`${S}/Domains.json`, (req) => {
      const name = req.form.get("DomainName");
      if (!name) throw new SimError(400, 21201, "DomainName is required");
      if (!DOMAIN_NAME.test(name)) throw new SimError(400, 21233, `Invalid DomainName ${name}`);
      if (state.sipDomainByName(name)) throw new SimError(400, 21232, `Domain ${name} already exists`);
      const d = state.addSipDomain({ domainName: name.toLowerCase(), accountSid: req.account.sid });
      const copy = structuredClone(d);
      try {
        applyDomain(copy, req);
      } catch (err) {
        state.sipDomains.delete(d.sid);
        throw err;
      }
      Object.assign(d, copy);
      return ok(renderDomain(d), 201);
    })
    .get(`${S}/Domains/:Sid.json`, (req) => ok(renderDomain(ownDomain(req))))
    .post(`${S}/Domains/:Sid.json`, (req) => {
      const d = ownDomain(req);
      const copy = structuredClone(d);
      applyDomain(copy, req);
      const newName = req.form.get("DomainName");
      if (newName !== undefined) {
        if (!DOMAIN_NAME.test(newName)) throw new SimError(400, 21233, `Invalid DomainName ${newName}`);
        const other = state.sipDomainByName(newName);
        if (other && other.sid !== d.sid) throw new SimError(400, 21232, `Domain ${newName} already exists`);
        copy.domain_name = newName.toLowerCase();
      }
      Object.assign(d, copy);
      return ok(renderDomain(d));
    })
    .delete(`${S}/Domains/:Sid.json`, (req) => {
      const d = ownDomain(req);
      state.sipDomains.delete(d.sid);
      for (let i = state.mappings.length - 1; i >= 0; i--)
        if (state.mappings[i]?.domainSid === d.sid) state.mappings.splice(i, 1);
      return noContent();
    })
    .get(`${S}/CredentialLists.json`, (req) =>
      listV2010(
        req,
        "credential_lists",
        [...state.credentialLists.values()].filter((l) => l.account_sid === req.account.sid),
        renderList,
      ),
    )
    .post(`${S}/CredentialLists.json`, (req) => {
      const name = req.form.get("FriendlyName");
      if (!name) throw new SimError(400, 21201, "FriendlyName is required");
      if (name.length > 64)
        throw new SimError(400, 21502, "FriendlyName is too long (64 characters at most)");
      return ok(renderList(state.addCredentialList(name, req.account.sid)), 201);
    })
    .get(`${S}/CredentialLists/:Sid.json`, (req) => ok(renderList(ownList(req))))
    .post(`${S}/CredentialLists/:Sid.json`, (req) => {
      const l = ownList(req);
      const name = req.form.get("FriendlyName");
      if (!name) throw new SimError(400, 21201, "FriendlyName is required");
      l.friendly_name = name;
      l.date_updated = rfc2822(new Date());
      return ok(renderList(l));
    })
    .delete(`${S}/CredentialLists/:Sid.json`, (req) => {
      const l = ownList(req);
      state.credentialLists.delete(l.sid);
      for (const c of state.credentialsOfList(l.sid)) {
        state.credentials.delete(c.sid);
        state.credentialPasswords.delete(c.sid);
      }
      for (let i = state.mappings.length - 1; i >= 0; i--)
        if (state.mappings[i]?.credentialListSid === l.sid) state.mappings.splice(i, 1);
      return noContent();
    })
    .get(`${S}/CredentialLists/:CredentialListSid/Credentials.json`, (req) =>
      listV2010(
        req,
        "credentials",
        state.credentialsOfList(ownList(req, req.params.CredentialListSid).sid),
        renderCredential,
      ),
    )
    .post(`${S}/CredentialLists/:CredentialListSid/Credentials.json`, (req) => {
      const list = ownList(req, req.params.CredentialListSid);
      const username = req.form.get("Username");
      const password = req.form.get("Password");
      if (!username) throw new SimError(400, 21201, "Username is required");
      if (!password) throw new SimError(400, 21201, "Password is required");
      if (username.length > 32 || !/^[A-Za-z0-9_.@+-]+$/.test(username))
        throw new SimError(400, 21608, `Invalid Username ${username}`);
      checkPassword(password);
      if (state.credentialsOfList(list.sid).some((c) => c.username === username))
        throw new SimError(400, 21450, `Username ${username} already exists in this credential list`);
      return ok(renderCredential(state.addCredential(list.sid, username, password)), 201);
    })
    .get(`${S}/CredentialLists/:CredentialListSid/Credentials/:Sid.json`, (req) =>
      ok(renderCredential(ownCredential(req))),
    )
    .post(`${S}/CredentialLists/:CredentialListSid/Credentials/:Sid.json`, (req) => {
      const c = ownCredential(req);
      const password = req.form.get("Password");
      if (!password) throw new SimError(400, 21201, "Password is required");
      checkPassword(password);
      state.credentialPasswords.set(c.sid, password);
      c.date_updated = rfc2822(new Date());
      return ok(renderCredential(c));
    })
    .delete(`${S}/CredentialLists/:CredentialListSid/Credentials/:Sid.json`, (req) => {
      const c = ownCredential(req);
      state.credentials.delete(c.sid);
      state.credentialPasswords.delete(c.sid);
      return noContent();
    });

  for (const kind of ["legacy", "auth-calls", "auth-registrations"] as const) {
    const base = `${S}/Domains/:DomainSid/${MAPPING_PATH[kind]}`;
    const key = kind === "legacy" ? "credential_list_mappings" : "contents";
    router
      .get(`${base}.json`, (req) => {
        const domain = ownDomain(req, req.params.DomainSid);
        const items = state.mappings.filter((m) => m.kind === kind && m.domainSid === domain.sid);
        return listV2010(req, key, items, (m) => renderMapping(m, state.credentialLists, req.account.sid));
      })
      .post(`${base}.json`, (req) => {
        const domain = ownDomain(req, req.params.DomainSid);
        const listSid = req.form.get("CredentialListSid");
        if (!listSid) throw new SimError(400, 21201, "CredentialListSid is required");
        const list = state.credentialLists.get(listSid);
        if (!list || list.account_sid !== req.account.sid)
          throw new SimError(400, 21240, `CredentialListSid ${listSid} is not a valid credential list`);
        if (
          state.mappings.some(
            (m) => m.kind === kind && m.domainSid === domain.sid && m.credentialListSid === listSid,
          )
        )
          throw new SimError(409, 21236, "This credential list is already mapped to this domain");
        const mapping = state.mapCredentialList(kind, domain.sid, listSid);
        return ok(renderMapping(mapping, state.credentialLists, req.account.sid), 201);
      })
      .get(`${base}/:Sid.json`, (req) => {
        const domain = ownDomain(req, req.params.DomainSid);
        const mapping = state.mappings.find(
          (m) => m.kind === kind && m.domainSid === domain.sid && m.credentialListSid === req.params.Sid,
        );
        if (!mapping) throw notFound(req.path);
        return ok(renderMapping(mapping, state.credentialLists, req.account.sid));
      })
      .delete(`${base}/:Sid.json`, (req) => {
        const domain = ownDomain(req, req.params.DomainSid);
        const index = state.mappings.findIndex(
          (m) => m.kind === kind && m.domainSid === domain.sid && m.credentialListSid === req.params.Sid,
        );
        if (index < 0) throw notFound(req.path);
        state.mappings.splice(index, 1);
        return noContent();
      });
  }
}

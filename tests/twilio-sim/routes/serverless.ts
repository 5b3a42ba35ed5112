/**
 * Serverless v1 (serverless.twilio.com, uploads on serverless-upload.twilio.com
 * — same paths, one base URL here): what @twilio-labs/serverless-api's deploy
 * does in order — find or create the Service, find or create the Environment,
 * create Functions/Assets and upload a Version of each (multipart: Path,
 * Visibility, Content), create a Build, poll Builds/{Sid}/Status until
 * completed, create a Deployment on the Environment, set Variables.
 */
import { listMeta, noContent, notFound, ok, type Router, SimError, type SimRequest } from "../http.ts";
import type { SimContext } from "../server.ts";
import {
  iso8601,
  newSid,
  type ServerlessBuild,
  type ServerlessEnvironment,
  type ServerlessFunction,
  type ServerlessFunctionVersion,
  type ServerlessService,
  type ServerlessVariable,
} from "../state.ts";

const V = "/v1/Services";
const UNIQUE_NAME = /^[A-Za-z0-9-_]{1,50}$/;

export function registerServerlessRoutes(router: Router, ctx: SimContext): void {
  const { state } = ctx;
  const url = (path: string) => `${state.baseUrl}${path}`;

  const svcUrl = (s: { sid: string }) => url(`${V}/${s.sid}`);
  const renderService = (s: ServerlessService) => ({
    ...s,
    url: svcUrl(s),
    links: {
      functions: `${svcUrl(s)}/Functions`,
      assets: `${svcUrl(s)}/Assets`,
      environments: `${svcUrl(s)}/Environments`,
      builds: `${svcUrl(s)}/Builds`,
    },
  });
  const renderEnvironment = (e: ServerlessEnvironment) => {
    const u = url(`${V}/${e.service_sid}/Environments/${e.sid}`);
    return {
      ...e,
      url: u,
      links: { variables: `${u}/Variables`, deployments: `${u}/Deployments`, logs: `${u}/Logs` },
    };
  };
  const renderFunction = (kind: "Functions" | "Assets") => (f: ServerlessFunction) => {
    const u = url(`${V}/${f.service_sid}/${kind}/${f.sid}`);
    return {
      ...f,
      url: u,
      links: { [kind === "Functions" ? "function_versions" : "asset_versions"]: `${u}/Versions` },
    };
  };
  const renderFunctionVersion = (v: ServerlessFunctionVersion) => {
    const { content: _c, ...json } = v;
    const u = url(`${V}/${v.service_sid}/Functions/${v.function_sid}/Versions/${v.sid}`);
    return { ...json, url: u, links: { function_version_content: `${u}/Content` } };
  };
  const renderAssetVersion = (v: ServerlessFunctionVersion) => {
    const { content: _c, function_sid, ...json } = v;
    return {
      ...json,
      asset_sid: function_sid,
      url: url(`${V}/${v.service_sid}/Assets/${function_sid}/Versions/${v.sid}`),
    };
  };
  const renderBuild = (b: ServerlessBuild) => {
    const { pollsUntilDone: _p, ...json } = b;
    const u = url(`${V}/${b.service_sid}/Builds/${b.sid}`);
    return { ...json, url: u, links: { build_status: `${u}/Status` } };
  };
  const renderDeployment = (
    d: typeof state.serverlessDeployments extends Map<string, infer D> ? D : never,
  ) => ({
    ...d,
    url: url(`${V}/${d.service_sid}/Environments/${d.environment_sid}/Deployments/${d.sid}`),
  });
  const renderVariable = (v: ServerlessVariable) => ({
    ...v,
    url: url(`${V}/${v.service_sid}/Environments/${v.environment_sid}/Variables/${v.sid}`),
  });

  /** A service by SID or unique name, as Twilio accepts both in the path. */
  const ownService = (req: SimRequest, key = req.params.ServiceSid ?? "") => {
    const s =
      state.serverlessServices.get(key) ??
      [...state.serverlessServices.values()].find((x) => x.unique_name === key);
    if (!s || s.account_sid !== req.account.sid) throw notFound(req.path);
    return s;
  };
  const ownEnvironment = (req: SimRequest, service: ServerlessService, key: string) => {
    const e =
      state.serverlessEnvironments.get(key) ??
      [...state.serverlessEnvironments.values()].find(
        (x) => x.service_sid === service.sid && x.unique_name === key,
      );
    if (!e || e.service_sid !== service.sid) throw notFound(req.path);
    return e;
  };
  const now = () => iso8601(new Date());

  router
    .get(V, (req) =>
      listMeta(
        req,
        "services",
        [...state.serverlessServices.values()].filter((s) => s.account_sid === req.account.sid),
        renderService,
      ),
    )
    .post(V, (req) => {
      const unique = req.form.get("UniqueName");
      const friendly = req.form.get("FriendlyName");
      if (!unique || !UNIQUE_NAME.test(unique))
        throw new SimError(400, 20001, "UniqueName is required: letters, digits, - and _, at most 50");
      if (!friendly) throw new SimError(400, 20001, "FriendlyName is required");
      if ([...state.serverlessServices.values()].some((s) => s.unique_name === unique))
        throw new SimError(409, 54301, `Unique name ${unique} already in use`);
      const t = now();
      const s: ServerlessService = {
        sid: newSid("ZS"),
        account_sid: req.account.sid,
        friendly_name: friendly,
        unique_name: unique,
        include_credentials: req.form.bool("IncludeCredentials") ?? true,
        ui_editable: req.form.bool("UiEditable") ?? false,
        domain_base: `${unique}-${newSid("").slice(0, 4)}`,
        date_created: t,
        date_updated: t,
      };
      state.serverlessServices.set(s.sid, s);
      return ok(renderService(s), 201);
    })
    .get(`${V}/:ServiceSid`, (req) => ok(renderService(ownService(req))))
    .delete(`${V}/:ServiceSid`, (req) => {
      state.serverlessServices.delete(ownService(req).sid);
      return noContent();
    })
    // Environments
    .get(`${V}/:ServiceSid/Environments`, (req) => {
      const s = ownService(req);
      const items = [...state.serverlessEnvironments.values()].filter((e) => e.service_sid === s.sid);
      return listMeta(req, "environments", items, renderEnvironment);
    })
    .post(`${V}/:ServiceSid/Environments`, (req) => {
      const s = ownService(req);
      const unique = req.form.get("UniqueName");
      if (!unique || !UNIQUE_NAME.test(unique)) throw new SimError(400, 20001, "UniqueName is required");
      const suffix = req.form.get("DomainSuffix") ?? null;
      if (suffix !== null && !/^[a-z0-9-]{0,16}$/.test(suffix))
        throw new SimError(400, 20001, "Invalid DomainSuffix");
      if (
        [...state.serverlessEnvironments.values()].some(
          (e) => e.service_sid === s.sid && e.unique_name === unique,
        )
      )
        throw new SimError(409, 54301, `Environment ${unique} already exists`);
      const t = now();
      const e: ServerlessEnvironment = {
        sid: newSid("ZE"),
        account_sid: req.account.sid,
        service_sid: s.sid,
        build_sid: null,
        unique_name: unique,
        domain_suffix: suffix,
        domain_name: `${s.domain_base}${suffix ? `-${suffix}` : ""}.twil.io`,
        date_created: t,
        date_updated: t,
      };
      state.serverlessEnvironments.set(e.sid, e);
      return ok(renderEnvironment(e), 201);
    })
    .get(`${V}/:ServiceSid/Environments/:Sid`, (req) =>
      ok(renderEnvironment(ownEnvironment(req, ownService(req), req.params.Sid ?? ""))),
    )
    .delete(`${V}/:ServiceSid/Environments/:Sid`, (req) => {
      state.serverlessEnvironments.delete(ownEnvironment(req, ownService(req), req.params.Sid ?? "").sid);
      return noContent();
    });

  // Functions and Assets share their shape; versions are uploaded as multipart.
  for (const kind of ["Functions", "Assets"] as const) {
    const store = kind === "Functions" ? state.serverlessFunctions : state.serverlessAssets;
    const versions = kind === "Functions" ? state.serverlessFunctionVersions : state.serverlessAssetVersions;
    const render = renderFunction(kind);
    const renderVersion = kind === "Functions" ? renderFunctionVersion : renderAssetVersion;
    const ownItem = (req: SimRequest, service: ServerlessService, sid: string) => {
      const f = store.get(sid);
      if (!f || f.service_sid !== service.sid) throw notFound(req.path);
      return f;
    };
    const key = kind === "Functions" ? "functions" : "assets";
    router
      .get(`${V}/:ServiceSid/${kind}`, (req) => {
        const s = ownService(req);
        return listMeta(
          req,
          key,
          [...store.values()].filter((f) => f.service_sid === s.sid),
          render,
        );
      })
      .post(`${V}/:ServiceSid/${kind}`, (req) => {
        const s = ownService(req);
        const name = req.form.get("FriendlyName");
        if (!name || name.length > 255) throw new SimError(400, 20001, "FriendlyName is required");
        const t = now();
        const f: ServerlessFunction = {
          sid: newSid("ZH"),
          account_sid: req.account.sid,
          service_sid: s.sid,
          friendly_name: name,
          date_created: t,
          date_updated: t,
        };
        store.set(f.sid, f);
        return ok(render(f), 201);
      })
      .get(`${V}/:ServiceSid/${kind}/:Sid`, (req) =>
        ok(render(ownItem(req, ownService(req), req.params.Sid ?? ""))),
      )
      .delete(`${V}/:ServiceSid/${kind}/:Sid`, (req) => {
        store.delete(ownItem(req, ownService(req), req.params.Sid ?? "").sid);
        return noContent();
      })
      .get(`${V}/:ServiceSid/${kind}/:ItemSid/Versions`, (req) => {
        const f = ownItem(req, ownService(req), req.params.ItemSid ?? "");
        const items = [...versions.values()].filter((v) => v.function_sid === f.sid);
        return listMeta(
          req,
          kind === "Functions" ? "function_versions" : "asset_versions",
          items,
          renderVersion,
        );
      })
      .post(`${V}/:ServiceSid/${kind}/:ItemSid/Versions`, (req) => {
        const s = ownService(req);
        const f = ownItem(req, s, req.params.ItemSid ?? "");
        const path = req.form.get("Path");
        const visibility = req.form.get("Visibility");
        const file = req.files.get("Content");
        const inline = req.form.get("Content");
        if (!path?.startsWith("/")) throw new SimError(400, 20001, "Path is required and starts with /");
        if (visibility !== "public" && visibility !== "private" && visibility !== "protected")
          throw new SimError(400, 20001, "Visibility must be public, private or protected");
        if (!file && inline === undefined)
          throw new SimError(400, 20001, "Content is required (multipart file)");
        const v: ServerlessFunctionVersion = {
          sid: newSid("ZN"),
          account_sid: req.account.sid,
          service_sid: s.sid,
          function_sid: f.sid,
          path,
          visibility,
          date_created: now(),
          content: file ? new TextDecoder().decode(file.content) : (inline ?? ""),
        };
        versions.set(v.sid, v);
        return ok(renderVersion(v), 201);
      })
      .get(`${V}/:ServiceSid/${kind}/:ItemSid/Versions/:Sid`, (req) => {
        const f = ownItem(req, ownService(req), req.params.ItemSid ?? "");
        const v = versions.get(req.params.Sid ?? "");
        if (!v || v.function_sid !== f.sid) throw notFound(req.path);
        return ok(renderVersion(v));
      });
  }

  router
    .get(`${V}/:ServiceSid/Functions/:FunctionSid/Versions/:Sid/Content`, (req) => {
      ownService(req);
      const v = state.serverlessFunctionVersions.get(req.params.Sid ?? "");
      if (!v || v.function_sid !== req.params.FunctionSid) throw notFound(req.path);
      return ok({
        sid: v.sid,
        account_sid: v.account_sid,
        service_sid: v.service_sid,
        function_sid: v.function_sid,
        content: v.content,
        url: url(`${V}/${v.service_sid}/Functions/${v.function_sid}/Versions/${v.sid}/Content`),
      });
    })
    // Builds
    .get(`${V}/:ServiceSid/Builds`, (req) => {
      const s = ownService(req);
      return listMeta(
        req,
        "builds",
        [...state.serverlessBuilds.values()].filter((b) => b.service_sid === s.sid),
        renderBuild,
      );
    })
    .post(`${V}/:ServiceSid/Builds`, (req) => {
      const s = ownService(req);
      const fnVersions = req.form.all("FunctionVersions").map((sid) => {
        const v = state.serverlessFunctionVersions.get(sid);
        if (!v || v.service_sid !== s.sid) throw new SimError(400, 20001, `Unknown function version ${sid}`);
        return v;
      });
      const assetVersions = req.form.all("AssetVersions").map((sid) => {
        const v = state.serverlessAssetVersions.get(sid);
        if (!v || v.service_sid !== s.sid) throw new SimError(400, 20001, `Unknown asset version ${sid}`);
        return v;
      });
      let dependencies: unknown[] = [];
      const deps = req.form.get("Dependencies");
      if (deps !== undefined) {
        try {
          // @twilio-labs/serverless-api sends the array wrapped in bare quotes ("[{"name":…}]",
          // inner quotes not escaped); Twilio accepts that as well as the array itself.
          const unwrapped = /^"\[[\s\S]*\]"$/.test(deps) ? deps.slice(1, -1) : deps;
          let parsed: unknown = JSON.parse(unwrapped);
          if (typeof parsed === "string") parsed = JSON.parse(parsed);
          if (!Array.isArray(parsed)) throw new Error("not an array");
          dependencies = parsed;
        } catch {
          throw new SimError(400, 20001, "Dependencies must be a JSON array of {name, version}");
        }
      }
      const runtime = req.form.get("Runtime") ?? "node22";
      if (!/^node\d+$/.test(runtime)) throw new SimError(400, 20001, `Unsupported Runtime ${runtime}`);
      const t = now();
      const b: ServerlessBuild = {
        sid: newSid("ZB"),
        account_sid: req.account.sid,
        service_sid: s.sid,
        status: "building",
        function_versions: fnVersions.map(renderFunctionVersion),
        asset_versions: assetVersions.map(renderAssetVersion),
        dependencies,
        runtime,
        date_created: t,
        date_updated: t,
        pollsUntilDone: state.buildPolls,
      };
      state.serverlessBuilds.set(b.sid, b);
      return ok(renderBuild(b), 201);
    })
    .get(`${V}/:ServiceSid/Builds/:Sid`, (req) => {
      const s = ownService(req);
      const b = state.serverlessBuilds.get(req.params.Sid ?? "");
      if (!b || b.service_sid !== s.sid) throw notFound(req.path);
      return ok(renderBuild(b));
    })
    .get(`${V}/:ServiceSid/Builds/:Sid/Status`, (req) => {
      const s = ownService(req);
      const b = state.serverlessBuilds.get(req.params.Sid ?? "");
      if (!b || b.service_sid !== s.sid) throw notFound(req.path);
      // A build answers "building" to its first polls, then completes.
      if (b.status === "building") {
        if (b.pollsUntilDone > 0) b.pollsUntilDone -= 1;
        else {
          b.status = "completed";
          b.date_updated = now();
        }
      }
      return ok({
        sid: b.sid,
        account_sid: b.account_sid,
        service_sid: b.service_sid,
        status: b.status,
        url: url(`${V}/${b.service_sid}/Builds/${b.sid}/Status`),
      });
    })
    // Deployments
    .get(`${V}/:ServiceSid/Environments/:EnvironmentSid/Deployments`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const items = [...state.serverlessDeployments.values()].filter((d) => d.environment_sid === e.sid);
      return listMeta(req, "deployments", items, renderDeployment);
    })
    .post(`${V}/:ServiceSid/Environments/:EnvironmentSid/Deployments`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const buildSid = req.form.get("BuildSid");
      if (buildSid !== undefined) {
        const b = state.serverlessBuilds.get(buildSid);
        if (!b || b.service_sid !== s.sid) throw new SimError(400, 20001, `Unknown build ${buildSid}`);
        if (b.status !== "completed") throw new SimError(400, 20001, `Build ${buildSid} is not completed`);
      }
      const t = now();
      const d = {
        sid: newSid("ZD"),
        account_sid: req.account.sid,
        service_sid: s.sid,
        environment_sid: e.sid,
        build_sid: buildSid ?? e.build_sid ?? "",
        date_created: t,
        date_updated: t,
      };
      if (!d.build_sid) throw new SimError(400, 20001, "BuildSid is required");
      state.serverlessDeployments.set(d.sid, d);
      e.build_sid = d.build_sid;
      e.date_updated = t;
      return ok(renderDeployment(d), 201);
    })
    .get(`${V}/:ServiceSid/Environments/:EnvironmentSid/Deployments/:Sid`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const d = state.serverlessDeployments.get(req.params.Sid ?? "");
      if (!d || d.environment_sid !== e.sid) throw notFound(req.path);
      return ok(renderDeployment(d));
    })
    // Variables
    .get(`${V}/:ServiceSid/Environments/:EnvironmentSid/Variables`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const items = [...state.serverlessVariables.values()].filter((v) => v.environment_sid === e.sid);
      return listMeta(req, "variables", items, renderVariable);
    })
    .post(`${V}/:ServiceSid/Environments/:EnvironmentSid/Variables`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const key = req.form.get("Key");
      const value = req.form.get("Value");
      if (!key || !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(key))
        throw new SimError(400, 20001, "Key is required");
      if (value === undefined) throw new SimError(400, 20001, "Value is required");
      if ([...state.serverlessVariables.values()].some((v) => v.environment_sid === e.sid && v.key === key))
        throw new SimError(409, 54301, `Variable ${key} already exists`);
      const t = now();
      const v: ServerlessVariable = {
        sid: newSid("ZV"),
        account_sid: req.account.sid,
        service_sid: s.sid,
        environment_sid: e.sid,
        key,
        value,
        date_created: t,
        date_updated: t,
      };
      state.serverlessVariables.set(v.sid, v);
      return ok(renderVariable(v), 201);
    })
    .post(`${V}/:ServiceSid/Environments/:EnvironmentSid/Variables/:Sid`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const v = state.serverlessVariables.get(req.params.Sid ?? "");
      if (!v || v.environment_sid !== e.sid) throw notFound(req.path);
      const value = req.form.get("Value");
      const key = req.form.get("Key");
      if (key !== undefined) v.key = key;
      if (value !== undefined) v.value = value;
      v.date_updated = now();
      return ok(renderVariable(v));
    })
    .delete(`${V}/:ServiceSid/Environments/:EnvironmentSid/Variables/:Sid`, (req) => {
      const s = ownService(req);
      const e = ownEnvironment(req, s, req.params.EnvironmentSid ?? "");
      const v = state.serverlessVariables.get(req.params.Sid ?? "");
      if (!v || v.environment_sid !== e.sid) throw notFound(req.path);
      state.serverlessVariables.delete(v.sid);
      return noContent();
    });
}

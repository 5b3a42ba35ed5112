/** The edge's version, from its package.json (reported by health and the OpenAPI document). */
import edgePackage from "../../package.json" with { type: "json" };

export const EDGE_VERSION: string = edgePackage.version;

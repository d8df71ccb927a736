// Validates every object an overlay renders against its schema: core kinds with the
// kubernetes-models package (Kubernetes' own OpenAPI schemas), KEDA, prometheus-operator and
// CloudNativePG kinds with their @kubernetes-models packages, and RabbitmqCluster, User and Permission with
// the operators' CRD schemas pinned in schemas/ (no package carries it), strictly: a field the CRD does
// not declare is an error, as the API server would prune it.
// Input (stdin): {"<overlay>": [objects...], ...}. Output: one "FAIL: ..." line per problem;
// exit 1 if any, else prints how many objects of which kinds were validated.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const packages = {
  "keda.sh": "@kubernetes-models/keda",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "postgresql.cnpg.io": "@kubernetes-models/cloudnative-pg",
};

// additionalProperties: false wherever a CRD schema lists properties and does not keep unknown fields.
function strict(schema) {
  if (!schema || typeof schema !== "object") return schema;
  if (schema.properties && schema.additionalProperties === undefined && !schema["x-kubernetes-preserve-unknown-fields"]) {
    schema.additionalProperties = false;
  }
  for (const key of ["properties", "items", "additionalProperties"]) {
    const v = schema[key];
    if (key === "properties" && v) for (const p of Object.values(v)) strict(p);
    else if (v && typeof v === "object") strict(v);
  }
  for (const key of ["allOf", "anyOf", "oneOf"]) for (const s of schema[key] || []) strict(s);
  return schema;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const pin = (file) => ajv.compile(strict(JSON.parse(readFileSync(here + "schemas/" + file, "utf8"))));
const pinned = {
  "rabbitmq.com/v1beta1/RabbitmqCluster": pin("rabbitmq.com_v1beta1_rabbitmqcluster.json"),
  // The Messaging Topology Operator's users and their permissions (the production overlay).
  "rabbitmq.com/v1beta1/User": pin("rabbitmq.com_v1beta1_user.json"),
  "rabbitmq.com/v1beta1/Permission": pin("rabbitmq.com_v1beta1_permission.json"),
};

async function validator(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (pinned[key]) {
    return (obj) => (pinned[key](obj) ? [] : pinned[key].errors.map((e) => `${e.instancePath || "/"} ${e.message}`));
  }
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = packages[group] || "kubernetes-models";
  const path = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
  let mod;
  try {
    mod = await import(path);
  } catch {
    return null;
  }
  const Model = mod[kind];
  return (obj) => {
    try {
      new Model(obj).validate();
      return [];
    } catch (e) {
      return [e.message];
    }
  };
}

const input = JSON.parse(readFileSync(0, "utf8"));
let failures = 0;
const counts = {};
for (const [overlay, objects] of Object.entries(input)) {
  for (const obj of objects) {
    const where = `k8s/overlays/${overlay}: ${obj.kind}/${obj.metadata?.name}`;
    const validate = await validator(obj.apiVersion, obj.kind);
    if (!validate) {
      console.log(`FAIL: ${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
      failures++;
      continue;
    }
    for (const error of validate(obj)) {
      console.log(`FAIL: ${where}: ${error}`);
      failures++;
    }
    counts[obj.kind] = (counts[obj.kind] || 0) + 1;
  }
}
console.log(`validated ${Object.values(counts).reduce((a, b) => a + b, 0)} objects: ` +
  Object.entries(counts).sort().map(([k, n]) => `${n} ${k}`).join(", "));
process.exit(failures ? 1 : 0);

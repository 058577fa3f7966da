// SPDX-License-Identifier: GPL-2.0
// Validates Kubernetes objects (multi-document YAML on stdin, e.g. `kubectl kustomize DIR`)
// against their schemas, offline: the API's own kinds and the Prometheus Operator's with
// kubernetes-models (generated from the Kubernetes OpenAPI and the operator's CRDs), Managed
// Prometheus' kinds with the openAPIV3Schema of their CRDs in crds/ (GoogleCloudPlatform/
// prometheus-engine, charts/operator/crds, Apache-2.0).  A kind without a schema fails.
// Prints one line per object; exit 1 when any is invalid.
//   kubectl kustomize deploy | node tests/integration/k8s_schema/validate.mjs
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import { parseAllDocuments, parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
// Formats (duration, int64...) are not checked: the CRDs name some ajv does not know.
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const crds = {};
for (const f of readdirSync(join(here, "crds")).filter((f) => f.endsWith(".yaml"))) {
  const crd = parse(readFileSync(join(here, "crds", f), "utf8"));
  for (const v of crd.spec.versions)
    crds[`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`] = ajv.compile(
      v.schema.openAPIV3Schema);
}

// apiVersion -> the kubernetes-models module of its group and version
function modelModule(apiVersion) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

let bad = 0;
const docs = parseAllDocuments(readFileSync(0, "utf8"));
for (const d of docs) {
  const obj = d.toJSON();
  if (!obj) continue;
  const what = `${obj.apiVersion} ${obj.kind} ${obj.metadata?.namespace ?? "-"}/${obj.metadata?.name}`;
  // kustomize wraps a Secret's base64 at 76 columns; the API server's decoder (Go's base64)
  // skips line breaks, the schema's "byte" format does not.
  if (obj.apiVersion === "v1" && obj.kind === "Secret" && obj.data)
    for (const k of Object.keys(obj.data)) obj.data[k] = String(obj.data[k]).replace(/\s+/g, "");
  let err = null;
  const crd = crds[`${obj.apiVersion}/${obj.kind}`];
  if (crd) {
    if (!crd(obj)) err = ajv.errorsText(crd.errors);
  } else {
    let Model;
    try {
      Model = (await import(modelModule(obj.apiVersion)))[obj.kind];
    } catch (e) {
      Model = undefined;
    }
    if (!Model) err = "no schema for this kind";
    else {
      try {
        new Model(obj).validate();
      } catch (e) {
        err = e.message;
      }
    }
  }
  console.log(`${err ? "FAIL" : "ok  "}  ${what}${err ? ": " + err : ""}`);
  if (err) bad++;
}
if (!docs.length) {
  console.log("FAIL  no objects");
  bad++;
}
process.exit(bad ? 1 : 0);

// Validates `grpc-chaos export istio` output against the published Istio schema, with
// the npm package @kubernetes-models/istio: `node validate_istio.mjs FILE.json`. Exits
// non-zero, with the schema's complaint, when the VirtualService is not valid. CI
// installs the package and copies this script beside its node_modules.
import { readFileSync } from "node:fs";
import { VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";

const doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
if (doc.kind !== "VirtualService") {
  throw new Error(`expected a VirtualService, found ${doc.kind}`);
}
new VirtualService(doc).validate();
// A broken copy must fail, or the check above proves nothing.
const broken = structuredClone(doc);
broken.spec.http[0].fault = { delay: { fixedDelay: 5 } };
let refused = false;
try {
  new VirtualService(broken).validate();
} catch {
  refused = true;
}
if (!refused) {
  throw new Error("the schema accepted a broken VirtualService");
}
console.log(`valid: ${doc.spec.http.length} HTTP routes`);

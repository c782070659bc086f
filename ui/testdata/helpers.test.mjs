// Checks the dashboard's pure helpers under node. Run by TestJavaScriptHelpers
// with the modules copied beside it; exits non-zero on the first failure.
import assert from "node:assert/strict";

globalThis.location = { protocol: "http:", hostname: "dash.example", origin: "http://dash.example:8001" };

const { baseURL, failure } = await import("./js/api.js");
const { eventMillis, idNumber, termHue } = await import("./js/dom.js");

assert.equal(baseURL("127.0.0.1:8002"), "http://127.0.0.1:8002");
assert.equal(baseURL(":8003"), "http://dash.example:8003");
assert.equal(baseURL("0.0.0.0:8004"), "http://dash.example:8004");
assert.equal(baseURL("[::]:8005"), "http://dash.example:8005");
assert.equal(baseURL("::1:8006"), "http://[::1]:8006");
assert.equal(baseURL("http://n7:8007/"), "http://n7:8007");
assert.equal(baseURL(""), null);

assert.equal(failure(new TypeError("Failed to fetch")), "unreachable");
assert.equal(failure(Object.assign(new Error("x"), { name: "TimeoutError" })), "timed out");
assert.equal(failure(new Error("raftex: no leader")), "raftex: no leader");

assert.deepEqual(["n10", "n2", "n1"].sort((a, b) => idNumber(a) - idNumber(b)), ["n1", "n2", "n10"]);
assert.notEqual(termHue(1), termHue(2));
assert.equal(eventMillis("2025-03-04T05:06:07.123456789Z"), Date.UTC(2025, 2, 4, 5, 6, 7, 123));
assert.equal(eventMillis("2025-03-04T05:06:07Z"), Date.UTC(2025, 2, 4, 5, 6, 7));
// A node that answers its status is up, even when its log tail does not
// come (the tail is decoration; a slow /v1/log must not paint it down).
globalThis.EventSource = class { close() {} };
const { Cluster } = await import("./js/cluster.js");
globalThis.fetch = async (url) => {
  if (url.endsWith("/v1/status")) {
    const status = { id: "n1", role: "leader", term: 3, members: [{ id: "n1", client_addr: "dash.example:8001" }] };
    return new Response(JSON.stringify(status), { status: 200 });
  }
  throw new TypeError("Failed to fetch");
};
let changes = 0;
const cluster = new Cluster("http://dash.example:8001", () => changes++, () => {});
await cluster.poll(cluster.origin);
const n1 = cluster.nodes.get("n1");
assert.ok(n1, "the origin is known as n1");
assert.equal(n1.down, false, `n1 is up though its log tail failed (error ${n1.error})`);
assert.equal(cluster.leader(), n1);
assert.equal(n1.busy, false);
assert.equal(changes, 1);
// A node whose status does not answer is down.
globalThis.fetch = async () => { throw new TypeError("Failed to fetch"); };
await cluster.poll(n1);
assert.equal(n1.down, true);
assert.equal(n1.error, "unreachable");
assert.equal(cluster.leader(), null);
assert.equal(changes, 2);
console.log("ok");

// Checks the dashboard's pure helpers under node. Run by TestJavaScriptHelpers
// with the modules copied beside it; exits non-zero on the first failure.
import assert from "node:assert/strict";

globalThis.location = { protocol: "http:", hostname: "dash.example", origin: "http://dash.example:8001" };

const { baseURL, failure } = await import("./js/api.js");
const { eventMillis, idNumber, termHue, throttled } = await import("./js/dom.js");

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
// throttled runs a burst of calls once, and runs it even where no
// animation frame ever comes (a busy headless browser, a hidden tab): a
// lost frame must not freeze the dashboard.
{
  let frames = 0;
  globalThis.requestAnimationFrame = () => { frames++; }; // never calls back
  let runs = 0;
  const render = throttled(() => runs++);
  render();
  render();
  render();
  assert.equal(frames, 1);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(runs, 1);
  render();
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(runs, 2);
  delete globalThis.requestAnimationFrame;
}
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
// The banner's verdict: writes need a leader and a majority of voters.
assert.deepEqual(cluster.quorum(), { ok: false, why: "1 of 1 voters unreachable" });
const three = new Cluster("http://dash.example:8001", () => {}, () => {});
const st = (role, term = 2) => ({ role, term, leader: "n1", commit_index: 5, applied_index: 5 });
three.nodes.set("n1", { id: "n1", down: false, status: st("leader") });
three.nodes.set("n2", { id: "n2", down: false, status: st("follower") });
three.nodes.set("n3", { id: "n3", down: true, status: st("follower"), error: "unreachable", lastSeen: 0 });
assert.deepEqual(three.quorum(), { ok: true, why: "" });
three.nodes.get("n2").down = true;
assert.deepEqual(three.quorum(), { ok: false, why: "2 of 3 voters unreachable" });
three.nodes.get("n2").down = false;
three.nodes.get("n1").status = st("follower");
assert.deepEqual(three.quorum(), { ok: false, why: "no leader known" });
assert.deepEqual(three.summary().map((s) => s.role), ["follower", "follower", "down"]);

// Icons replace the symbols that start event texts; arrows inside stay
// for withArrows to draw.
const { textWithoutSymbols } = await import("./js/icons.js");
assert.equal(textWithoutSymbols("⏰ election timeout fired, starting election for term 5"), "election timeout fired, starting election for term 5");
assert.equal(textWithoutSymbols("→ SEND AppendEntries to n2 (1 entry)"), "SEND AppendEntries to n2 (1 entry)");
assert.equal(textWithoutSymbols("🗳 GRANTED PreVote to n3"), "GRANTED PreVote to n3");
assert.equal(textWithoutSymbols("term=1 | follower → candidate"), "term=1 | follower → candidate");

// A node stuck in PreVote repeats the same few events: each folds into its
// row, which counts them, instead of filling the timeline.
const { fold, LOOKBACK, MAX } = await import("./js/timeline.js");
const buf = [];
const row = (kind, text, at, node = 3) => ({ ev: { kind, text, node }, at, first: at, count: 1, seq: at });
for (let i = 0; i < 12; i++) {
  fold(buf, row("election_timeout", "⏰ election timeout fired, starting election for term 5", 2 * i));
  fold(buf, row("role_changed", "term=4 | follower → precandidate", 2 * i + 1));
}
assert.equal(buf.length, 2);
assert.deepEqual(buf.map((r) => [r.ev.kind, r.count, r.first, r.at]), [["election_timeout", 12, 0, 22], ["role_changed", 12, 1, 23]]);
fold(buf, row("election_timeout", "⏰ election timeout fired, starting election for term 5", 30, 2)); // another node's
assert.equal(buf.length, 3);
// Rows beyond the last LOOKBACK are not folded into; MAX bounds the rest.
const long = [];
for (let i = 0; i < MAX + LOOKBACK + 5; i++) fold(long, row("commit_advanced", `✅ COMMIT index ${i}→${i + 1}`, i, 1));
assert.equal(long.length, MAX);
fold(long, row("commit_advanced", `✅ COMMIT index ${MAX}→${MAX + 1}`, 10000, 1)); // too old to fold into
assert.equal(long[long.length - 1].count, 1);
console.log("ok");

// The key browser applies watch messages to its rows: puts, deletes, and
// batches (a transaction, a prefix delete); keys that are not UTF-8 come
// as key_base64 and show escaped.
{
  globalThis.atob ??= (s) => Buffer.from(s, "base64").toString("binary");
  const { applyEvent, keyOf, valueText } = await import("./js/browser.js");
  const rows = new Map([["app/a", { value: "1", revision: 3 }], ["app/b", { value: "2", revision: 4 }]]);
  assert.equal(applyEvent(rows, "put", { key: "app/c", value: btoa("3"), revision: 5 }), 5);
  assert.equal(applyEvent(rows, "delete", { key: "app/a", revision: 6 }), 6);
  assert.equal(applyEvent(rows, "batch", { revision: 7, changes: [
    { type: "put", key_base64: btoa("app/\xff"), value: "" }, { type: "delete", key: "app/b" }] }), 7);
  assert.deepEqual([...rows.entries()], [["app/c", { value: "3", revision: 5 }], ["app/\\xff", { value: "", revision: 7 }]]);
  assert.equal(keyOf({ key: "k" }), "k");
  assert.equal(valueText(btoa("\xff\x01")), "\\xff\\x01");
  assert.equal(valueText(btoa("héllo".replace("é", "\xc3\xa9"))), "héllo");
}

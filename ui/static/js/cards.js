// One card per node: role, term, indexes, the log tail, and on the leader
// each follower's replication progress.

import { clock, el, idNumber, nodes, termHue } from "./dom.js";
import { icon } from "./icons.js";

// Cards renders the cluster into container, reusing each node's element so
// the page does not flicker.
export class Cards {
  constructor(container) {
    this.container = container;
    this.cards = new Map(); // id -> element
  }

  render(cluster) {
    const leader = cluster.leader();
    for (const [id, card] of this.cards) {
      if (!cluster.nodes.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    for (const n of cluster.list()) {
      let card = this.cards.get(n.id);
      if (!card) {
        card = el("article", { class: "card", "data-node": n.id });
        this.cards.set(n.id, card);
      }
      this.container.append(card); // keeps id order
      fill(card, n, n === leader, n.url === cluster.origin.url);
    }
  }
}

// role is what data-role says: the node's own role, "down" when it does
// not answer, "unknown" before it ever answered.
function role(n) {
  if (n.down) return "down";
  return n.status ? n.status.role : "unknown";
}

function fill(card, n, isLeader, isOrigin) {
  const r = role(n);
  const s = n.status;
  card.dataset.role = r;
  card.dataset.leader = String(isLeader);
  card.replaceChildren(...nodes([
    el("div", { class: "card-head" },
      el("span", { class: "card-id" }, n.id),
      el("span", { class: "role" }, r),
      el("span", { class: n.live ? "live-dot live" : "live-dot", title: n.live ? "event stream open" : "no event stream" }),
      isOrigin && el("span", { class: "origin", title: "this page is served by this node" }, "this page"),
      isLeader && el("span", { class: "crown", title: "leader" }, icon("crown"), " leader")),
    el("div", { class: "stats" },
      stat("term", s && s.term),
      stat("commit", s && s.commit_index),
      stat("applied", s && s.applied_index),
      stat("last", s && s.last_index)),
    downNote(n),
    s && !n.down && changeNotes(s),
    s && !n.down && s.role !== "leader" && el("div", { class: "sub" }, `leader: ${s.leader || "none"}`),
    el("div", { class: "sub" }, logTitle(n.log)),
    logTail(n.log, s),
    isLeader && progress(s),
  ]));
}

// changeNotes says what is changing in the cluster as this node sees it: a
// configuration entry not committed yet (one at a time, thesis §4.1) and,
// on the leader, a leadership transfer in progress (§3.10).
function changeNotes(s) {
  return [
    s.pending_conf_index > 0 ? el("p", { class: "change-note", "data-pending": s.pending_conf_index },
      `configuration change pending at index ${s.pending_conf_index}`) : null,
    s.transferring_to ? el("p", { class: "change-note", "data-transfer": s.transferring_to },
      `transferring leadership to ${s.transferring_to}`) : null,
  ];
}

function stat(label, value) {
  return el("div", { class: "stat" }, el("span", {}, label), el("span", {}, value ?? "—"));
}

function downNote(n) {
  if (!n.url) return el("p", { class: "down-note" }, "no client address published yet");
  if (!n.down) return null;
  const seen = n.lastSeen ? `; last seen ${clock(n.lastSeen)}` : "";
  return el("p", { class: "down-note" }, `down: ${n.error}${seen}`);
}

function logTitle(log) {
  if (!log) return "log";
  return `log ${log.first_index}…${log.last_index} (last ${log.entries ? log.entries.length : 0})`;
}

// logTail draws one box per entry, coloured by term; entries not yet
// committed are hollow, no-ops dashed.
function logTail(log, status) {
  if (!log || !log.entries || log.entries.length === 0) return el("div", { class: "log-empty" }, "no entries");
  const commit = status ? status.commit_index : 0;
  return el("div", { class: "log" }, log.entries.map((e) => {
    const cls = ["entry"];
    if (e.type === "noop") cls.push("noop");
    if (e.index > commit) cls.push("uncommitted");
    return el("span", {
      class: cls.join(" "), "data-index": e.index, "data-term": e.term,
      style: { "--hue": termHue(e.term) },
      title: `index ${e.index} · term ${e.term} · ${e.type} · ${e.size} B${e.index > commit ? " · not committed" : ""}`,
    }, e.index, el("small", {}, `t${e.term}`));
  }));
}

// progress shows, for each follower, how much of the leader's log it
// holds (match / leader's last index) and its replication state.
function progress(status) {
  const peers = Object.entries(status.progress || {}).sort((a, b) => idNumber(a[0]) - idNumber(b[0]));
  if (peers.length === 0) return null;
  const last = status.last_index;
  return [
    el("div", { class: "sub" }, "followers (match / last index)"),
    el("div", { class: "progress" }, peers.map(([id, p]) => {
      const pct = last > 0 ? Math.min(100, (100 * p.match) / last) : 100;
      return [
        el("span", { "data-peer": id }, id),
        el("div", { class: `bar ${p.state}`, title: `next ${p.next}, ${last - p.match} behind` },
          el("span", { style: { width: `${pct}%` } })),
        el("span", {}, `${p.match}/${last} ${p.state}`),
      ];
    })),
  ];
}

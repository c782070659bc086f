// The dashboard's model of the cluster: which nodes exist, what each said
// last, whether it answers. It polls every node itself, so losing the node
// that served the page loses nothing but that node's card.

import { AuthError, baseURL, failure, getJSON } from "./api.js";
import { idNumber } from "./dom.js";

export const POLL_MS = 500;
export const LOG_TAIL = 20;

// NodeState is what the dashboard knows of one node.
class NodeState {
  constructor(id, url) {
    this.id = id;           // "n1"; null until the origin first answers
    this.url = url;         // origin of its client API, null if unknown
    this.status = null;     // last /v1/status body
    this.log = null;        // last /v1/log body
    this.down = false;      // the last poll failed
    this.error = "";        // why it failed
    this.lastSeen = 0;      // epoch ms of the last good status
    this.busy = false;      // a poll is in flight
    this.events = null;     // EventSource of its /v1/events
    this.live = false;      // the event stream is open
  }
}

export class Cluster {
  // origin is the node that served the page; onChange runs after every
  // poll, onEvent for every event from any node.
  constructor(origin, onChange, onEvent) {
    this.origin = new NodeState(null, origin);
    this.nodes = new Map(); // id -> NodeState
    this.onChange = onChange;
    this.onEvent = onEvent;
    this.needLogin = false; // a node answered 401: auth is on, log in
  }

  start() {
    this.tick();
    setInterval(() => this.tick(), POLL_MS);
  }

  tick() {
    if (this.origin.id === null) this.poll(this.origin);
    for (const n of this.nodes.values()) this.poll(n);
  }

  // list returns the nodes in id order.
  list() {
    return [...this.nodes.values()].sort((a, b) => idNumber(a.id) - idNumber(b.id));
  }

  // leader is the reachable node that says it leads, in the highest term.
  leader() {
    let best = null;
    for (const n of this.nodes.values()) {
      if (!n.down && n.status && n.status.role === "leader" && (!best || n.status.term > best.status.term)) best = n;
    }
    return best;
  }

  // quorum says whether the cluster can take writes as far as the page
  // sees: ok, or why not (no leader known, a majority unreachable).
  quorum() {
    const nodes = this.list();
    if (nodes.length === 0) return { ok: true, why: "" };
    const voters = nodes.filter((n) => !n.status || n.status.role !== "learner");
    const up = voters.filter((n) => !n.down && n.status).length;
    const majority = Math.floor(voters.length / 2) + 1;
    if (up < majority) return { ok: false, why: `${voters.length - up} of ${voters.length} voters unreachable` };
    if (!this.leader()) return { ok: false, why: "no leader known" };
    return { ok: true, why: "" };
  }

  // summary is the last known state of every node, for a quiet timeline:
  // {id, role, seen, text}.
  summary() {
    return this.list().map((n) => {
      const s = n.status;
      if (n.down || !s) {
        return { id: n.id, role: "down", seen: n.lastSeen, text: n.lastSeen ? `down: ${n.error}` : "not reached yet" };
      }
      const lead = s.role === "leader" ? "leads" : `leader ${s.leader || "unknown"}`;
      return { id: n.id, role: s.role, seen: n.lastSeen, text: `term ${s.term}, ${lead}, commit ${s.commit_index}, applied ${s.applied_index}` };
    });
  }

  // targets orders the reachable nodes for a client request: the page's
  // own node (no CORS preflight), then the leader, then the rest.
  targets() {
    const up = this.list().filter((n) => n.url && !n.down && n.status);
    const rank = (n) => (n.url === this.origin.url ? 0 : n === this.leader() ? 1 : 2);
    return up.sort((a, b) => rank(a) - rank(b));
  }

  // poll asks n for its status, then its log tail. Only the status says
  // whether n is up: a log tail that fails or times out (a loaded node)
  // keeps the last one shown rather than painting the node down.
  async poll(n) {
    if (n.busy || !n.url) return;
    n.busy = true;
    try {
      let status;
      try {
        status = await getJSON(`${n.url}/v1/status`);
      } catch (e) {
        if (e instanceof AuthError && e.status === 401) {
          this.needLogin = true; // the node is up; it wants a login
          n.error = e.message;
          return;
        }
        n.down = true;
        n.live = false;
        n.error = failure(e);
        return;
      }
      n.status = status;
      n.down = false;
      n.error = "";
      n.lastSeen = Date.now();
      this.learn(n, status);
      try {
        n.log = await getJSON(`${n.url}/v1/log?tail=${LOG_TAIL}`);
      } catch (_) { /* keep the last tail */ }
    } finally {
      n.busy = false;
      this.onChange();
    }
  }

  // learn records what a status says about membership: new members get a
  // card, and the leader's membership drops members that were removed.
  learn(n, status) {
    if (n === this.origin && this.origin.id === null) {
      this.origin.id = status.id;
      const known = this.nodes.get(status.id);
      if (known) known.url = this.origin.url;
      else this.nodes.set(status.id, this.origin);
    }
    for (const m of status.members || []) {
      const url = m.id === this.origin.id ? this.origin.url : baseURL(m.client_addr);
      const known = this.nodes.get(m.id);
      if (!known) this.nodes.set(m.id, new NodeState(m.id, url));
      else if (!known.url && url) known.url = url;
    }
    if (status.role === "leader" && status.members) {
      const ids = new Set(status.members.map((m) => m.id));
      for (const [id, node] of this.nodes) {
        if (!ids.has(id)) this.forget(node);
      }
    }
    this.subscribe(n);
  }

  forget(n) {
    if (n.events) n.events.close();
    n.events = null;
    this.nodes.delete(n.id);
  }

  // subscribe opens the node's event stream once it answers. EventSource
  // reconnects by itself while the node restarts; if it gives up (CLOSED)
  // the next good poll opens a new one.
  subscribe(n) {
    if (n.events || !this.nodes.has(n.id)) return;
    // withCredentials: the login cookie goes with it (to another node
    // too, where the browser holds one for that node).
    const es = new EventSource(`${n.url}/v1/events?events=all`, { withCredentials: true });
    n.events = es;
    es.onopen = () => { n.live = true; };
    es.onerror = () => {
      n.live = false;
      if (es.readyState === EventSource.CLOSED && n.events === es) n.events = null;
    };
    es.onmessage = (m) => {
      try {
        this.onEvent(JSON.parse(m.data));
      } catch (_) { /* a malformed event is skipped */ }
    };
  }
}

// The merged event timeline of every node. Each category keeps its own
// last MAX rows, so a burst of RPCs never pushes elections off the page;
// the filter picks which categories are shown, newest first. An event that
// repeats one of the last few rows of its category (same node, kind and
// text: a node stuck in PreVote times out every few hundred ms) is folded
// into that row, which moves to the top and counts "×N". When nothing is
// to show, the timeline shows the last known state of every node instead.

import { clock, el, eventMillis, throttled } from "./dom.js";
import { KIND_ICONS, icon, textWithoutSymbols, withArrows } from "./icons.js";

export const MAX = 200;
// LOOKBACK is how many of a category's newest rows an event may fold into.
export const LOOKBACK = 12;
const CATEGORIES = ["state", "rpc", "commit", "snapshot"];
// BAD_KINDS are shown in red: a refusal, a lost or abandoned leadership.
const BAD_KINDS = new Set(["step_down", "vote_rejected", "leadership_transfer_aborted"]);

// key says which events are the same, for folding.
export function eventKey(ev) {
  return `${ev.node}|${ev.kind}|${ev.text}`;
}

// fold adds row (an event and its time) to buf, a category's rows oldest
// first: into the matching row among the last LOOKBACK, which then moves to
// the end with count+1, else as a new row. It keeps buf within MAX rows.
export function fold(buf, row) {
  const key = eventKey(row.ev);
  for (let i = buf.length - 1; i >= Math.max(0, buf.length - LOOKBACK); i--) {
    if (eventKey(buf[i].ev) === key) {
      const [same] = buf.splice(i, 1);
      row.count = same.count + 1;
      row.first = same.first;
      break;
    }
  }
  buf.push(row);
  if (buf.length > MAX) buf.splice(0, buf.length - MAX);
}

export class Timeline {
  // quiet returns the rows of the last known state (see Cluster.summary),
  // shown while there is no event.
  constructor(list, checkboxes, quiet = () => []) {
    this.list = list;
    this.checkboxes = checkboxes;
    this.quiet = quiet;
    this.buffers = Object.fromEntries(CATEGORIES.map((c) => [c, []]));
    this.seq = 0;
    this.render = throttled(() => this.draw());
    for (const cb of checkboxes) cb.addEventListener("change", this.render);
    this.render();
  }

  // add records one JSONEvent from a node's /v1/events stream.
  add(ev) {
    const buf = this.buffers[ev.category];
    if (!buf) return;
    const at = eventMillis(ev.time);
    fold(buf, { ev, at, first: at, count: 1, seq: this.seq++ });
    this.render();
  }

  shown() {
    const on = this.checkboxes.filter((cb) => cb.checked).map((cb) => cb.value);
    return on.flatMap((c) => this.buffers[c] || [])
      .sort((a, b) => b.at - a.at || b.seq - a.seq)
      .slice(0, MAX);
  }

  draw() {
    const rows = this.shown();
    if (rows.length === 0) {
      const state = this.quiet();
      if (state.length === 0) {
        this.list.replaceChildren(el("li", { class: "empty" }, "waiting for the nodes"));
        return;
      }
      this.list.replaceChildren(el("li", { class: "empty" }, "no events since the page opened; the last known state:"),
        ...state.map((s) => el("li", { class: "state", "data-kind": "state", "data-from": s.id, "data-from-role": s.role },
          el("span", { class: "t" }, s.seen ? clock(s.seen) : "—"),
          el("span", { class: "n" }, s.id),
          el("span", { class: "r" }, s.role),
          el("span", { class: "x" }, icon(s.role === "leader" ? "crown" : s.role === "down" ? "warning" : "dot"), s.text))));
      return;
    }
    this.list.replaceChildren(...rows.map(({ ev, at, first, count }) => el("li", {
      class: ev.reject || BAD_KINDS.has(ev.kind) ? "bad" : null,
      "data-kind": ev.kind, "data-category": ev.category, "data-from": `n${ev.node}`, "data-from-role": ev.role,
      "data-count": count,
      title: count > 1 ? `${count} times, first at ${clock(first)}` : null,
    },
    el("span", { class: "t" }, clock(at)),
    el("span", { class: "n" }, `n${ev.node}`),
    el("span", { class: "r" }, ev.role),
    el("span", { class: "x" }, icon(KIND_ICONS[ev.kind] || "dot"), withArrows(textWithoutSymbols(ev.text || ev.kind)),
      count > 1 && el("span", { class: "count" }, ` ×${count}`)))));
  }
}

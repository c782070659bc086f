// The merged event timeline of every node. Each category keeps its own
// last MAX events, so a burst of RPCs never pushes elections off the page;
// the filter picks which categories are shown, newest first.

import { clock, el, eventMillis, throttled } from "./dom.js";

export const MAX = 200;
const CATEGORIES = ["state", "rpc", "commit", "snapshot"];

export class Timeline {
  constructor(list, checkboxes) {
    this.list = list;
    this.checkboxes = checkboxes;
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
    buf.push({ ev, at: eventMillis(ev.time), seq: this.seq++ });
    if (buf.length > MAX) buf.splice(0, buf.length - MAX);
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
      this.list.replaceChildren(el("li", { class: "empty" }, "no events yet"));
      return;
    }
    this.list.replaceChildren(...rows.map(({ ev, at }) => el("li", {
      class: ev.reject || ev.kind === "step_down" || ev.kind === "vote_rejected" ? "bad" : null,
      "data-kind": ev.kind, "data-category": ev.category, "data-from": `n${ev.node}`, "data-from-role": ev.role,
    },
    el("span", { class: "t" }, clock(at)),
    el("span", { class: "n" }, `n${ev.node}`),
    el("span", { class: "r" }, ev.role),
    el("span", { class: "x" }, ev.text || ev.kind))));
  }
}

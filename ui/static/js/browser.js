// The key browser: the keys under a prefix, listed (GET /v1/kv?prefix=)
// and then kept live by a watch (GET /v1/watch, an EventSource, which
// reconnects by itself with Last-Event-ID). When the node no longer has
// the changes the watch needs (410, or a final "compacted" event) it lists
// again and watches on from the listing's revision.

import { getJSON } from "./api.js";
import { el } from "./dom.js";

// keyOf reads a key from JSON: "key", or "key_base64" for one that is not
// UTF-8 (shown with its bytes escaped).
export function keyOf(o) {
  if (o.key !== undefined) return o.key;
  return escapeBytes(fromBase64(o.key_base64 || ""));
}

function fromBase64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function escapeBytes(bytes) {
  return Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
}

// valueText decodes a base64 value: text when it is UTF-8, escaped bytes
// otherwise.
export function valueText(b64) {
  const bytes = fromBase64(b64 || "");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (_) {
    return escapeBytes(bytes);
  }
}

// applyEvent applies one watch message (its event name and parsed data)
// to rows, a Map of key → {value, revision}; it returns the revision.
export function applyEvent(rows, name, data) {
  const changes = name === "batch" ? data.changes : [{ ...data, type: name }];
  for (const c of changes) {
    const key = keyOf(c);
    if (c.type === "delete") rows.delete(key);
    else rows.set(key, { value: valueText(c.value), revision: data.revision });
  }
  return data.revision;
}

export class Browser {
  constructor(origin, panel) {
    this.origin = origin;
    this.table = panel.querySelector("#browse-rows");
    this.status = panel.querySelector("#browse-status");
    this.rows = new Map();
    this.source = null;
    this.prefix = "";
    this.revision = 0;
    panel.querySelector("#browse-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.open(panel.querySelector("#browse-prefix").value);
    });
  }

  // open lists prefix and watches it from after the listing.
  async open(prefix) {
    this.close();
    this.prefix = prefix;
    this.say("listing…");
    const rows = new Map();
    let after = null;
    let revision = 0;
    try {
      for (;;) {
        const q = new URLSearchParams({ prefix, limit: "1000" });
        if (after !== null) q.set("start_after", after);
        const page = await getJSON(`${this.origin}/v1/kv?${q}`, 5000);
        if (!revision) revision = page.revision;
        for (const kv of page.kvs) rows.set(keyOf(kv), { value: valueText(kv.value), revision: kv.revision });
        if (!page.more || page.kvs.length === 0) break;
        after = page.kvs[page.kvs.length - 1].key;
        if (after === undefined) break; // a key that is not UTF-8 ends the paging here
      }
    } catch (e) {
      this.say(`error: ${e.message}`);
      return;
    }
    if (prefix !== this.prefix) return; // another prefix was opened meanwhile
    this.rows = rows;
    this.revision = revision;
    this.render();
    this.watch();
  }

  watch() {
    const q = new URLSearchParams({ prefix: this.prefix, from_revision: String(this.revision + 1) });
    const src = new EventSource(`${this.origin}/v1/watch?${q}`, { withCredentials: true });
    this.source = src;
    const on = (name) => src.addEventListener(name, (ev) => {
      this.revision = applyEvent(this.rows, name, JSON.parse(ev.data));
      this.render();
    });
    on("put");
    on("delete");
    on("batch");
    src.addEventListener("compacted", () => this.relist());
    src.addEventListener("open", () => this.say(`live at revision ${this.revision}`));
    src.addEventListener("error", () => {
      // A closed source was refused (410 compacted, 403, ...): list again
      // in a while. Otherwise EventSource is reconnecting by itself.
      if (src.readyState === EventSource.CLOSED) this.relist(1000);
      else this.say(`reconnecting after revision ${this.revision}…`);
    });
  }

  relist(delay = 0) {
    const prefix = this.prefix;
    this.close();
    this.prefix = prefix;
    this.say("the watch lost its place; listing again…");
    setTimeout(() => { if (this.prefix === prefix && !this.source) this.open(prefix); }, delay);
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
  }

  say(text) {
    this.status.textContent = text;
    this.status.dataset.revision = String(this.revision);
  }

  render() {
    const keys = [...this.rows.keys()].sort();
    this.table.replaceChildren(...keys.map((k) => {
      const r = this.rows.get(k);
      return el("tr", { "data-key": k }, el("td", {}, k), el("td", {}, r.value), el("td", { class: "rev" }, r.revision));
    }));
    this.say(`${keys.length} keys, live at revision ${this.revision}`);
  }
}

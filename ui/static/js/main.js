// Dashboard entry point: wires the cluster model to the cards, the event
// timeline and the key-value form.

import { Cards } from "./cards.js";
import { Cluster } from "./cluster.js";
import { throttled } from "./dom.js";
import { setupKV } from "./kv.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

const timeline = new Timeline($("timeline"), [...document.querySelectorAll('input[name="category"]')]);
const cards = new Cards($("nodes"));

const cluster = new Cluster(location.origin, throttled(render), (ev) => timeline.add(ev));

function render() {
  cards.render(cluster);
  const leader = cluster.leader();
  const nodes = cluster.list();
  const up = nodes.filter((n) => !n.down && n.status).length;
  const terms = nodes.filter((n) => n.status).map((n) => n.status.term);
  $("cluster-leader").textContent = leader ? leader.id : "none";
  $("cluster-term").textContent = terms.length ? Math.max(...terms) : "—";
  $("cluster-up").textContent = nodes.length ? `${up}/${nodes.length}` : "—";
  const banner = $("banner");
  const origin = cluster.origin;
  let msg = "";
  if (nodes.length === 0 && origin.down) msg = `cannot reach ${origin.url} (${origin.error}); retrying`;
  else if (nodes.length > 0 && up === 0) msg = "no node is reachable; retrying";
  banner.hidden = msg === "";
  banner.textContent = msg;
}

setupKV(cluster);
cluster.start();

// Dashboard entry point: wires the cluster model to the cards, the event
// timeline, the key-value form and the key browser.

import { Browser } from "./browser.js";
import { Cards } from "./cards.js";
import { Cluster } from "./cluster.js";
import { throttled } from "./dom.js";
import { icon } from "./icons.js";
import { setupKV } from "./kv.js";
import { setupLogin, showLogin } from "./login.js";
import { Timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);

let cluster = null;
const timeline = new Timeline($("timeline"), [...document.querySelectorAll('input[name="category"]')],
  () => (cluster ? cluster.summary() : []));
const cards = new Cards($("nodes"));

cluster = new Cluster(location.origin, throttled(render), (ev) => timeline.add(ev));

function render() {
  showLogin(cluster);
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
  const quorum = cluster.quorum();
  let msg = "";
  let kind = "";
  if (nodes.length === 0 && origin.down) {
    msg = `cannot reach ${origin.url} (${origin.error}); retrying`;
    kind = "unreachable";
  } else if (nodes.length > 0 && up === 0) {
    msg = "no quorum — writes unavailable: no node is reachable; retrying";
    kind = "no-quorum";
  } else if (!quorum.ok) {
    msg = `no quorum — writes unavailable: ${quorum.why}`;
    kind = "no-quorum";
  }
  banner.hidden = msg === "";
  banner.dataset.kind = kind;
  banner.replaceChildren(...(msg ? [icon("warning"), ` ${msg}`] : []));
  timeline.render(); // a quiet timeline shows the state just polled
}

setupKV(cluster);
new Browser(location.origin, $("kv-panel"));
setupLogin(cluster, render);
cluster.start();

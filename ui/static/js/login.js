// The login form, shown once a node answers 401 (auth is enabled): it
// logs in at every node the page knows, so each sets its cookie for its
// event stream, and keeps one token for the other requests.

import { login, setToken } from "./api.js";

export function setupLogin(cluster, render) {
  const $ = (id) => document.getElementById(id);
  const form = $("login-form");
  const msg = $("login-result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("login-user").value;
    const password = $("login-password").value;
    msg.textContent = "…";
    const urls = new Set([cluster.origin.url, ...cluster.list().map((n) => n.url).filter(Boolean)]);
    let token = "";
    let last = "";
    for (const url of urls) {
      try {
        token = (await login(url, name, password)) || token;
      } catch (e) {
        last = e.message;
      }
    }
    if (!token) {
      msg.textContent = `login failed: ${last}`;
      return;
    }
    setToken(token);
    cluster.needLogin = false;
    cluster.user = name;
    $("login-password").value = "";
    msg.textContent = "";
    for (const n of cluster.nodes.values()) {
      if (n.events) n.events.close();
      n.events = null; // reopened, with the cookie, by the next poll
    }
    render();
  });
}

// showLogin shows the form while the cluster wants a login, and who is
// logged in otherwise.
export function showLogin(cluster) {
  const $ = (id) => document.getElementById(id);
  $("login-panel").hidden = !cluster.needLogin;
  $("login-user-shown").textContent = cluster.user ? `logged in as ${cluster.user}` : "";
}

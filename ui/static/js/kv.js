// The put/get form. Requests go to the first reachable node (the page's own
// node first); a node that cannot be reached is skipped for the next one,
// an answer (even an error) is shown as it is.

import { AuthError, NetworkError, getKey, putKey } from "./api.js";

export function setupKV(cluster) {
  const $ = (id) => document.getElementById(id);
  const result = $("result");
  const detail = $("result-detail");

  // show sets #result: its text is exactly the value read, "revision N",
  // "not found" or "error: ..."; data-kind says which.
  const show = (kind, text, more = "", revision = "") => {
    result.dataset.kind = kind;
    result.dataset.revision = revision ?? "";
    result.textContent = text;
    detail.textContent = more;
  };

  // through runs op against each reachable node until one answers.
  const through = async (op) => {
    const targets = cluster.targets();
    // Before any status was read (say, before logging in), the page's
    // own node answers for itself.
    if (targets.length === 0 && cluster.origin.url) targets.push(cluster.origin);
    if (targets.length === 0) throw new Error("no node is reachable");
    let last;
    for (const n of targets) {
      try {
        return { node: n, value: await op(n.url) };
      } catch (e) {
        if (!(e instanceof NetworkError)) throw e;
        last = e;
      }
    }
    throw new Error(`no node answered (${last.message})`);
  };

  $("put-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("put-key").value;
    const value = $("put-value").value;
    show("pending", "…", `put ${key}`);
    try {
      const { node, value: rev } = await through((url) => putKey(url, key, value));
      show("revision", `revision ${rev}`, `put ${JSON.stringify(key)} via ${node.id}`, rev);
    } catch (e) {
      if (e instanceof AuthError && e.status === 401) cluster.needLogin = true;
      show("error", `error: ${e.message}`, `put ${JSON.stringify(key)}`);
    }
  });

  $("get-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = $("get-key").value;
    show("pending", "…", `get ${key}`);
    try {
      const { node, value: r } = await through((url) => getKey(url, key));
      if (r.found) show("value", r.value, `${JSON.stringify(key)} at revision ${r.revision ?? "?"} via ${node.id}`, r.revision);
      else show("notfound", "not found", `${JSON.stringify(key)} via ${node.id}`);
    } catch (e) {
      if (e instanceof AuthError && e.status === 401) cluster.needLogin = true;
      show("error", `error: ${e.message}`, `get ${JSON.stringify(key)}`);
    }
  });
}

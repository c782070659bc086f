// Small DOM and formatting helpers shared by the dashboard modules.

// el builds an element: el("span", {class: "role", "data-role": "leader"}, "LEADER").
// Children may be nodes, strings, numbers or (nested) arrays of them; null
// and false are skipped. style takes CSS property names ("--hue", "width").
// Text always goes in as text, never as HTML.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "style") for (const [p, pv] of Object.entries(v)) e.style.setProperty(p, String(pv));
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...nodes(children));
  return e;
}

// nodes flattens children as el takes them into a list for append or
// replaceChildren.
export function nodes(children) {
  return children.flat(Infinity)
    .filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c)));
}

// termHue spreads terms around the colour wheel by the golden angle, so
// neighbouring terms never look alike.
export function termHue(term) {
  return Math.round((term * 137.508) % 360);
}

// idNumber orders "n2" before "n10".
export function idNumber(id) {
  const m = /(\d+)$/.exec(id || "");
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

// eventMillis parses an RFC 3339 time with up to nanoseconds (browsers
// disagree past milliseconds, so the fraction is cut to three digits).
export function eventMillis(iso) {
  const t = Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  return Number.isNaN(t) ? Date.now() : t;
}

// clock renders epoch milliseconds as local HH:MM:SS.mmm.
export function clock(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// throttled returns a function that runs fn at most once per animation
// frame. Where no frame comes (a hidden tab, a busy headless browser) a
// timer runs it instead, so a lost frame never freezes the page.
export function throttled(fn) {
  let queued = false;
  let timer = 0;
  const run = () => {
    if (!queued) return;
    queued = false;
    clearTimeout(timer);
    fn();
  };
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(run);
    timer = setTimeout(run, 250);
  };
}

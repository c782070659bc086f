// The dashboard's icons, drawn as inline SVG so that no marker depends on
// the fonts of the machine showing the page (an emoji font is often
// missing: ⏰ then renders as an empty box). The event texts of the stream
// start with such a symbol; the timeline shows the kind's icon instead
// (textWithoutSymbols) and draws the arrows inside a text as icons too.

const NS = "http://www.w3.org/2000/svg";

// Each icon is SVG path data on a 16×16 grid, stroked with currentColor.
const PATHS = {
  clock: "M8 2.5a5.5 5.5 0 1 0 0 11a5.5 5.5 0 1 0 0-11M8 5v3l2 1.5",
  ballot: "M3 7h10v6H3zM5.5 9.5h5M6 3.5l2 2l3-3",
  cross: "M4 4l8 8M12 4l-8 8",
  crown: "M2.5 12.5h11M3 11l-1-6l3.5 3L8 3.5L10.5 8L14 5l-1 6z",
  compass: "M8 2.5a5.5 5.5 0 1 0 0 11a5.5 5.5 0 1 0 0-11M10.5 5.5L9 9l-3.5 1.5L7 7z",
  check: "M3 8.5l3 3l7-7",
  inbox: "M2.5 9.5l2-6h7l2 6v3.5h-11zM2.5 9.5h3l1 1.5h3l1-1.5h3M8 4v4M6.5 6.5L8 8l1.5-1.5",
  camera: "M2.5 5.5h3l1-1.5h3l1 1.5h3v7h-11zM8 7a2 2 0 1 0 0 4a2 2 0 1 0 0-4",
  box: "M2.5 5L8 2.5L13.5 5v6.5L8 14l-5.5-2.5zM2.5 5L8 7.5L13.5 5M8 7.5V14",
  down: "M8 2.5v10M4 8.5l4 4l4-4",
  shuffle: "M2.5 5h3l5 6h3M2.5 11h3l5-6h3M12 3.5l1.5 1.5L12 6.5M12 9.5l1.5 1.5L12 12.5",
  stop: "M4 4h8v8H4z",
  heart: "M8 13S2.5 9.5 2.5 6a2.7 2.7 0 0 1 5.5-1a2.7 2.7 0 0 1 5.5 1C13.5 9.5 8 13 8 13z",
  right: "M2.5 8h10M9 4.5L12.5 8L9 11.5",
  left: "M13.5 8h-10M7 4.5L3.5 8L7 11.5",
  dot: "M8 6.5a1.5 1.5 0 1 0 0 3a1.5 1.5 0 1 0 0-3",
  warning: "M8 2.5L14 13H2zM8 6.5v3M8 11v.5",
  gear: "M8 5.5a2.5 2.5 0 1 0 0 5a2.5 2.5 0 1 0 0-5M8 1.5v2M8 12.5v2M1.5 8h2M12.5 8h2M3.4 3.4l1.4 1.4M11.2 11.2l1.4 1.4M3.4 12.6l1.4-1.4M11.2 4.8l1.4-1.4",
};

// KIND_ICONS names the icon of each event kind.
export const KIND_ICONS = {
  node_started: "dot", node_stopped: "stop", role_changed: "dot", term_changed: "dot",
  election_timeout: "clock", vote_granted: "ballot", vote_rejected: "cross", election_won: "crown",
  leader_changed: "compass", message_sent: "right", message_received: "left", commit_advanced: "check",
  applied: "inbox", snapshot_taken: "camera", snapshot_sent: "box", snapshot_restored: "box",
  snapshot_installed: "box", step_down: "down", leadership_transfer: "shuffle",
  leadership_transfer_aborted: "warning", member_added: "gear", member_promoted: "gear",
  member_removed: "gear", conf_changed: "gear",
};

// icon returns the named icon as an <svg> element (class "icon",
// data-icon its name).
export function icon(name, title = "") {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", "icon");
  svg.setAttribute("data-icon", name);
  svg.setAttribute("aria-hidden", title ? "false" : "true");
  if (title) {
    const t = document.createElementNS(NS, "title");
    t.textContent = title;
    svg.append(t);
  }
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", PATHS[name] || PATHS.dot);
  svg.append(path);
  return svg;
}

// textWithoutSymbols drops the leading symbol of an event text ("⏰ ",
// "→ ", "♥ ", "✗ "): everything before its first letter, digit or "(".
export function textWithoutSymbols(text) {
  return String(text).replace(/^[^\p{L}\p{N}(]+/u, "");
}

// withArrows splits text at each "→" and "←", putting an arrow icon in
// place of each: a list for el's children.
export function withArrows(text) {
  const parts = [];
  for (const piece of String(text).split(/([→←])/u)) {
    if (piece === "→") parts.push(icon("right"));
    else if (piece === "←") parts.push(icon("left"));
    else if (piece !== "") parts.push(piece);
  }
  return parts;
}

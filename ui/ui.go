// Package ui holds the raftex dashboard: plain HTML, CSS and JavaScript
// modules (no build step, nothing fetched from the network) that show the
// whole cluster live from any node's client address.
//
// The page reads GET /v1/status, /v1/log and /v1/events (Server-Sent
// Events, see package inspect) from the node that served it, discovers the
// other members from its status and polls them directly (they allow
// their members' origins, CORS), writes and reads keys with PUT and
// GET /v1/kv/{key}, and browses the keys under a prefix live (GET
// /v1/kv?prefix=, then GET /v1/watch: browser.js). With auth enabled it
// asks for a login (login.js).
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// Static holds the dashboard's files under static/: index.html, style.css,
// favicon.svg and js/*.js.
//
//go:embed static
var Static embed.FS

// contentTypes pins the types of the files we ship, whatever the host's
// mime tables say (browsers refuse JavaScript modules of another type).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler serves the dashboard at its root ("/" is index.html). To mount it
// elsewhere strip the prefix: mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler())).
// Files are served with Cache-Control: no-cache so a new binary's page is
// picked up at once.
func Handler() http.Handler {
	root, err := fs.Sub(Static, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct, ok := contentTypes[path.Ext(r.URL.Path)]; ok {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

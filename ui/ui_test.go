package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
)

// TestServesFiles: every file the page needs is embedded and served with
// the content type browsers require.
func TestServesFiles(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="js/main.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>raftex dashboard</title>"},
		{"/style.css", "text/css; charset=utf-8", "--leader"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
		{"/js/main.js", "text/javascript; charset=utf-8", "cluster.start()"},
		{"/js/api.js", "text/javascript; charset=utf-8", "/v1/kv/"},
		{"/js/cards.js", "text/javascript; charset=utf-8", "data-node"},
		{"/js/cluster.js", "text/javascript; charset=utf-8", "/v1/status"},
		{"/js/dom.js", "text/javascript; charset=utf-8", "export function el"},
		{"/js/kv.js", "text/javascript; charset=utf-8", "put-form"},
		{"/js/login.js", "text/javascript; charset=utf-8", "login-form"},
		{"/js/timeline.js", "text/javascript; charset=utf-8", "export class Timeline"},
		{"/js/icons.js", "text/javascript; charset=utf-8", "export function icon"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", tc.path, resp.Status)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s does not contain %q", tc.path, tc.contains)
		}
	}
	resp, err := http.Get(srv.URL + "/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope.js: %s, want 404", resp.Status)
	}
}

// TestMountedUnderPrefix: the page uses relative links, so it works under
// any prefix.
func TestMountedUnderPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, p := range []string{"/ui/", "/ui/js/main.js", "/ui/style.css"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
}

// TestStableIDs: the elements the browser test drives exist.
func TestStableIDs(t *testing.T) {
	html, err := fs.ReadFile(Static, "static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"nodes", "timeline", "put-key", "put-value", "put-submit", "get-key", "get-submit", "result",
		"cluster-leader", "filter-state", "filter-rpc", "filter-commit", "filter-snapshot",
		"login-panel", "login-user", "login-password", "login-submit",
		"browse-prefix", "browse-submit", "browse-status", "browse-rows"} {
		if !strings.Contains(string(html), `id="`+id+`"`) {
			t.Errorf("index.html lacks #%s", id)
		}
	}
}

// TestNoNetworkAtRuntime: nothing is loaded from another host.
func TestNoNetworkAtRuntime(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["'](https?:)?//|@import\s+url\(["']?https?:|from\s+["']https?:`)
	err := fs.WalkDir(Static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static, p)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from the network: %s", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nodeModules returns node's path and a directory holding the embedded
// files, marked as ES modules for node whatever its version; it skips the
// test when node is not installed.
func nodeModules(t *testing.T) (nodeBin, dir string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH; cannot check the dashboard's JavaScript")
	}
	dir = t.TempDir()
	root, err := fs.Sub(Static, "static")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return nodeBin, dir
}

// TestJavaScriptParses runs node --check on every module.
func TestJavaScriptParses(t *testing.T) {
	nodeBin, dir := nodeModules(t)
	files, err := filepath.Glob(filepath.Join(dir, "js", "*.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no modules found (%v)", err)
	}
	for _, f := range files {
		if out, err := exec.Command(nodeBin, "--check", f).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(f), err, out)
		}
	}
}

// TestImportsResolve: every relative import of a module names an embedded
// file, so a rename cannot break the page silently.
func TestImportsResolve(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^import .* from "(\./[^"]+)";`)
	entries, err := fs.ReadDir(Static, "static/js")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(Static, "static/js/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imp.FindAllSubmatch(b, -1) {
			if _, err := fs.Stat(Static, path.Join("static/js", string(m[1]))); err != nil {
				t.Errorf("%s imports %s: %v", e.Name(), m[1], err)
			}
		}
	}
}

// TestJavaScriptHelpers runs testdata/helpers.test.mjs under node against the
// embedded modules.
func TestJavaScriptHelpers(t *testing.T) {
	nodeBin, dir := nodeModules(t)
	script, err := os.ReadFile(filepath.Join("testdata", "helpers.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "helpers.test.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodeBin, "helpers.test.mjs")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestEveryEventKindHasAnIcon: the timeline draws each kind of event the
// core and the runtime emit with an icon of its own (KIND_ICONS), not the
// fallback dot for a kind added later.
func TestEveryEventKindHasAnIcon(t *testing.T) {
	b, err := fs.ReadFile(Static, "static/js/icons.js")
	if err != nil {
		t.Fatal(err)
	}
	for k := raft.EventKind(1); !strings.HasPrefix(k.String(), "event("); k++ {
		if !regexp.MustCompile(`\b` + k.String() + `: "`).Match(b) {
			t.Errorf("KIND_ICONS has no icon for %s", k)
		}
	}
}

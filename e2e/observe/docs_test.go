package observe

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
)

// observabilityDoc is docs/observability.md, which must list every event
// kind, every metric and the dashboard.
var observabilityDoc = filepath.Join("..", "..", "docs", "observability.md")

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(observabilityDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsListEveryEventKind: each kind the core reports has its row in
// the console table and its place in the category table.
func TestDocsListEveryEventKind(t *testing.T) {
	doc := readDoc(t)
	kinds := 0
	for k := raft.EventKind(1); !strings.HasPrefix(k.String(), "event("); k++ {
		kinds++
		if !regexp.MustCompile(`(?m)^\| ` + k.String() + ` \|`).MatchString(doc) {
			t.Errorf("%s: %s has no row of its own in the console table", observabilityDoc, k)
		}
		if !regexp.MustCompile(`(?m)^\| ` + "`" + `\w+` + "`" + ` \|.*\b` + k.String() + `\b`).MatchString(doc) {
			t.Errorf("%s: %s in no category", observabilityDoc, k)
		}
	}
	if kinds < 19 {
		t.Errorf("found only %d event kinds", kinds)
	}
}

// TestDocsShowTheDashboard: the screenshot the page links exists.
func TestDocsShowTheDashboard(t *testing.T) {
	doc := readDoc(t)
	m := regexp.MustCompile(`!\[[^\]]*\]\(([^)]+\.png)\)`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("%s shows no screenshot of the dashboard", observabilityDoc)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(observabilityDoc), m[1]))
	if err != nil {
		t.Fatalf("%s links %s: %v", observabilityDoc, m[1], err)
	}
	if !strings.HasPrefix(string(b), "\x89PNG\r\n\x1a\n") {
		t.Errorf("%s is not a PNG", m[1])
	}
}

// checkMetricsDocumented fails the test for every raftex_* metric the
// scrapes hold that docs/observability.md does not list.
func checkMetricsDocumented(t *testing.T, scrapes ...metrics) {
	t.Helper()
	doc := readDoc(t)
	seen := map[string]bool{}
	for _, m := range scrapes {
		for name := range m {
			if strings.HasPrefix(name, "raftex_") {
				seen[name] = true
			}
		}
	}
	var missing []string
	for name := range seen {
		if !strings.Contains(doc, "| `"+name+"` |") {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s does not list the metric %s", observabilityDoc, name)
	}
	if len(seen) < 20 {
		t.Errorf("only %d raftex_* metrics scraped", len(seen))
	}
}

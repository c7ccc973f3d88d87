// Package grafana holds meshgate's Grafana dashboards (mesh overview and gateway overview) and the
// test that keeps them loadable and in step with the metrics meshgate exports.
package grafana

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricNameInSource matches a collector's name in meshgate's source: Name: "meshgate_...".
var metricNameInSource = regexp.MustCompile(`Name:\s*"(meshgate_[a-z0-9_]+)"`)

// metricInExpr matches a meshgate metric name in a PromQL expression.
var metricInExpr = regexp.MustCompile(`\bmeshgate_[a-zA-Z0-9_]+`)

// exportedMetrics returns the names of the metrics meshgate's registries define, read from the
// Name fields of its collectors under internal/ (tests excluded).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	root := filepath.Join("..", "..", "internal")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricNameInSource.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["meshgate_http_requests_total"] || !names["meshgate_control_workloads"] {
		t.Fatalf("found only %d metric names under %s: the source layout changed?", len(names), root)
	}
	return names
}

// known reports whether name is an exported metric or one of a histogram's series.
func known(names map[string]bool, name string) bool {
	if names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// dashboard is the part of Grafana's dashboard model the test checks.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// TestDashboards loads every dashboard JSON here and checks Grafana's required fields, one
// query per target, and that each meshgate metric its PromQL uses is one meshgate exports.
func TestDashboards(t *testing.T) {
	names := exportedMetrics(t)
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gateway-overview.json", "mesh-overview.json"}
	if strings.Join(files, ",") != strings.Join(want, ",") {
		t.Fatalf("dashboards %v, want %v", files, want)
	}
	uids := map[string]string{}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var d dashboard
			dec := json.NewDecoder(strings.NewReader(string(data)))
			if err := dec.Decode(&d); err != nil {
				t.Fatalf("not valid JSON: %v", err)
			}
			if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) == 0 {
				t.Fatalf("title %q, uid %q, schemaVersion %d, %d panels: want all set", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
			}
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %q is also %s's", d.UID, other)
			}
			uids[d.UID] = file
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if p.Title == "" || p.Type == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || ids[p.ID] {
					t.Errorf("panel %d %q: want a unique id, a title, a type and a grid position", p.ID, p.Title)
				}
				ids[p.ID] = true
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no targets", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("panel %q: a target without refId or expr", p.Title)
					}
					if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
						t.Errorf("panel %q: unbalanced parentheses in %s", p.Title, tg.Expr)
					}
					used := metricInExpr.FindAllString(tg.Expr, -1)
					if len(used) == 0 {
						t.Errorf("panel %q: %s uses no meshgate metric", p.Title, tg.Expr)
					}
					for _, m := range used {
						if !known(names, m) {
							t.Errorf("panel %q: %s is not a metric meshgate exports (in %s)", p.Title, m, tg.Expr)
						}
					}
				}
			}
		})
	}
}

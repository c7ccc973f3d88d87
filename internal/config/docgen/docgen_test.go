package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// generateHere returns the reference generated from the config package's type files.
func generateHere(t *testing.T) ([]byte, error) {
	t.Helper()
	files, err := typeFiles("..")
	if err != nil {
		return nil, err
	}
	return generate(files...)
}

// TestConfigDocUpToDate fails when docs/config.md no longer matches types.go.
func TestConfigDocUpToDate(t *testing.T) {
	want, err := generateHere(t)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("%v; run `go run ./internal/config/docgen` from the module root", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/config.md is stale: run `go run ./internal/config/docgen` from the module root")
	}
}

func TestGenerateCoversEveryKey(t *testing.T) {
	md, err := generateHere(t)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(md)
	for _, want := range []string{
		"## Config\n",
		"## TCPHealthCheck\n",
		"| `maxBodyBytes` | integer |",
		"| `timeout` | duration |",
		"| `listeners` | list of [Listener](#listener) |",
		"| `set` | map of string to string |",
		"| `healthCheck` | [HealthCheck](#healthcheck) | `healthCheck`, when set,",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
	if strings.Contains(doc, "## Source") {
		t.Error("the reference documents Source, which is not part of the file")
	}
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runMeshgate runs the meshgate binary with args in dir to completion (bounded) and returns its
// exit code, stdout and stderr.
func runMeshgate(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, meshgateBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("meshgate %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		return 0, "", ""
	}
}

// TestValidateExamples runs `meshgate validate` on every example config: each must pass with a
// summary line.
func TestValidateExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(moduleRoot, "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples/*.yaml found")
	}
	for _, f := range files {
		rel, err := filepath.Rel(moduleRoot, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runMeshgate(t, moduleRoot, "validate", rel)
			if code != 0 {
				t.Fatalf("meshgate validate %s: exit %d\n%s%s", rel, code, stdout, stderr)
			}
			summary := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(rel) + `: ok \(version 1: \d+ listeners?, \d+ routes?, \d+ services?\)$`)
			if !summary.MatchString(stdout) {
				t.Fatalf("meshgate validate %s: no summary line in stdout %q", rel, stdout)
			}
		})
	}
}

// TestValidateErrors runs `meshgate validate` on broken configs: it must exit 1 and print every
// error as FILE:LINE with the route it is in.
func TestValidateErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		desc string
		yaml string
		// want are prefixes of error lines ("FILE:" is prepended) and a word each must contain.
		want [][2]string
	}{
		{
			desc: "unknown fields",
			yaml: `version: 1
listeners:
  - name: public
    address: 127.0.0.1:18080
routes:
  - name: users-api
    match:
      - path: {prefix: /users}
    timout: 5s
    backends:
      - service: users
  - name: web
    backendz:
      - service: users
services:
  - name: users
    endpoints:
      - address: 127.0.0.1:18081
`,
			want: [][2]string{
				{`9: route "users-api": `, `"timout"`},
				{`13: route "web": `, `"backendz"`},
			},
		},
		{
			desc: "routes to undefined services",
			yaml: `version: 1
listeners:
  - name: public
    address: 127.0.0.1:18080
routes:
  - name: users-api
    backends:
      - service: users
  - name: orders-api
    match:
      - path: {prefix: /orders}
    backends:
      - service: orders
services:
  - name: web
    endpoints:
      - address: 127.0.0.1:18081
`,
			want: [][2]string{
				{`8: route "users-api": `, `"users"`},
				{`13: route "orders-api": `, `"orders"`},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := "broken.yaml"
			if err := os.WriteFile(filepath.Join(dir, file), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runMeshgate(t, dir, "validate", file)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			out := stdout + stderr
			lines := strings.Split(out, "\n")
			for _, w := range tc.want {
				prefix := file + ":" + w[0]
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l, prefix) && strings.Contains(l, w[1]) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no error line starting %q and naming %s in:\n%s", prefix, w[1], out)
				}
			}
		})
	}
}

// Package e2e holds whole-program tests: they build the real meshgate binary once, run it as a
// child process and talk to it, and to the real peers behind it (nginx, Go HTTP, gRPC and
// WebSocket servers), with real clients (curl, grpc-go, net/http, raw sockets). Everything listens
// on and connects to loopback only.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// meshgateBin is the path of the meshgate binary built by TestMain.
var meshgateBin string

// moduleRoot is the directory of the module under test (the one holding go.mod).
var moduleRoot string

// buildTimeout bounds building the binary.
const buildTimeout = 5 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run builds meshgate into a temporary directory, runs the tests and removes the directory.
func run(m *testing.M) int {
	root, err := findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	moduleRoot = root
	dir, err := os.MkdirTemp("", "meshgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	meshgateBin = filepath.Join(dir, "meshgate")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", meshgateBin, "./cmd/meshgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building meshgate failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// findModuleRoot walks up from the working directory to the directory that holds go.mod.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 10 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("no go.mod above the working directory")
}

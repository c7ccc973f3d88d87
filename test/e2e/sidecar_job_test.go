package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSidecarJobExit: a sidecar runs its workload command only once it is ready, and a job that
// exits ends its sidecar with the job's exit code.
func TestSidecarJobExit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startControl(t, filepath.Join(dir, "control"), newControlAddrs(t))
	app := freeAddr(t)
	port := app[strings.LastIndex(app, ":")+1:]
	p := startProcess(t, "meshgate sidecar (job)", meshgateBin, "sidecar",
		"--control", c.GRPC, "--control-ca", filepath.Join(c.Dir, "bundle.pem"),
		"--join-token-file", filepath.Join(c.Dir, "join-token"), "--data-dir", filepath.Join(dir, "sidecar"),
		"--service", "batch", "--namespace", "jobs", "--port", "http="+port+"/http1",
		"--address", "127.0.0.1", "--inbound", freeAddr(t), "--outbound", freeAddr(t), "--admin", freeAddr(t),
		"--drain-delay", "100ms",
		"--", "sh", "-c", "echo job ran; exit 3")
	code, ok := p.wait(30 * time.Second)
	if !ok {
		t.Fatal("the sidecar did not end with its job")
	}
	if code != 3 {
		t.Fatalf("exit code %d, want the job's 3\n%s", code, tail(p.stderr.String(), 2000))
	}
	if !strings.Contains(p.stdout.String(), "job ran") {
		t.Fatalf("the job did not run:\n%s", tail(p.stdout.String(), 2000))
	}
	if !strings.Contains(p.stderr.String(), "sidecar ready") {
		t.Fatalf("the sidecar never said it was ready, yet its job ran:\n%s", tail(p.stderr.String(), 2000))
	}
}

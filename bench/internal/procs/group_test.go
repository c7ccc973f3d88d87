package procs

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGroupStartStopAll(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	g := NewGroup(pidFile, time.Second)
	// The leader ignores SIGTERM and has a child: StopAll must still stop the whole group.
	p, err := g.Start("sleeper", []string{sh, "-c", "trap '' TERM; echo started; sleep 60 & wait"}, []string{"X=1"}, filepath.Join(dir, "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(p.PID()) + " sleeper\n"; string(b) != want {
		t.Fatalf("pid file %q, want %q", b, want)
	}
	if p.Exited() || p.Err() != nil {
		t.Fatalf("exited %v err %v before stop", p.Exited(), p.Err())
	}
	// Stop only once the shell has set its trap and started its child.
	for i := 0; i < 200; i++ {
		if out, _ := os.ReadFile(p.Log()); strings.Contains(string(out), "started") {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	g.StopAll()
	if !p.Exited() {
		t.Fatal("still running after StopAll")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left behind: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(p.PID())); err == nil {
		t.Fatal("leader still in /proc after StopAll")
	}
	out, _ := os.ReadFile(p.Log())
	if !strings.Contains(string(out), "started") {
		t.Fatalf("log %q lacks the process's output", out)
	}
}

func TestRunTool(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	tests := []struct {
		desc       string
		script     string
		stdout     string
		stderr     string
		wantErr    bool
		wantExpiry bool
	}{
		{desc: "success", script: "echo out; echo err >&2; echo $X", stdout: "out\nyes\n", stderr: "err\n"},
		{desc: "failure", script: "exit 3", wantErr: true},
		{desc: "timeout kills the group", script: "sleep 60 & wait", wantErr: true, wantExpiry: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			stdout, stderr, err := RunTool(context.Background(), []string{sh, "-c", tt.script}, []string{"X=yes"}, 300*time.Millisecond)
			if (err != nil) != tt.wantErr || errors.Is(err, context.DeadlineExceeded) != tt.wantExpiry {
				t.Fatalf("err = %v, want error %v, expiry %v", err, tt.wantErr, tt.wantExpiry)
			}
			if !tt.wantErr && (stdout != tt.stdout || stderr != tt.stderr) {
				t.Fatalf("stdout %q stderr %q, want %q %q", stdout, stderr, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestPin(t *testing.T) {
	tests := []struct {
		desc string
		nice int
		want string
	}{
		{desc: "no nice", want: "taskset -c 2 x y"},
		{desc: "nice", nice: -5, want: "nice -n -5 taskset -c 2 x y"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := strings.Join(Pin(2, tt.nice, "x", "y"), " "); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadersOnSelf(t *testing.T) {
	pid := os.Getpid()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if tree := Tree(pid); len(tree) == 0 || tree[0] != pid {
		t.Fatalf("tree %v does not start with %d", tree, pid)
	}
	if _, err := CPUTicks([]int{pid}); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMemory(pid)
	if err != nil || m.RSS <= 0 || m.Threads <= 0 {
		t.Fatalf("memory %+v, %v", m, err)
	}
	if rss, _, err := MemKB([]int{pid}); err != nil || rss <= 0 {
		t.Fatalf("rss %d, %v", rss, err)
	}
	if _, err := ReadCoreStat(0); err != nil {
		t.Fatal(err)
	}
}

package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// RunTool runs a load tool (argv, with extra environment) to completion, bounded by timeout, and
// returns its stdout and stderr. The tool runs in a process group of its own, which is killed
// whole when the timeout passes or ctx ends.
func RunTool(ctx context.Context, argv, env []string, timeout time.Duration) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			err = fmt.Errorf("procs: %s: timed out after %s: %w", filepath.Base(argv[0]), timeout, cerr)
		} else {
			err = fmt.Errorf("procs: %s: %w", filepath.Base(argv[0]), cerr)
		}
	}
	return o.String(), e.String(), err
}

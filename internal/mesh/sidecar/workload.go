package sidecar

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// RunWorkload runs the workload's command beside the sidecar and returns its exit code: it starts
// only once the sidecar is ready (so the workload's first calls already work), and the sidecar
// drains and stops when it ends (a job that exits ends its sidecar). When stop is signalled
// first, the sidecar drains, then the workload gets SIGTERM (and SIGKILL after the drain timeout)
// and the sidecar stops once it has exited, so the workload's calls work until its last moment.
func (s *Sidecar) RunWorkload(args []string, stop <-chan os.Signal) (int, error) {
	select {
	case <-s.ready:
	case sig := <-stop:
		s.log.Info("stopped before the sidecar was ready", "signal", sig.String())
		return 1, s.Close()
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		s.Drain(context.Background())
		_ = s.Close()
		return 127, err
	}
	s.log.Info("workload started", "command", args[0], "pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-exited:
		s.log.Info("workload exited; stopping the sidecar", "error", werr)
		s.Drain(context.Background())
	case sig := <-stop:
		s.log.Info("stopping", "signal", sig.String())
		s.Drain(context.Background())
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case werr = <-exited:
		case <-time.After(s.opts.DrainTimeout):
			_ = cmd.Process.Kill()
			werr = <-exited
		}
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			code = 128 + int(syscall.SIGKILL)
		}
	} else if werr != nil {
		code = 1
	}
	return code, s.Close()
}

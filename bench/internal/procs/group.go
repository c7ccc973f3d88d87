package procs

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Group tracks every process a benchmark started, so that all are stopped at exit. Their ids are
// also written to a file so that a wrapper script can stop them should the benchmark die.
type Group struct {
	pidFile string
	grace   time.Duration

	mu   sync.Mutex
	list []*Proc
}

// NewGroup returns an empty group. pidFile, if not empty, receives a "pid name" line for each
// running process; grace is how long StopAll waits after SIGTERM before SIGKILL.
func NewGroup(pidFile string, grace time.Duration) *Group {
	return &Group{pidFile: pidFile, grace: grace}
}

// Proc is one started process, the leader of its own process group, so that stopping it also
// stops its children (nginx workers).
type Proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// Start runs argv (possibly prefixed by Pin) with extra environment, its stdout and stderr going
// to the file logPath. The process dies with the benchmark (SIGKILL on parent death).
func (g *Group) Start(name string, argv, env []string, logPath string) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("procs: start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("procs: start %s: %w", name, err)
	}
	p := &Proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	g.mu.Lock()
	g.list = append(g.list, p)
	g.writePIDs()
	g.mu.Unlock()
	return p, nil
}

// writePIDs records "pid name" lines for the wrapper's exit trap. Called with mu held.
func (g *Group) writePIDs() {
	if g.pidFile == "" {
		return
	}
	var b strings.Builder
	for _, p := range g.list {
		fmt.Fprintf(&b, "%d %s\n", p.PID(), p.name)
	}
	_ = os.WriteFile(g.pidFile, []byte(b.String()), 0o644)
}

// StopAll stops every process, newest first: SIGTERM to its process group, then SIGKILL after
// the grace period. It then removes the pid file.
func (g *Group) StopAll() {
	g.mu.Lock()
	list := append([]*Proc(nil), g.list...)
	g.list = nil
	g.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(g.grace)
	}
	if g.pidFile != "" {
		_ = os.Remove(g.pidFile)
	}
}

// Name is the name the process was started under.
func (p *Proc) Name() string { return p.name }

// PID is the process id, which is also its process group id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Log is the path of the file holding the process's stdout and stderr.
func (p *Proc) Log() string { return p.log }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit status; it is meaningful only once Exited reports true.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Proc) stop(grace time.Duration) {
	pid := p.PID()
	if !p.Exited() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// The group may still hold children (an nginx worker) even when the leader is gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

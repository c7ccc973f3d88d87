package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a long-running process the suite started (the origin or a proxy). It runs in its own
// process group so that stopping it also stops its children (nginx workers).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
	log  string        // file holding its stdout and stderr
}

// procs tracks every process the suite started, so that all are stopped at exit. Their ids are
// also written to a file so that the wrapper script can stop them should this program die.
type procs struct {
	mu      sync.Mutex
	list    []*proc
	pidFile string
}

// start runs argv (already prefixed with taskset) with extra environment, its output going to
// logPath.
func (ps *procs) start(name string, argv []string, env []string, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.writePIDs()
	ps.mu.Unlock()
	return p, nil
}

// writePIDs records "pid name" lines for the wrapper's exit trap. Called with mu held.
func (ps *procs) writePIDs() {
	if ps.pidFile == "" {
		return
	}
	var b strings.Builder
	for _, p := range ps.list {
		fmt.Fprintf(&b, "%d %s\n", p.cmd.Process.Pid, p.name)
	}
	_ = os.WriteFile(ps.pidFile, []byte(b.String()), 0o644)
}

// stopAll stops every process, newest first: SIGTERM to its process group, then SIGKILL after
// a grace period.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
	ps.mu.Lock()
	ps.list = nil
	if ps.pidFile != "" {
		_ = os.Remove(ps.pidFile)
	}
	ps.mu.Unlock()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
		}
	}
	// The group may still hold children (an nginx worker) even when the leader is gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

// runTool runs a load generator to completion, bounded by timeout, and returns its stdout and
// stderr.
func runTool(ctx context.Context, argv []string, env []string, timeout time.Duration) (stdout, stderr string, err error) {
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
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%s: timed out after %s", filepath.Base(argv[0]), timeout)
	}
	return o.String(), e.String(), err
}

// ---- /proc readers ----

// procStat is what the suite reads from /proc/<pid>/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime, in clock ticks
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return procStat{ppid: ppid, ticks: ut + st}, nil
}

// procTree returns root and all its descendants (bounded search over /proc).
func procTree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 1000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// cpuTicks sums utime+stime over pids. A pid that has gone is an error: its time would be lost.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		st, err := readProcStat(pid)
		if err != nil {
			return 0, fmt.Errorf("process %d vanished: %w", pid, err)
		}
		sum += st.ticks
	}
	return sum, nil
}

// statusKB reads a "Key:   123 kB" line of /proc/<pid>/status (VmRSS, VmHWM).
func statusKB(pid int, key string) (int64, error) {
	return fieldKB(fmt.Sprintf("/proc/%d/status", pid), key)
}

func fieldKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// memKB sums VmRSS (from status) and Pss (from smaps_rollup, 0 where unavailable) over pids.
func memKB(pids []int) (rss, pss int64, err error) {
	for _, pid := range pids {
		r, err := statusKB(pid, "VmRSS")
		if err != nil {
			return 0, 0, err
		}
		rss += r
		if p, err := fieldKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss"); err == nil {
			pss += p
		}
	}
	return rss, pss, nil
}

// cpuCoreStat is one "cpuN" line of /proc/stat, in clock ticks.
type cpuCoreStat struct {
	user, nice, system, idle, iowait, irq, softirq, steal int64
}

// busyTasks is the time the core spent running tasks (user, nice, system), which on the proxy's
// core is the proxy's own time plus anything else that ran there.
func (c cpuCoreStat) busyTasks() int64 { return c.user + c.nice + c.system }

func readCoreStat(core int) (cpuCoreStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuCoreStat{}, err
	}
	prefix := fmt.Sprintf("cpu%d ", core)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		v := make([]int64, 8)
		for i := 0; i < 8 && i < len(f); i++ {
			v[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		return cpuCoreStat{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
	}
	return cpuCoreStat{}, fmt.Errorf("/proc/stat: no line for cpu%d", core)
}

// portFree reports whether addr can be listened on.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitListening waits (bounded) until addr accepts connections, or p exits.
func waitListening(p *proc, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if p.exited() {
			return fmt.Errorf("%s exited during start-up (%v); see its log %s", p.name, p.err, filepath.Base(p.log))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: nothing listening on %s after %s", p.name, addr, limit)
}

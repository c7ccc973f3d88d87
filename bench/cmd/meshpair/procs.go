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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs tracks every process the benchmark started, so that all are stopped at exit. Their ids
// are also written to a file so that the wrapper script can stop them should this program die.
type procs struct {
	mu      sync.Mutex
	list    []*proc
	pidFile string
}

// proc is one started process, the leader of its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs argv with extra environment, its output going to logPath.
func (ps *procs) start(name string, argv, env []string, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("meshpair: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
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

// stopAll stops every process, newest first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := append([]*proc(nil), ps.list...)
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
	if ps.pidFile != "" {
		_ = os.Remove(ps.pidFile)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after a grace period.
func (p *proc) stop() {
	if !p.exited() {
		_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

// runTool runs a load generator to completion, bounded by timeout.
func runTool(ctx context.Context, argv, env []string, timeout time.Duration) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s overran %s: %w", argv[0], timeout, ctx.Err())
	}
	return o.String(), e.String(), err
}

// ---- /proc readers ----

// clkTck is the kernel's clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux).
const clkTck = 100

// procStat is what the benchmark reads from /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime, in clock ticks, over all threads
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat reads ppid (field 4) and utime + stime (fields 14 and 15). The command name
// (field 2) is in parentheses and may hold spaces: fields count from after the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("meshpair: /proc stat: unexpected format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, errors.New("meshpair: /proc stat: too few fields")
	}
	ppid, err0 := strconv.Atoi(f[1])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err0, err1, err2); err != nil {
		return procStat{}, fmt.Errorf("meshpair: /proc stat: %w", err)
	}
	return procStat{ppid: ppid, ticks: ut + st}, nil
}

// procTree returns root and its descendants (nginx's worker under its master).
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
		if st, err := readProcStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 100; i++ {
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
			return 0, fmt.Errorf("meshpair: process %d vanished: %w", pid, err)
		}
		sum += st.ticks
	}
	return sum, nil
}

// memory is one process's resident memory, in KiB.
type memory struct {
	RSS     int64 `json:"rss_kib"`      // VmRSS: every resident page mapped, shared or not
	Anon    int64 `json:"rss_anon_kib"` // RssAnon: heap, stacks, Go runtime (private to the process)
	File    int64 `json:"rss_file_kib"` // RssFile: resident pages of mapped files (the binary's text and data)
	PSS     int64 `json:"pss_kib"`      // Pss: shared pages divided among the processes mapping them
	Threads int64 `json:"threads"`
}

// readMemory reads /proc/PID/status and /proc/PID/smaps_rollup.
func readMemory(pid int) (memory, error) {
	st, err := fieldsKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS", "RssAnon", "RssFile", "Threads")
	if err != nil {
		return memory{}, err
	}
	m := memory{RSS: st["VmRSS"], Anon: st["RssAnon"], File: st["RssFile"], Threads: st["Threads"]}
	if r, err := fieldsKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss"); err == nil {
		m.PSS = r["Pss"]
	}
	return m, nil
}

// fieldsKB reads "Key:   123 kB" lines of a /proc file; every key must be present.
func fieldsKB(path string, keys ...string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				if fs := strings.Fields(rest); len(fs) > 0 {
					out[k], _ = strconv.ParseInt(fs[0], 10, 64)
				}
			}
		}
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("meshpair: %s: no %s", path, k)
		}
	}
	return out, nil
}

// coreBusy reads the ticks core spent running tasks (user, nice, system) from /proc/stat.
func coreBusy(core int) (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("cpu%d ", core)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		var sum int64
		for i := 0; i < 3 && i < len(f); i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			sum += v
		}
		return sum, nil
	}
	return 0, fmt.Errorf("meshpair: /proc/stat: no line for cpu%d", core)
}

// freePorts returns n distinct loopback addresses nothing listens on right now: every listener
// is held until all are chosen, so the kernel cannot hand out one port twice.
func freePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// waitListening waits (bounded) until addr accepts connections, or p exits.
func waitListening(p *proc, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if p.exited() {
			return fmt.Errorf("meshpair: %s exited during start-up (%v); see %s", p.name, p.err, p.log)
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("meshpair: %s: nothing listening on %s after %s", p.name, addr, limit)
}

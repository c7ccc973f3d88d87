package procs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ClockTicks is the kernel's default clock ticks per second for /proc/PID/stat (USER_HZ, 100 on
// Linux).
const ClockTicks = 100

// Stat is what the benchmarks read from /proc/PID/stat.
type Stat struct {
	// PPID is the parent's process id.
	PPID int
	// Ticks is utime + stime, in clock ticks, over all threads.
	Ticks int64
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat reads ppid (field 4) and utime + stime (fields 14 and 15) from the contents of a
// /proc/PID/stat file. The command name (field 2) is in parentheses and may hold spaces: fields
// count from after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("procs: /proc stat: unexpected format")
	}
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return Stat{}, errors.New("procs: /proc stat: too few fields")
	}
	ppid, err0 := strconv.Atoi(f[1])
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err0, err1, err2); err != nil {
		return Stat{}, fmt.Errorf("procs: /proc stat: %w", err)
	}
	return Stat{PPID: ppid, Ticks: ut + st}, nil
}

// Tree returns root and all its descendants (nginx's workers under its master), found by a
// bounded search over /proc. It returns just root if /proc cannot be read.
func Tree(root int) []int {
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
		if st, err := ReadStat(pid); err == nil {
			children[st.PPID] = append(children[st.PPID], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 1000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// CPUTicks sums utime + stime over pids, in clock ticks. A pid that has gone is an error: its
// time would be lost.
func CPUTicks(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		st, err := ReadStat(pid)
		if err != nil {
			return 0, fmt.Errorf("procs: process %d vanished: %w", pid, err)
		}
		sum += st.Ticks
	}
	return sum, nil
}

package procs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CoreStat is one "cpuN" line of /proc/stat, in clock ticks.
type CoreStat struct {
	// User, Nice, System, Idle, IOWait, IRQ, SoftIRQ and Steal are the line's first eight columns.
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal int64
}

// BusyTasks is the time the core spent running tasks (user, nice, system), which on a proxy's
// core is the proxy's own time plus anything else that ran there.
func (c CoreStat) BusyTasks() int64 { return c.User + c.Nice + c.System }

// ReadCoreStat reads the line of /proc/stat for core.
func ReadCoreStat(core int) (CoreStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CoreStat{}, err
	}
	prefix := fmt.Sprintf("cpu%d ", core)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		var v [8]int64
		for i := 0; i < len(v) && i < len(f); i++ {
			v[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		return CoreStat{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
	}
	return CoreStat{}, fmt.Errorf("procs: /proc/stat: no line for cpu%d", core)
}

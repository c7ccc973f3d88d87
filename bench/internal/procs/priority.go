package procs

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Pin prefixes argv so that it runs on core (taskset) and, when nice is not 0, under nice(1)
// with that value.
func Pin(core, nice int, argv ...string) []string {
	pre := []string{"taskset", "-c", strconv.Itoa(core)}
	if nice != 0 {
		pre = append([]string{"nice", "-n", strconv.Itoa(nice)}, pre...)
	}
	return append(pre, argv...)
}

// RaisePriority puts this process in a session of its own, and so (where the kernel groups tasks
// by session for scheduling) in a scheduling group of its own, and gives that group the nice
// value n. Every process started afterwards inherits the group; each should also run under
// nice(1) (see Pin). It does nothing for n == 0 and returns what it could not do.
func RaisePriority(n int) error {
	if n == 0 {
		return nil
	}
	if _, err := syscall.Setsid(); err != nil {
		return fmt.Errorf("procs: setsid: %w", err)
	}
	if _, err := os.Stat("/proc/self/autogroup"); err != nil {
		return nil // no autogroups: nice(1) on each process is enough
	}
	if err := os.WriteFile("/proc/self/autogroup", []byte(strconv.Itoa(n)), 0o644); err != nil {
		return fmt.Errorf("procs: autogroup nice: %w", err)
	}
	return nil
}

package procs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is one process's resident memory, in KiB.
type Memory struct {
	// RSS is VmRSS: every resident page mapped, shared or not.
	RSS int64 `json:"rss_kib"`
	// Anon is RssAnon: heap, stacks, Go runtime (private to the process).
	Anon int64 `json:"rss_anon_kib"`
	// File is RssFile: resident pages of mapped files (the binary's text and data).
	File int64 `json:"rss_file_kib"`
	// PSS is Pss: shared pages divided among the processes mapping them; 0 where unavailable.
	PSS int64 `json:"pss_kib"`
	// Threads is the number of threads (not KiB).
	Threads int64 `json:"threads"`
}

// ReadMemory reads a process's memory from /proc/PID/status and /proc/PID/smaps_rollup.
func ReadMemory(pid int) (Memory, error) {
	st, err := FieldsKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS", "RssAnon", "RssFile", "Threads")
	if err != nil {
		return Memory{}, err
	}
	m := Memory{RSS: st["VmRSS"], Anon: st["RssAnon"], File: st["RssFile"], Threads: st["Threads"]}
	if r, err := FieldsKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss"); err == nil {
		m.PSS = r["Pss"]
	}
	return m, nil
}

// StatusKB reads one "Key:   123 kB" line of /proc/PID/status (VmRSS, VmHWM).
func StatusKB(pid int, key string) (int64, error) {
	m, err := FieldsKB(fmt.Sprintf("/proc/%d/status", pid), key)
	if err != nil {
		return 0, err
	}
	return m[key], nil
}

// MemKB sums VmRSS (from status) and Pss (from smaps_rollup, 0 where unavailable) over pids, in
// KiB.
func MemKB(pids []int) (rss, pss int64, err error) {
	for _, pid := range pids {
		r, err := StatusKB(pid, "VmRSS")
		if err != nil {
			return 0, 0, err
		}
		rss += r
		if p, err := FieldsKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss"); err == nil {
			pss += p["Pss"]
		}
	}
	return rss, pss, nil
}

// FieldsKB reads "Key:   123 kB" lines (or "Key: 123") of a /proc file; every key must be
// present.
func FieldsKB(path string, keys ...string) (map[string]int64, error) {
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
			return nil, fmt.Errorf("procs: %s: no %s", path, k)
		}
	}
	return out, nil
}

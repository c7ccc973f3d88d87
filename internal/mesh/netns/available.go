package netns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// capSysAdmin is CAP_SYS_ADMIN's bit in /proc/self/status CapEff.
const capSysAdmin = 21

// Available returns nil when this process can create named network namespaces, or an error
// saying why not: no CAP_SYS_ADMIN, RunDir not creatable or not writable, or the kernel refusing
// to create a network namespace (as in many unprivileged containers). Callers use it to fall back
// and tests to skip with a clear message. It creates RunDir if missing and leaves no namespace
// behind.
func Available() error {
	hasAdmin, err := effectiveCap(capSysAdmin)
	if err != nil {
		return err
	}
	if !hasAdmin {
		return fmt.Errorf("netns: unavailable: process lacks CAP_SYS_ADMIN (uid %d)", os.Geteuid())
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return fmt.Errorf("netns: unavailable: %w", err)
	}
	if err := unix.Access(RunDir, unix.W_OK); err != nil {
		return fmt.Errorf("netns: unavailable: %s not writable: %w", RunDir, err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: unavailable: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: unavailable: kernel refused a new network namespace: %w", err)
			return
		}
		if err := vnetns.Set(orig); err != nil {
			// The thread stays locked in the throwaway namespace and exits with this goroutine.
			done <- fmt.Errorf("netns: unavailable: restore namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	if err := <-done; err != nil {
		return err
	}
	return nil
}

// effectiveCap reports whether the capability bit is in this process's effective set.
func effectiveCap(bit uint) (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, fmt.Errorf("netns: unavailable: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false, fmt.Errorf("netns: unavailable: parse CapEff: %w", err)
		}
		return mask&(1<<bit) != 0, nil
	}
	if err := s.Err(); err != nil {
		return false, fmt.Errorf("netns: unavailable: %w", err)
	}
	return false, errors.New("netns: unavailable: no CapEff in /proc/self/status")
}

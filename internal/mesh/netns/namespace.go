package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// RunDir is where named namespaces are bind-mounted, as by `ip netns add`.
const RunDir = "/var/run/netns"

// Namespace is a named network namespace created by Create. Its methods are safe for concurrent
// use; Delete must be called once when it is no longer needed.
type Namespace struct {
	// Name is the namespace's name: the file RunDir/Name and the NAME of `ip netns exec NAME`.
	Name string

	handle vnetns.NsHandle

	mu      sync.Mutex // serialises Delete
	deleted bool
}

// Create creates the named network namespace NAME (bind-mounted at RunDir/NAME) and brings its
// loopback interface up. It fails if a namespace of that name already exists.
func Create(name string) (*Namespace, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(RunDir, name)
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("netns: create %q: %w", name, os.ErrExist)
	}
	h, err := newNamed(name)
	if err != nil {
		// NewNamed leaves its mount-point file behind when the bind mount fails.
		if _, statErr := os.Lstat(path); statErr == nil {
			_ = vnetns.DeleteNamed(name)
			_ = os.Remove(path)
		}
		return nil, fmt.Errorf("netns: create %q: %w", name, err)
	}
	ns := &Namespace{Name: name, handle: h}
	if err := ns.setLoopbackUp(); err != nil {
		return nil, errors.Join(err, ns.Delete())
	}
	return ns, nil
}

// newNamed creates the namespace on a locked OS thread, since unshare moves the calling thread
// into the new namespace, and switches the thread back afterwards. If switching back fails the
// thread stays locked and exits with its goroutine.
func newNamed(name string) (vnetns.NsHandle, error) {
	type result struct {
		h   vnetns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		done <- func() result {
			orig, err := vnetns.Get()
			if err != nil {
				runtime.UnlockOSThread()
				return result{vnetns.None(), err}
			}
			defer orig.Close()
			h, err := vnetns.NewNamed(name)
			if serr := vnetns.Set(orig); serr != nil {
				return result{h, errors.Join(err, fmt.Errorf("restore namespace: %w", serr))}
			}
			runtime.UnlockOSThread()
			return result{h, err}
		}()
	}()
	r := <-done
	if r.err != nil && r.h.IsOpen() {
		r.h.Close()
		r.h = vnetns.None()
	}
	return r.h, r.err
}

func (n *Namespace) setLoopbackUp() error {
	h, err := n.netlinkHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns: %s: find lo: %w", n.Name, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns: %s: set lo up: %w", n.Name, err)
	}
	return nil
}

// netlinkHandle returns a netlink handle whose sockets live in the namespace. Close it after use.
func (n *Namespace) netlinkHandle() (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(n.handle)
	if err != nil {
		return nil, fmt.Errorf("netns: %s: netlink handle: %w", n.Name, err)
	}
	return h, nil
}

// Path returns the namespace's bind-mount path, RunDir/Name.
func (n *Namespace) Path() string { return filepath.Join(RunDir, n.Name) }

// Delete removes the namespace. It first deletes every interface inside it other than lo, so
// the host ends of its veth pairs disappear at once even if some socket or process still holds
// the namespace open; then it removes the bind mount. Deleting again is a no-op.
func (n *Namespace) Delete() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.deleted {
		return nil
	}
	n.deleted = true
	var errs []error
	if h, err := n.netlinkHandle(); err != nil {
		errs = append(errs, err)
	} else {
		links, err := h.LinkList()
		if err != nil {
			errs = append(errs, fmt.Errorf("netns: %s: list links: %w", n.Name, err))
		}
		for _, l := range links {
			if l.Attrs().Name == "lo" {
				continue
			}
			if err := h.LinkDel(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("netns: %s: delete link %s: %w", n.Name, l.Attrs().Name, err))
			}
		}
		h.Close()
	}
	if err := n.handle.Close(); err != nil {
		errs = append(errs, fmt.Errorf("netns: %s: close: %w", n.Name, err))
	}
	if err := vnetns.DeleteNamed(n.Name); err != nil {
		errs = append(errs, fmt.Errorf("netns: delete %s: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// Do runs f on a dedicated goroutine locked to an OS thread that is switched into the
// namespace, and returns f's error. Sockets f creates stay in the namespace and may be used from
// any goroutine afterwards; goroutines f starts do not run in the namespace. Afterwards the
// thread is switched back; if that fails the thread is left locked so that it exits instead of
// serving other goroutines in the wrong namespace. A panic in f is re-raised in the caller.
func (n *Namespace) Do(f func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns: %s: current namespace: %w", n.Name, err)}
			return
		}
		defer orig.Close()
		if err := vnetns.Set(n.handle); err != nil {
			// A failed setns leaves the thread where it was.
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("netns: %s: enter: %w", n.Name, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.panicked, r.value = true, p
				}
			}()
			r.err = f()
		}()
		if err := vnetns.Set(orig); err != nil {
			// The thread stays locked and in the wrong namespace: it dies with this goroutine.
			r.err = errors.Join(r.err, fmt.Errorf("netns: %s: restore namespace: %w", n.Name, err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("netns: invalid namespace name %q", name)
	}
	return nil
}

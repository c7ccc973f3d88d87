package push

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"sync"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// view is one scope's resources at one state. It is immutable and shared by every stream with
// that scope; a state that leaves a scope's resources unchanged keeps the same view.
type view struct {
	// id is unique per view within a server.
	id uint64
	// res holds the resources by "type/name".
	res map[string]*controlv1.Resource
	// sorted is res in key order (what a full response carries).
	sorted []*controlv1.Resource
	// digest identifies the content: equal digests, equal resources.
	digest string

	mu     sync.Mutex
	deltas map[uint64]*deltaEntry // by the id of the view diffed from
}

// delta is what turns one view into another.
type delta struct {
	changed []*controlv1.Resource
	removed []string
}

func (d *delta) empty() bool { return len(d.changed) == 0 && len(d.removed) == 0 }

type deltaEntry struct {
	once sync.Once
	d    *delta
}

// newView builds a view of res.
func newView(id uint64, res map[string]*controlv1.Resource) *view {
	keys := slices.Sorted(maps.Keys(res))
	v := &view{id: id, res: res, sorted: make([]*controlv1.Resource, len(keys))}
	h := sha256.New()
	for i, k := range keys {
		r := res[k]
		v.sorted[i] = r
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(r.Version))
		h.Write([]byte{0})
	}
	v.digest = hex.EncodeToString(h.Sum(nil)[:16])
	return v
}

// deltaFrom returns what changed from the view from to v, computed once per pair and shared by
// every stream that makes the same step.
func (v *view) deltaFrom(from *view) *delta {
	v.mu.Lock()
	if v.deltas == nil {
		v.deltas = make(map[uint64]*deltaEntry)
	}
	e := v.deltas[from.id]
	if e == nil {
		e = &deltaEntry{}
		v.deltas[from.id] = e
	}
	v.mu.Unlock()
	e.once.Do(func() {
		d := &delta{}
		for _, r := range v.sorted {
			if o := from.res[Key(r.Type, r.Name)]; o == nil || o.Version != r.Version {
				d.changed = append(d.changed, r)
			}
		}
		for _, r := range from.sorted {
			if _, ok := v.res[Key(r.Type, r.Name)]; !ok {
				d.removed = append(d.removed, Key(r.Type, r.Name))
			}
		}
		e.d = d
	})
	return e.d
}

// deltaFromVersions returns what changed from a proxy holding held ("type/name" to version) to v.
func (v *view) deltaFromVersions(held map[string]string) *delta {
	d := &delta{}
	for _, r := range v.sorted {
		if held[Key(r.Type, r.Name)] != r.Version {
			d.changed = append(d.changed, r)
		}
	}
	for k := range held {
		if _, ok := v.res[k]; !ok {
			d.removed = append(d.removed, k)
		}
	}
	slices.Sort(d.removed)
	return d
}

// sameContent reports whether a and b hold the same resources at the same versions.
func sameContent(a, b map[string]*controlv1.Resource) bool {
	if len(a) != len(b) {
		return false
	}
	for k, r := range a {
		o, ok := b[k]
		if !ok || o.Version != r.Version {
			return false
		}
	}
	return true
}

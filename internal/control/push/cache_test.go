package push

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

func testSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	ix, errs := buildIndex(mkState(t, 5, mustConfig(t, meshYAML), users(2)), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return &Snapshot{Version: "5", Resources: ix.byKey}
}

func TestCacheRoundTrip(t *testing.T) {
	s := testSnapshot(t)
	file := filepath.Join(t.TempDir(), "config.snapshot")
	c := NewClient(ClientOptions{CacheFile: file})
	if _, err := c.LoadCache(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no cache yet: %v", err)
	}
	if err := c.saveCache(s); err != nil {
		t.Fatal(err)
	}
	got, err := c.LoadCache()
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != s.Version || !slices.Equal(slices.Sorted(maps.Keys(got.Resources)), slices.Sorted(maps.Keys(s.Resources))) {
		t.Fatalf("round trip: version %s, %d resources", got.Version, len(got.Resources))
	}
	for k, r := range s.Resources {
		g := got.Resources[k]
		if g.Version != r.Version || !bytes.Equal(g.Body, r.Body) {
			t.Errorf("%s differs after the round trip", k)
		}
	}
	if n, err := NewClient(ClientOptions{}).LoadCache(); n != nil || err != nil {
		t.Errorf("without a cache file: %v, %v", n, err)
	}
}

func TestCacheRefusesDamage(t *testing.T) {
	good, err := encodeCache(testSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	nl := bytes.IndexByte(good, '\n')
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		desc string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-10]},
		{"truncated in the header", good[:nl-3]},
		{"one bit flipped in the payload", flip(nl + len(good[nl:])/2)},
		{"one bit flipped in the digest", flip(nl - 1)},
		{"another file", []byte("version: 1\nlisteners: []\n")},
		{"payload replaced, digest kept", append(bytes.Clone(good[:nl+1]), `{"version":"9","resources":[]}`...)},
		{"a valid digest over a resource listed twice", withDigest(`{"version":"1","resources":[` +
			`{"type":"plan","name":"p","version":"1","body":"e30="},{"type":"plan","name":"p","version":"2","body":"e30="}]}`)},
		{"a valid digest over an unknown field", withDigest(`{"version":"1","resources":[],"extra":1}`)},
		{"a valid digest over a nameless resource", withDigest(`{"version":"1","resources":[{"type":"plan"}]}`)},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			file := filepath.Join(dir, "c"+string(rune('a'+i)))
			if err := os.WriteFile(file, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := NewClient(ClientOptions{CacheFile: file}).LoadCache()
			if !errors.Is(err, ErrCorruptCache) {
				t.Fatalf("LoadCache = %v, %v; want ErrCorruptCache", s, err)
			}
		})
	}
}

// withDigest returns a cache file of payload with a correct digest.
func withDigest(payload string) []byte {
	sum := sha256.Sum256([]byte(payload))
	return []byte(cacheMagic + hex.EncodeToString(sum[:]) + "\n" + payload)
}

func TestSnapshotConfigIsStrict(t *testing.T) {
	base := testSnapshot(t)
	with := func(r *controlv1.Resource) *Snapshot {
		m := maps.Clone(base.Resources)
		m[Key(r.Type, r.Name)] = r
		return &Snapshot{Version: "x", Resources: m}
	}
	tests := []struct {
		desc string
		s    *Snapshot
		ok   bool
	}{
		{"the encoded state", base, true},
		{"unknown field", with(&controlv1.Resource{Type: TypeRoute, Name: "r", Body: []byte(`{"name":"r","backendz":[]}`)}), false},
		{"trailing data", with(&controlv1.Resource{Type: TypePlan, Name: "p", Body: []byte(`{"name":"p"} {}`)}), false},
		{"name mismatch", with(&controlv1.Resource{Type: TypeService, Name: "a", Body: []byte(`{"name":"b","endpoints":[]}`)}), false},
		{"unknown type", with(&controlv1.Resource{Type: "settings", Name: "s", Body: []byte(`{}`)}), false},
		{"not JSON", with(&controlv1.Resource{Type: TypeListener, Name: "l", Body: []byte(`<xml/>`)}), false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg, err := tc.s.Config()
			if (err == nil) != tc.ok {
				t.Fatalf("Config() error = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && cfg.Version != 1 {
				t.Errorf("config version %d", cfg.Version)
			}
		})
	}
	cfg, _ := base.Config()
	var names []string
	for _, s := range cfg.Services {
		names = append(names, s.Name)
	}
	if !slices.IsSorted(names) || len(names) != 5 {
		t.Errorf("services %v", names)
	}
}

func TestMerge(t *testing.T) {
	r := func(typ, name, v string) *controlv1.Resource {
		return &controlv1.Resource{Type: typ, Name: name, Version: v}
	}
	base := &Snapshot{Version: "1", Resources: map[string]*controlv1.Resource{
		"route/a": r("route", "a", "1"), "route/b": r("route", "b", "1"),
	}}
	tests := []struct {
		desc string
		resp *controlv1.DiscoveryResponse
		want map[string]string
		err  bool
	}{
		{"diff", &controlv1.DiscoveryResponse{VersionInfo: "2", Resources: []*controlv1.Resource{r("route", "a", "2"), r("service", "s", "1")}, Removed: []string{"route/b", "route/none"}},
			map[string]string{"route/a": "2", "service/s": "1"}, false},
		{"full", &controlv1.DiscoveryResponse{VersionInfo: "2", Full: true, Resources: []*controlv1.Resource{r("plan", "p", "1")}},
			map[string]string{"plan/p": "1"}, false},
		{"nameless resource", &controlv1.DiscoveryResponse{Resources: []*controlv1.Resource{r("plan", "", "1")}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := merge(base, tc.resp)
			if (err != nil) != tc.err {
				t.Fatalf("merge: %v", err)
			}
			if err == nil && !maps.Equal(got.versions(), tc.want) {
				t.Errorf("merged %v, want %v", got.versions(), tc.want)
			}
			if len(base.Resources) != 2 || base.Resources["route/a"].Version != "1" {
				t.Error("merge changed its base")
			}
		})
	}
}

func FuzzDecodeCache(f *testing.F) {
	s := &Snapshot{Version: "3", Resources: map[string]*controlv1.Resource{
		"route/a": {Type: "route", Name: "a", Version: "v", Body: []byte(`{"name":"a"}`)},
	}}
	good, err := encodeCache(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(cacheMagic + "00\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeCache(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptCache) {
				t.Fatalf("error %v does not wrap ErrCorruptCache", err)
			}
			return
		}
		again, err := encodeCache(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeCache(again)
		if err != nil || s2.Version != s.Version || !maps.Equal(s2.versions(), s.versions()) {
			t.Fatalf("a decoded cache does not round-trip: %v", err)
		}
	})
}

package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecordAppendsJSONLines: entries are appended as JSON lines, across reopenings, to a file
// only its owner can read.
func TestRecordAppendsJSONLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := 1; i <= 2; i++ {
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Record(Entry{Time: time.Unix(int64(i), 0).UTC(), Actor: "admin-api 127.0.0.1", Source: "<admin PUT /config>",
			Result: "applied", OldVersion: uint64(i - 1), NewVersion: uint64(i), SHA256: Digest([]byte("v"))}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].NewVersion != 1 || got[1].OldVersion != 1 || got[1].NewVersion != 2 {
		t.Fatalf("entries %+v", got)
	}
}

// TestOffAndNil: "off" opens nothing, and a nil log records nothing without failing.
func TestOffAndNil(t *testing.T) {
	l, err := Open("off")
	if err != nil || l != nil {
		t.Fatalf("Open(off) = %v, %v", l, err)
	}
	if err := l.Record(Entry{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// Package audit writes the audit log of config changes: one JSON line per attempt to change the
// running config (through the admin API, a file change or SIGHUP), accepted or refused, saying
// who asked, when, from which source, the versions before and after, and a digest of the config
// (never the config itself, which may name secrets' locations). Lines are written and synced one
// at a time: config changes are rare and each must survive a crash.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Entry is one audited config change.
type Entry struct {
	// Time is when the change was attempted.
	Time time.Time `json:"time"`
	// Actor says who asked: "admin-api <address> (<identity>)", "file change", "SIGHUP", "startup".
	Actor string `json:"actor"`
	// Source is where the config came from: a file path or the admin API.
	Source string `json:"source"`
	// Result is "applied" or "refused".
	Result string `json:"result"`
	// OldVersion is the running config's version before the attempt (0: none).
	OldVersion uint64 `json:"oldVersion"`
	// NewVersion is the version the change got when applied (0 when refused).
	NewVersion uint64 `json:"newVersion,omitempty"`
	// SHA256 is the hex SHA-256 of the config's bytes.
	SHA256 string `json:"sha256,omitempty"`
	// Errors are the reasons a refused config was refused.
	Errors []string `json:"errors,omitempty"`
}

// Log appends entries to a file. A nil *Log records nothing.
type Log struct {
	mu sync.Mutex
	f  *os.File
}

// Open opens the audit log at path for appending (creating it with mode 0600), or returns nil
// for "off" or "".
func Open(path string) (*Log, error) {
	if path == "" || path == "off" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{f: f}, nil
}

// Digest returns the hex SHA-256 of a config's bytes, for Entry.SHA256.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Record appends e and syncs the file.
func (l *Log) Record(e Entry) error {
	if l == nil {
		return nil
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return l.f.Sync()
}

// Close closes the file.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

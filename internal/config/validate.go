package config

import (
	"fmt"
	"strconv"
)

// Validate checks c as a whole and returns an ErrorList with every problem found, in file
// order, or nil when c is valid. Each Error names the object it is in and carries its path and,
// when c came from a file, its line. Validate expects ApplyDefaults to have run: an unset field
// with a default is reported as invalid. It reads the TLS certificate files the config names.
func Validate(c *Config) error {
	if c == nil {
		return ErrorList{{Msg: "no config"}}
	}
	v := &validator{c: c}
	v.version()
	v.admin()
	v.listenerList()
	v.serviceList()
	v.security()
	v.routeList()
	v.telemetry()
	v.errs.sortByLine()
	return v.errs.err()
}

// validator collects the errors found in one config.
type validator struct {
	c    *Config
	errs ErrorList

	listeners map[string]bool // names of the defined listeners
	services  map[string]bool // names of the defined services

	meshServices map[string]string // "namespace/service" of each discovery block, to its path

	authenticators map[string]*Authenticator // the defined authenticators by name
	consumerNames  map[string]bool           // names of the defined consumers
}

// scope is a place in the config being validated: the top-level object it is in and the path
// of the part at hand.
type scope struct {
	v     *validator
	label string // `route "users-api"`
	path  string // "routes[2].backends[1]"
}

// object returns the scope of a top-level object at path named name.
func (v *validator) object(path, name string) scope {
	return scope{v: v, label: objectLabel(path, name), path: path}
}

// key returns the scope of key inside s.
func (s scope) key(k string) scope {
	s.path = pathKey(s.path, k)
	return s
}

// index returns the scope of item i of the list s.
func (s scope) index(i int) scope {
	s.path = pathIndex(s.path, i)
	return s
}

// errorf records a problem at s.
func (s scope) errorf(format string, args ...any) {
	s.v.errs = append(s.v.errs, &Error{
		File:   s.v.c.Source.File,
		Line:   s.v.line(s.path),
		Object: s.label,
		Path:   s.path,
		Msg:    fmt.Sprintf(format, args...),
	})
}

// line returns the line of the deepest part of path that the config's source knows, or 0.
func (v *validator) line(path string) int {
	for p, ok := path, true; ok; p, ok = parentPath(p) {
		if n, found := v.c.Source.Lines[p]; found {
			return n
		}
	}
	return 0
}

// inFile reports whether the file c came from sets path itself.
func (v *validator) inFile(path string) bool {
	_, ok := v.c.Source.Lines[path]
	return ok
}

// where describes the object at path for messages that point at another object: "routes[0]
// (line 5)".
func (v *validator) where(path string) string {
	if n := v.line(path); n > 0 {
		return path + " (line " + strconv.Itoa(n) + ")"
	}
	return path
}

// version checks the schema version.
func (v *validator) version() {
	s := scope{v: v, path: "version"}
	switch {
	case v.c.Version == 1:
	case v.c.Version == 0 && !v.inFile("version"):
		s.errorf(`missing; add "version: 1"`)
	default:
		s.errorf("unsupported version %d; the only supported version is 1", v.c.Version)
	}
}

// admin checks the admin and access log sections.
func (v *validator) admin() {
	s := v.object("admin", "")
	if v.c.Admin.Address != "off" {
		checkListenAddress(s.key("address"), v.c.Admin.Address)
	}
	v.adminSecurity(s)
	if v.c.AccessLog.Path == "" {
		v.object("accessLog", "").key("path").errorf(`required: "stdout", "stderr", "off" or a file path`)
	}
}

// uniqueName checks the name of the object s against the names seen so far in its list,
// recording it in seen (name -> path of the object that has it).
func uniqueName(s scope, name string, seen map[string]string) {
	switch first, dup := seen[name]; {
	case name == "":
		s.key("name").errorf("required")
	case dup:
		s.key("name").errorf("%q is already the name of %s", name, s.v.where(first))
	default:
		seen[name] = s.path
	}
}

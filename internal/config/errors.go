package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a config file, located by file, line, object and path.
//
// Its message reads like
//
//	gateway.yaml:12: route "users-api": backends[1].service: service "nope" is not defined
type Error struct {
	// File is the config file, or a label such as "<admin PUT>". Empty when unknown.
	File string
	// Line is the 1-based line of the deepest part of Path found in the file, or 0 when unknown.
	Line int
	// Object names the top-level object the problem is in, for example `route "users-api"`,
	// `listener "public"` or "admin". Empty for problems outside any object.
	Object string
	// Path is the object path of the problem from the root of the file, for example
	// "routes[2].backends[1].service". When Object is set, Error prints Path relative to the object.
	Path string
	// Msg says what is wrong, and where possible what would be right.
	Msg string
}

// Error formats e as "FILE:LINE: OBJECT: PATH: MSG", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	path := e.Path
	if e.Object != "" {
		b.WriteString(e.Object + ": ")
		_, path = splitObject(path)
	}
	if path != "" {
		b.WriteString(path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one config, in file order. Parse, Load, LoadBytes and
// Validate return one as their error; use errors.As to get at the individual errors.
type ErrorList []*Error

// Error returns one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, so that errors.As can find an *Error in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// err returns l as an error, or nil when l is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByLine orders l by line, keeping the order of errors on the same line. Errors without a
// line (about the file as a whole) come first.
func (l ErrorList) sortByLine() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
}

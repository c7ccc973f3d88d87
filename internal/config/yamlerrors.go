package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// syntaxError turns an error of the YAML parser ("yaml: line 7: did not find expected key") into
// a located Error.
func syntaxError(file string, err error) *Error {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return &Error{File: file, Line: line, Msg: msg}
}

// decodeErrors turns the error of the strict decode into an ErrorList with one Error per
// problem yaml.v3 found, each placed on its object path where the node index knows it.
func (x *nodeIndex) decodeErrors(file string, err error) ErrorList {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return ErrorList{syntaxError(file, err)}
	}
	list := make(ErrorList, 0, len(te.Errors))
	for _, s := range te.Errors {
		e := x.typeError(s)
		e.File = file
		list = append(list, e)
	}
	return list
}

// typeError places and rewords one of yaml.v3's "line N: ..." decode errors.
func (x *nodeIndex) typeError(s string) *Error {
	line, msg := splitLine(s)
	e := &Error{Line: line, Msg: msg}
	switch {
	case strings.HasPrefix(msg, "field ") && strings.Contains(msg, " not found in type "):
		// "field NAME not found in type config.T"
		name, typ, _ := strings.Cut(strings.TrimPrefix(msg, "field "), " not found in type ")
		e.Msg = "unknown field " + strconv.Quote(name)
		switch fields, ok := yamlFields(typ); {
		case ok && len(fields) == 0:
			e.Msg += "; this mapping takes no fields"
		case ok:
			e.Msg += "; valid fields are " + strings.Join(fields, ", ")
		}
		if p := x.keyAt(line, name); p != "" {
			e.Path, _ = parentPath(p)
		}
	case strings.HasPrefix(msg, "field ") && strings.Contains(msg, " already set in type "):
		// "field NAME already set in type config.T"
		name, _, _ := strings.Cut(strings.TrimPrefix(msg, "field "), " already set in type ")
		e.Msg = "field " + strconv.Quote(name) + " is set more than once"
		if p := x.keyAt(line, name); p != "" {
			e.Path, _ = parentPath(p)
		}
	case strings.HasPrefix(msg, "mapping key ") && strings.Contains(msg, " already defined at line "):
		// `mapping key "NAME" already defined at line M`
		quoted, first, _ := strings.Cut(strings.TrimPrefix(msg, "mapping key "), " already defined at line ")
		if name, err := strconv.Unquote(quoted); err == nil {
			e.Msg = "key " + quoted + " is repeated; it is first set at line " + first
			if p := x.keyAt(line, name); p != "" {
				e.Path, _ = parentPath(p)
			}
		}
	case strings.HasPrefix(msg, "cannot unmarshal "):
		// "cannot unmarshal !!str `abc` into time.Duration", "cannot unmarshal !!seq into config.Admin"
		tag, value, typ := splitUnmarshal(strings.TrimPrefix(msg, "cannot unmarshal "))
		e.Msg = "expected " + describeType(typ) + ", got " + describeValue(tag, value)
		if p, ok := x.valueAt(line, kindOfTag(tag)); ok {
			e.Path = p
		}
	}
	e.Object = x.label(e.Path)
	return e
}

// splitLine splits "line N: msg" into N and msg; a message without a line gets 0.
func splitLine(s string) (int, string) {
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return 0, s
	}
	num, msg, ok := strings.Cut(rest, ": ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return 0, s
	}
	return n, msg
}

// splitUnmarshal splits "!!str `abc` into time.Duration" into its tag, value and Go type.
func splitUnmarshal(s string) (tag, value, typ string) {
	tag, rest, _ := strings.Cut(s, " ")
	if v, ok := strings.CutPrefix(rest, "`"); ok {
		if i := strings.LastIndex(v, "` into "); i >= 0 {
			return tag, v[:i], v[i+len("` into "):]
		}
	}
	return tag, "", strings.TrimPrefix(rest, "into ")
}

// kindOfTag returns the node kind a YAML tag decodes from.
func kindOfTag(tag string) yaml.Kind {
	switch tag {
	case "!!map":
		return yaml.MappingNode
	case "!!seq":
		return yaml.SequenceNode
	}
	return yaml.ScalarNode
}

// describeType says in words what a Go type accepts in YAML.
func describeType(typ string) string {
	typ = strings.TrimPrefix(typ, "*")
	switch {
	case typ == "time.Duration":
		return `a duration such as "15s"`
	case typ == "string":
		return "a string"
	case typ == "bool":
		return "true or false"
	case strings.HasPrefix(typ, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(typ, "int"):
		return "an integer"
	case strings.HasPrefix(typ, "[]"):
		return "a list"
	case strings.HasPrefix(typ, "map["), strings.HasPrefix(typ, "config."):
		return "a mapping"
	}
	return typ
}

// describeValue says in words what a YAML value is.
func describeValue(tag, value string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "null"
	case "!!str":
		return strconv.Quote(value)
	}
	if value == "" {
		return tag
	}
	return value
}

// yamlFields returns the YAML keys of the config struct type named typ ("config.Listener"), and
// false when there is no such type.
func yamlFields(typ string) (fields []string, found bool) {
	seen := make(map[reflect.Type]bool)
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			names = append(names, name)
			visit(f.Type)
		}
		if t.String() == typ {
			fields, found = names, true
		}
	}
	visit(reflect.TypeOf(Config{}))
	return fields, found
}

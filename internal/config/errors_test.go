package config

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		desc string
		err  *Error
		want string
	}{
		{
			desc: "everything known",
			err:  &Error{File: "gateway.yaml", Line: 12, Object: `route "users-api"`, Path: "routes[2].backends[1].service", Msg: `service "nope" is not defined`},
			want: `gateway.yaml:12: route "users-api": backends[1].service: service "nope" is not defined`,
		},
		{
			desc: "the object itself",
			err:  &Error{File: "gateway.yaml", Line: 3, Object: `listener "a"`, Path: "listeners[0]", Msg: "boom"},
			want: `gateway.yaml:3: listener "a": boom`,
		},
		{
			desc: "a top-level section",
			err:  &Error{File: "gateway.yaml", Line: 2, Object: "admin", Path: "admin.address", Msg: "bad"},
			want: `gateway.yaml:2: admin: address: bad`,
		},
		{
			desc: "no object",
			err:  &Error{File: "gateway.yaml", Line: 1, Path: "version", Msg: "unsupported"},
			want: `gateway.yaml:1: version: unsupported`,
		},
		{
			desc: "no line",
			err:  &Error{File: "<admin PUT>", Msg: "the document is empty"},
			want: `<admin PUT>: the document is empty`,
		},
		{
			desc: "no file",
			err:  &Error{Line: 4, Path: "routes", Msg: "x"},
			want: `line 4: routes: x`,
		},
		{
			desc: "an object without a path",
			err:  &Error{Object: "admin", Msg: "m"},
			want: `admin: m`,
		},
		{
			desc: "nothing but a message and a path",
			err:  &Error{Object: "routes[1]", Path: `routes[1].filters[0].requestHeaders.set["x.y"]`, Msg: "m"},
			want: `routes[1]: filters[0].requestHeaders.set["x.y"]: m`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestErrorList(t *testing.T) {
	list := ErrorList{
		{File: "f.yaml", Line: 1, Msg: "one"},
		{File: "f.yaml", Line: 2, Msg: "two"},
	}
	if got, want := list.Error(), "f.yaml:1: one\nf.yaml:2: two"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var err error = fmt.Errorf("load: %w", list)
	var l ErrorList
	if !errors.As(err, &l) || len(l) != 2 {
		t.Errorf("errors.As(ErrorList) = %v, %v", l, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Msg != "one" {
		t.Errorf("errors.As(*Error) found %v", e)
	}
	if ErrorList(nil).err() != nil {
		t.Error("an empty list is not nil as an error")
	}
}

func TestPaths(t *testing.T) {
	tests := []struct {
		desc         string
		path         string
		parent       string
		obj, rest    string
		isObjectPath bool
	}{
		{desc: "root key", path: "version", parent: "", obj: "version"},
		{desc: "object", path: "routes[2]", parent: "routes", obj: "routes[2]", isObjectPath: true},
		{desc: "inside an object", path: "routes[2].match[0].path", parent: "routes[2].match[0]", obj: "routes[2]", rest: "match[0].path"},
		{desc: "list item", path: "services[0].endpoints[1]", parent: "services[0].endpoints", obj: "services[0]", rest: "endpoints[1]"},
		{desc: "quoted key", path: `routes[0].filters[0].requestHeaders.set["x.y"]`, parent: "routes[0].filters[0].requestHeaders.set", obj: "routes[0]", rest: `filters[0].requestHeaders.set["x.y"]`},
		{desc: "quoted key with brackets", path: `a["b\"]["]`, parent: "a", obj: "a", rest: `["b\"]["]`},
		{desc: "quoted root key", path: `["a b"].c`, parent: `["a b"]`, obj: `["a b"]`, rest: "c"},
		{desc: "section", path: "admin.address", parent: "admin", obj: "admin", rest: "address"},
		{desc: "root", path: "", parent: "", obj: ""},
		{desc: "not an object list", path: "things[1]", parent: "things", obj: "things[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got, _ := parentPath(tt.path); got != tt.parent {
				t.Errorf("parentPath(%q) = %q, want %q", tt.path, got, tt.parent)
			}
			if obj, rest := splitObject(tt.path); obj != tt.obj || rest != tt.rest {
				t.Errorf("splitObject(%q) = %q, %q, want %q, %q", tt.path, obj, rest, tt.obj, tt.rest)
			}
			if got := isObjectPath(tt.path); got != tt.isObjectPath {
				t.Errorf("isObjectPath(%q) = %v", tt.path, got)
			}
		})
	}
	if got := pathKey(pathKey("", "a"), "x.y"); got != `a["x.y"]` {
		t.Errorf("pathKey = %s", got)
	}
}

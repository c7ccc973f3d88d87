package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// policyErrors parses doc, applies the defaults (policies' included) and runs check, the
// validators of one kind of policy, returning the error lines sorted by line. Unlike Validate it
// checks nothing else, so a table can show one policy's errors without a complete config around it.
func policyErrors(t *testing.T, doc string, check func(v *validator, c *Config)) []string {
	t.Helper()
	c, err := Parse("gateway.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ApplyDefaults(c)
	v := &validator{c: c}
	check(v, c)
	v.errs.sortByLine()
	return errorLines(v.errs.err())
}

// errorLines returns the lines of err, or nil when err is nil.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// checkErrors compares the lines of err with want, exactly and in order.
func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	got := errorLines(err)
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	t.Errorf("got %d errors:\n\t%s\nwant %d:\n\t%s", len(got), strings.Join(got, "\n\t"), len(want), strings.Join(want, "\n\t"))
}

// aliasBomb returns a document whose aliases expand to 10^levels strings.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("version: 1\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i <= levels; i++ {
		prev := "*x" + string(rune('0'+i-1))
		b.WriteString("x" + string(rune('0'+i)) + ": &x" + string(rune('0'+i)) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n")
	}
	return b.String()
}

func TestParse(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string // the lines of the error, exactly; none for a valid document
	}{
		{
			desc: "minimal",
			yaml: `version: 1
listeners:
  - name: web
    address: 127.0.0.1:18080
routes:
  - name: all
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: 127.0.0.1:18081}]
`,
		},
		{
			desc: "JSON is YAML",
			yaml: `{"version": 1, "routes": [{"name": "r", "filters": [{"respond": {"body": "hi"}}]}]}`,
		},
		{
			desc: "anchors, aliases and merge keys",
			yaml: `version: 1
services:
  - &base
    name: a
    endpoints: [{address: 127.0.0.1:18081}]
    healthCheck: &probe
      tcp: {}
  - <<: *base
    name: b
  - name: c
    endpoints: [{address: 127.0.0.1:18082}]
    healthCheck: *probe
routes:
  - name: r
    backends: [{service: a}, {service: b}, {service: c}]
`,
		},
		{
			desc: "unknown field at the top",
			yaml: `version: 1
listener:
  - name: web
`,
			want: []string{`gateway.yaml:2: unknown field "listener"; valid fields are version, admin, accessLog, listeners, routes, services, authenticators, consumers, plans, telemetry`},
		},
		{
			desc: "unknown fields deep inside objects, all reported",
			yaml: `version: 1
listeners:
  - name: web
    adress: 127.0.0.1:18080
routes:
  - name: users-api
    match:
      - path: {prefx: /users}
    backends:
      - service: users
        wieght: 3
services:
  - name: users
    endpoints: [{address: 127.0.0.1:18081}]
    healthCheck:
      tcp: {port: 80}
`,
			want: []string{
				`gateway.yaml:4: listener "web": unknown field "adress"; valid fields are name, address, protocol, tls, timeouts, limits, trustedProxies, paths, security`,
				`gateway.yaml:8: route "users-api": match[0].path: unknown field "prefx"; valid fields are exact, prefix, regex`,
				`gateway.yaml:11: route "users-api": backends[0]: unknown field "wieght"; valid fields are service, weight`,
				`gateway.yaml:16: service "users": healthCheck.tcp: unknown field "port"; this mapping takes no fields`,
			},
		},
		{
			desc: "unknown field in an unnamed object",
			yaml: `version: 1
routes:
  - backends: [{service: a}]
    hostz: [a.example]
`,
			want: []string{`gateway.yaml:4: routes[0]: unknown field "hostz"; valid fields are name, listeners, service, hosts, match, filters, backends, timeout, retry, rateLimit, fault, mirror, auth, authz, ipAccess, cors, maxBodyBytes, streamIdleTimeout`},
		},
		{
			desc: "wrong types",
			yaml: `version: 1
admin: [127.0.0.1:9901]
listeners:
  - name: web
    address: 127.0.0.1:18080
    timeouts:
      idle: 60
      request: forever
    limits:
      maxHeaderCount: many
      maxConcurrentStreams: -1
`,
			want: []string{
				`gateway.yaml:2: admin: expected a mapping, got a list`,
				`gateway.yaml:7: listener "web": timeouts.idle: expected a duration such as "15s", got 60`,
				`gateway.yaml:8: listener "web": timeouts.request: expected a duration such as "15s", got "forever"`,
				`gateway.yaml:10: listener "web": limits.maxHeaderCount: expected an integer, got "many"`,
				`gateway.yaml:11: listener "web": limits.maxConcurrentStreams: expected a non-negative integer, got -1`,
			},
		},
		{
			desc: "a repeated key",
			yaml: `version: 1
services:
  - name: a
    endpoints: [{address: 127.0.0.1:18081}]
    name: b
`,
			want: []string{`gateway.yaml:5: service "a": key "name" is repeated; it is first set at line 3`},
		},
		{
			desc: "syntax error",
			yaml: `version: 1
listeners:
  - name: web
   address: 127.0.0.1:18080
`,
			// yaml.v3 reports the line of the enclosing list, not of the bad line.
			want: []string{`gateway.yaml:2: did not find expected '-' indicator`},
		},
		{
			desc: "tab indentation",
			yaml: "version: 1\nlisteners:\n\t- name: web\n",
			want: []string{`gateway.yaml:3: found character that cannot start any token`},
		},
		{
			desc: "empty",
			yaml: "",
			want: []string{`gateway.yaml: the document is empty; a config starts with "version: 1"`},
		},
		{
			desc: "only comments",
			yaml: "# nothing yet\n",
			want: []string{`gateway.yaml: the document is empty; a config starts with "version: 1"`},
		},
		{
			desc: "only a document marker",
			yaml: "---\n",
			want: []string{`gateway.yaml: the document is empty; a config starts with "version: 1"`},
		},
		{
			desc: "not a mapping",
			yaml: "- version: 1\n",
			want: []string{`gateway.yaml:1: the document must be a mapping with keys such as version, listeners, routes and services`},
		},
		{
			desc: "two documents",
			yaml: "version: 1\n---\nversion: 1\n",
			want: []string{`gateway.yaml:2: a second YAML document; a config file holds exactly one`},
		},
		{
			desc: "version missing",
			yaml: "listeners: []\n",
			want: []string{`gateway.yaml:1: version: missing; add "version: 1"`},
		},
		{
			desc: "version 2, whose other fields are not looked at",
			yaml: "# a future file\nversion: 2\nlisteners: {whatever: true}\n",
			want: []string{`gateway.yaml:2: version: unsupported version 2; the only supported version is 1`},
		},
		{
			desc: "version as a string",
			yaml: "version: \"1\"\n",
			want: []string{`gateway.yaml:1: version: expected the number 1, got "1"`},
		},
		{
			desc: "an alias inside its own anchor",
			yaml: "version: 1\nroutes: &r [*r]\n",
			want: []string{`gateway.yaml:2: alias *r refers to a node that contains it`},
		},
		{
			desc: "an alias bomb",
			yaml: aliasBomb(6),
			want: []string{`gateway.yaml:6: aliases expand to more than 100000 nodes; the file is refused as an alias bomb`},
		},
		{
			desc: "too large",
			yaml: "version: 1\n" + strings.Repeat("#", MaxFileBytes),
			want: []string{`gateway.yaml: the file is larger than the limit of 16777216 bytes (16 MiB)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := LoadBytes("gateway.yaml", []byte(tt.yaml))
			checkErrors(t, err, tt.want)
			if err != nil {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Errorf("the error is a %T, not an ErrorList", err)
				}
				if c != nil {
					t.Error("a config came back with the error")
				}
			}
		})
	}
}

func TestParseSourceLines(t *testing.T) {
	doc := `version: 1                           # 1
listeners:                           # 2
  - name: web                        # 3
    address: 127.0.0.1:18080         # 4
routes:                              # 5
  - name: a                          # 6
    backends: [{service: s}]         # 7
  - name: b                          # 8
    match:                           # 9
      - method: GET                  # 10
        path:                        # 11
          prefix: /b                 # 12
    filters:                         # 13
      - requestHeaders:              # 14
          set: {x.trace: "1"}        # 15
    backends:                        # 16
      - service: s                   # 17
      - service: s                   # 18
        weight: 0                    # 19
services:                            # 20
  - name: s                          # 21
    endpoints:                       # 22
      - address: 127.0.0.1:18081     # 23
      - address: 127.0.0.1:18082     # 24
    healthCheck:                     # 25
      tcp: {}                        # 26
`
	c, err := Parse("gateway.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.File != "gateway.yaml" {
		t.Errorf("Source.File = %q", c.Source.File)
	}
	want := map[string]int{
		"version":                        1,
		"listeners":                      2,
		"listeners[0]":                   3,
		"listeners[0].address":           4,
		"routes[0]":                      6,
		"routes[0].backends[0]":          7,
		"routes[1]":                      8,
		"routes[1].match[0]":             10,
		"routes[1].match[0].path":        11,
		"routes[1].match[0].path.prefix": 12,
		`routes[1].filters[0].requestHeaders.set["x.trace"]`: 15,
		"routes[1].backends[1]":                              18,
		"routes[1].backends[1].weight":                       19,
		"services[0].endpoints[1]":                           24,
		"services[0].healthCheck":                            25,
		"services[0].healthCheck.tcp":                        26,
	}
	for path, line := range want {
		if got := c.Source.Lines[path]; got != line {
			t.Errorf("Lines[%q] = %d, want %d", path, got, line)
		}
	}
	if w := c.Routes[1].Backends[1].Weight; w == nil || *w != 0 {
		t.Errorf("an explicit weight 0 was lost: %v", w)
	}
}

func TestParseDurations(t *testing.T) {
	c, err := LoadBytes("d.yaml", []byte(`version: 1
listeners:
  - name: web
    address: 127.0.0.1:18080
    timeouts: {readHeader: 1500ms, idle: 2m, request: 1h30m}
routes:
  - name: stream
    timeout: 0s
    filters: [{respond: {}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Listeners[0].Timeouts
	if got.ReadHeader != 1500*time.Millisecond || got.Idle != 2*time.Minute || got.Request != 90*time.Minute {
		t.Errorf("timeouts = %+v", got)
	}
	if c.Routes[0].Timeout == nil || *c.Routes[0].Timeout != 0 {
		t.Errorf("route timeout 0s decoded as %v", c.Routes[0].Timeout)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nadmin: {address: 'off'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.File != file || c.AccessLog.Path != "stdout" {
		t.Errorf("Load did not record its source or apply defaults: %+v", c)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	var list ErrorList
	if err == nil || errors.As(err, &list) || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load(missing) = %v; want a plain, wrapped not-exist error", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version: 1\nroutes: &r [*r]\n"))
	f.Add([]byte("version: 1\nservices:\n  - &s {name: a}\n  - <<: *s\n"))
	f.Add([]byte(`{"version": 1, "listeners": [{"name": "x", "address": ":0"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("Parse returned %T %v, not an ErrorList", err, err)
			}
			_ = err.Error()
			return
		}
		ApplyDefaults(c)
		_ = Validate(c)
	})
}

package pathnorm

import (
	"errors"
	"strings"
	"testing"
)

var (
	keep  = Options{KeepSlashes: true}
	allow = Options{AllowEncodedSlash: true}
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		opt     Options
		want    string
		wantErr error
	}{
		// Already normal.
		{desc: "root", in: "/", want: "/"},
		{desc: "plain", in: "/api/v1/users", want: "/api/v1/users"},
		{desc: "trailing slash kept", in: "/api/", want: "/api/"},
		{desc: "dots inside names", in: "/a.b/..c/c../.d/...", want: "/a.b/..c/c../.d/..."},
		{desc: "reserved escape kept", in: "/a%20b%3F", want: "/a%20b%3F"},
		{desc: "semicolon is data", in: "/admin;x", want: "/admin;x"},
		{desc: "semicolon after a name", in: "/a/b;x/c", want: "/a/b;x/c"},
		{desc: "dots and semicolon inside a name", in: "/a/...;/b/x.;y", want: "/a/...;/b/x.;y"},
		{desc: "utf-8 passes", in: "/caf\xc3\xa9", want: "/caf\xc3\xa9"},
		{desc: "sub-delims pass", in: "/a!$&'()*+,=:@b", want: "/a!$&'()*+,=:@b"},

		// Slashes.
		{desc: "attack: double slash", in: "//admin", want: "/admin"},
		{desc: "many slashes", in: "/a///b////", want: "/a/b/"},
		{desc: "only slashes", in: "////", want: "/"},
		{desc: "keep slashes", in: "//admin//x//", opt: keep, want: "//admin//x//"},
		{desc: "keep slashes resolves dots", in: "/a//../b", opt: keep, want: "/a/b"},
		{desc: "keep slashes trailing dot", in: "/a//.", opt: keep, want: "/a//"},

		// Dot segments.
		{desc: "attack: dot", in: "/./admin", want: "/admin"},
		{desc: "attack: dot-dot", in: "/x/../admin", want: "/admin"},
		{desc: "attack: above root", in: "/a/b/../../../admin", want: "/admin"},
		{desc: "dot-dot at root", in: "/..", want: "/"},
		{desc: "dot at root", in: "/.", want: "/"},
		{desc: "trailing dot", in: "/a/b/.", want: "/a/b/"},
		{desc: "trailing dot-dot", in: "/a/b/..", want: "/a/"},
		{desc: "dot-dot then slash", in: "/a/../", want: "/"},
		{desc: "dot-dot over double slash", in: "/a//../b", want: "/b"},
		{desc: "rfc example", in: "/a/b/c/./../../g", want: "/a/g"},
		{desc: "mid dots", in: "/a/./b/../c/./d", want: "/a/c/d"},

		// Escapes.
		{desc: "attack: encoded dot-dot", in: "/%2e%2e/admin", want: "/admin"},
		{desc: "attack: encoded dot-dot upper", in: "/a/%2E%2E/admin", want: "/admin"},
		{desc: "attack: half-encoded dot-dot", in: "/a/.%2e/admin", want: "/admin"},
		{desc: "encoded dot", in: "/a/%2e/b", want: "/a/b"},
		{desc: "unreserved decoded", in: "/%41%7a%30%2D%5F%7E", want: "/Az0-_~"},
		{desc: "mixed case escapes", in: "/a%2fb%5c%3f%3F%e2%82%AC", opt: allow, want: "/a%2Fb%5C%3F%3F%E2%82%AC"},
		{desc: "lower hex upcased", in: "/a%3ab", want: "/a%3Ab"},
		{desc: "attack: percent-25 not decoded", in: "/%252F", want: "/%252F"},
		{desc: "percent-25 lower hex", in: "/%252f%25", want: "/%252f%25"},
		{desc: "percent-25 dot not decoded", in: "/%252e%252e/admin", want: "/%252e%252e/admin"},
		{desc: "encoded slash allowed", in: "/a%2Fb", opt: allow, want: "/a%2Fb"},
		{desc: "encoded slash allowed lower", in: "/a%2fb", opt: allow, want: "/a%2Fb"},
		{desc: "encoded backslash allowed", in: "/%5cadmin", opt: allow, want: "/%5Cadmin"},
		{desc: "encoded slash not a separator", in: "/a%2F..", opt: allow, want: "/a%2F.."},
		{desc: "encoded slash next to dot-dot", in: "/a/%2F/../b", opt: allow, want: "/a/b"},

		// Errors.
		{desc: "empty", in: "", wantErr: ErrBadPath},
		{desc: "relative", in: "admin", wantErr: ErrBadPath},
		{desc: "asterisk", in: "*", wantErr: ErrBadPath},
		{desc: "attack: leading backslash", in: "\\admin", wantErr: ErrBadPath},
		{desc: "attack: backslash", in: "/a\\..\\admin", wantErr: ErrBackslash},
		{desc: "backslash even when allowed", in: "/a\\b", opt: allow, wantErr: ErrBackslash},
		{desc: "attack: encoded slash", in: "/%2Fadmin", wantErr: ErrEncodedSlash},
		{desc: "attack: encoded slash lower", in: "/%2fadmin", wantErr: ErrEncodedSlash},
		{desc: "attack: encoded backslash", in: "/%5Cadmin", wantErr: ErrEncodedSlash},
		{desc: "attack: encoded backslash lower", in: "/%5cadmin", wantErr: ErrEncodedSlash},
		{desc: "attack: fragment", in: "/admin#x", wantErr: ErrBadPath},
		{desc: "query mark", in: "/admin?x", wantErr: ErrBadPath},
		{desc: "bad escape", in: "/%zz", wantErr: ErrBadEscape},
		{desc: "bad escape half", in: "/%4g", wantErr: ErrBadEscape},
		{desc: "truncated escape", in: "/%4", wantErr: ErrBadEscape},
		{desc: "lone percent", in: "/a%", wantErr: ErrBadEscape},
		{desc: "encoded NUL", in: "/a%00b", wantErr: ErrBadPath},
		{desc: "encoded newline", in: "/a%0d%0aX: y", wantErr: ErrBadPath},
		{desc: "encoded DEL", in: "/a%7f", wantErr: ErrBadPath},
		{desc: "raw NUL", in: "/a\x00", wantErr: ErrBadPath},
		{desc: "raw newline", in: "/a\nb", wantErr: ErrBadPath},
		{desc: "raw tab", in: "/a\tb", wantErr: ErrBadPath},
		{desc: "raw space", in: "/a b", wantErr: ErrBadPath},
		{desc: "raw DEL", in: "/a\x7f", wantErr: ErrBadPath},
		{desc: "error after dot work", in: "/a/../%zz", wantErr: ErrBadEscape},
		{desc: "attack: dot-dot with parameters", in: "/a/..;/admin", wantErr: ErrDotParams},
		{desc: "attack: dot-dot with named parameters", in: "/a/..;x=1/admin", wantErr: ErrDotParams},
		{desc: "attack: dot with parameters", in: "/.;/admin", wantErr: ErrDotParams},
		{desc: "attack: encoded dot-dot with parameters", in: "/a/%2e%2E;/admin", wantErr: ErrDotParams},
		{desc: "attack: trailing dot-dot with parameters", in: "/admin/x/..;", wantErr: ErrDotParams},
		{desc: "dot-dot with parameters even when keeping slashes", in: "//..;/admin", opt: keep, wantErr: ErrDotParams},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := Normalize(tc.in, tc.opt)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Normalize(%q) = %q, %v; want error %v", tc.in, got, err, tc.wantErr)
				}
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("Normalize(%q) error %v does not match ErrBadPath", tc.in, err)
				}
				if got != "" {
					t.Fatalf("Normalize(%q) returned %q with an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			// The normal form is a fixed point.
			again, err := Normalize(got, tc.opt)
			if err != nil || again != got {
				t.Fatalf("Normalize(%q) = %q, %v; not idempotent", got, again, err)
			}
			if want := ref(tc.in, tc.opt); want != got {
				t.Fatalf("reference gives %q, Normalize %q", want, got)
			}
		})
	}
}

func TestNormalizeAllocs(t *testing.T) {
	clean := "/api/v1/users/12345/orders%20x"
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(clean, Options{}) }); n != 0 {
		t.Errorf("clean path: %v allocs, want 0", n)
	}
	dirty := "/api//v1/./users/%7e12345/../orders%2d"
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(dirty, Options{}) }); n != 1 {
		t.Errorf("dirty path: %v allocs, want 1", n)
	}
	bad := "/api/%2Fadmin"
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(bad, Options{}) }); n > 1 {
		t.Errorf("bad path: %v allocs, want at most 1", n)
	}
}

// ref is a straightforward reference: validate and decode the whole path, merge slashes, then
// run RFC 3986 section 5.2.4 remove_dot_segments literally. It returns "" on any error.
func ref(p string, opt Options) string {
	if p == "" || p[0] != '/' {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f || c == ' ' || c == '#' || c == '?' || c == '\\':
			return ""
		case c != '%':
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(p) {
			return ""
		}
		hv, ok1 := unhex(p[i+1])
		lv, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return ""
		}
		v := hv<<4 | lv
		switch {
		case v < 0x20 || v == 0x7f:
			return ""
		case (v == '/' || v == '\\') && !opt.AllowEncodedSlash:
			return ""
		case 'a' <= v && v <= 'z', 'A' <= v && v <= 'Z', '0' <= v && v <= '9', v == '-', v == '.', v == '_', v == '~':
			b.WriteByte(v)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex[hv])
			b.WriteByte(upperHex[lv])
		}
		i += 2
	}
	in := b.String()
	for _, seg := range strings.Split(in, "/") {
		if strings.HasPrefix(seg, ".;") || strings.HasPrefix(seg, "..;") {
			return ""
		}
	}
	if !opt.KeepSlashes {
		for strings.Contains(in, "//") {
			in = strings.ReplaceAll(in, "//", "/")
		}
	}
	out := ""
	removeLast := func() {
		if j := strings.LastIndexByte(out, '/'); j >= 0 {
			out = out[:j]
		} else {
			out = ""
		}
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			removeLast()
		case in == "/..":
			in = "/"
			removeLast()
		default:
			j := strings.IndexByte(in[1:], '/')
			if j < 0 {
				out += in
				in = ""
			} else {
				out += in[:j+1]
				in = in[j+1:]
			}
		}
	}
	if out == "" {
		out = "/"
	}
	return out
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"/", "//admin", "/./admin", "/x/../admin", "/%2e%2e/admin", "/%2Fadmin", "/%5Cadmin",
		"\\admin", "/a/b/../../../admin", "/%252F", "/admin;x", "/admin#x", "/a%2fb%5c%3f%E2%82%ac",
		"/a//.", "/.%2E/", "/%", "/%0", "/%00", "/a/./b/../c", "/a/..;/b", "/.%2e;x/a", "/a/.;",
	} {
		f.Add(s, false, false)
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, in string, keepSlashes, allowEncoded bool) {
		opt := Options{KeepSlashes: keepSlashes, AllowEncodedSlash: allowEncoded}
		out, err := Normalize(in, opt)
		want := ref(in, opt)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("Normalize(%q): error %v does not match ErrBadPath", in, err)
			}
			if want != "" {
				t.Fatalf("Normalize(%q): error %v, reference gives %q", in, err, want)
			}
			return
		}
		if out != want {
			t.Fatalf("Normalize(%q) = %q, reference gives %q", in, out, want)
		}
		if out == "" || out[0] != '/' {
			t.Fatalf("Normalize(%q) = %q: not absolute", in, out)
		}
		again, err := Normalize(out, opt)
		if err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q; again = %q, %v", in, out, again, err)
		}
		if !keepSlashes && strings.Contains(out, "//") {
			t.Fatalf("Normalize(%q) = %q: repeated slash", in, out)
		}
		if strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
			strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("Normalize(%q) = %q: dot segment", in, out)
		}
		if strings.Contains(out, "%25") && !strings.Contains(in, "%25") {
			t.Fatalf("Normalize(%q) = %q: invented %%25", in, out)
		}
		if len(out) > len(in) {
			t.Fatalf("Normalize(%q) = %q: grew", in, out)
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct {
		name, path string
	}{
		{"clean", "/api/v1/users/12345/orders"},
		{"escaped", "/search/caf%C3%A9/items%20list"},
		{"dirty", "/api//v1/./users/%7e12345/../orders"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(bc.path, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

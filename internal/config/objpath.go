package config

import (
	"strconv"
	"strings"
)

// Object paths name a place in a config file the way its author reads it: the top-level key,
// then ".key" for each mapping key and "[i]" for each list item, as in
// "routes[2].match[0].path". A key that is not a plain word (a header name with a dot, say) is
// written quoted in brackets: `requestHeaders.set["x.trace"]`.

// pathKey returns the path of key inside the mapping at parent.
func pathKey(parent, key string) string {
	switch {
	case !isPlainKey(key):
		return parent + "[" + strconv.Quote(key) + "]"
	case parent == "":
		return key
	default:
		return parent + "." + key
	}
}

// pathIndex returns the path of item i of the list at parent.
func pathIndex(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// isPlainKey reports whether k can be written unquoted in a path.
func isPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// segments returns the offsets at which the segments of p start: ".key", "[i]", `["key"]`, or
// the first key. A malformed remainder is taken as one last segment.
func segments(p string) []int {
	var starts []int
	for i := 0; i < len(p); {
		starts = append(starts, i)
		j := i
		if p[j] == '.' {
			j++
		}
		switch {
		case strings.HasPrefix(p[j:], `["`):
			q, err := strconv.QuotedPrefix(p[j+1:])
			if err != nil || !strings.HasPrefix(p[j+1+len(q):], "]") {
				return starts
			}
			j += len(q) + 2
		case j < len(p) && p[j] == '[':
			k := strings.IndexByte(p[j:], ']')
			if k < 0 {
				return starts
			}
			j += k + 1
		default:
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
		}
		i = j
	}
	return starts
}

// parentPath returns the path that p is directly inside, and false when p is the root.
func parentPath(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	s := segments(p)
	return p[:s[len(s)-1]], true
}

// splitObject splits p into the path of its top-level object ("routes[2]", "admin") and the rest
// ("backends[1].service").
func splitObject(p string) (obj, rest string) {
	if p == "" {
		return "", ""
	}
	s := append(segments(p), len(p))
	end := s[1]
	// The index of a top-level list item belongs to the object: "routes[2]".
	if len(s) > 2 && strings.HasPrefix(p[end:], "[") && !strings.HasPrefix(p[end:], `["`) {
		end = s[2]
	}
	return p[:end], strings.TrimPrefix(p[end:], ".")
}

// objectKind returns the word for one item of the top-level list named list, or "".
func objectKind(list string) string {
	switch list {
	case "listeners":
		return "listener"
	case "routes":
		return "route"
	case "services":
		return "service"
	case "authenticators":
		return "authenticator"
	case "consumers":
		return "consumer"
	case "plans":
		return "plan"
	}
	return ""
}

// isObjectPath reports whether p is an item of a top-level list, such as "routes[2]".
func isObjectPath(p string) bool {
	obj, rest := splitObject(p)
	if obj != p || rest != "" {
		return false
	}
	i := strings.IndexByte(p, '[')
	if i < 0 || objectKind(p[:i]) == "" {
		return false
	}
	_, err := strconv.Atoi(p[i+1 : len(p)-1])
	return err == nil
}

// objectLabel names the object at path obj for error messages: `route "users-api"` when the
// object has a name, "routes[2]" when it has none, "admin" for a top-level section, and "" for
// the root or a top-level scalar such as version.
func objectLabel(obj, name string) string {
	switch obj {
	case "admin", "accessLog", "telemetry":
		return obj
	}
	if !isObjectPath(obj) {
		return ""
	}
	if name == "" {
		return obj
	}
	return objectKind(obj[:strings.IndexByte(obj, '[')]) + " " + strconv.Quote(name)
}

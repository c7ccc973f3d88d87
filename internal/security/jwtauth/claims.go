package jwtauth

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Claims holds every claim of a verified token, as decoded from its JSON payload:
// strings are string, booleans bool, null nil, arrays []any, objects map[string]any,
// and numbers json.Number (so large numeric IDs keep all their digits).
type Claims map[string]any

// String returns a claim as a string. Strings are returned as they are, numbers in the
// form they had in the token ("exp" gives e.g. "1700000000"), booleans as "true" or
// "false". Missing claims, null, arrays (even with one element) and objects give
// ("", false): use Strings for list claims such as "aud".
func (c Claims) String(name string) (string, bool) {
	switch v := c[name].(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// Strings returns a claim as a list of strings. A string claim gives a one-element list
// (it is not split: "scope":"a b" gives ["a b"]; see Fields). An array gives its
// elements if every one is a string. Anything else, including a missing claim or an
// array holding a non-string, gives nil.
func (c Claims) Strings(name string) []string {
	switch v := c[name].(type) {
	case string:
		return []string{v}
	case []string:
		return append([]string(nil), v...)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// Fields is Strings, except that a string claim is split on white space, as the OAuth
// "scope" claim requires ("scope":"read write" gives ["read","write"]). Array elements
// are not split.
func (c Claims) Fields(name string) []string {
	if s, ok := c[name].(string); ok {
		return strings.Fields(s)
	}
	return c.Strings(name)
}

// Time returns a NumericDate claim ("exp", "nbf", "iat", "auth_time", ...) as a time.
// Fractional seconds are kept. Non-numeric and non-finite values give (time.Time{}, false).
func (c Claims) Time(name string) (time.Time, bool) {
	var f float64
	switch v := c[name].(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return time.Unix(i, 0), true
		}
		x, err := v.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = x
	case float64:
		f = v
	case int64:
		return time.Unix(v, 0), true
	case int:
		return time.Unix(int64(v), 0), true
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestClaimsString(t *testing.T) {
	c := Claims{
		"s": "text", "n": json.Number("12345678901234567890"), "f": 1.5, "i": 7,
		"b": false, "null": nil, "list": []any{"one"}, "obj": map[string]any{"a": "b"},
	}
	cases := []struct {
		name string
		want string
		ok   bool
	}{
		{"s", "text", true},
		{"n", "12345678901234567890", true},
		{"f", "1.5", true},
		{"i", "7", true},
		{"b", "false", true},
		{"null", "", false},
		{"list", "", false},
		{"obj", "", false},
		{"missing", "", false},
	}
	for _, tc := range cases {
		got, ok := c.String(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("String(%q) = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClaimsStringsAndFields(t *testing.T) {
	c := Claims{
		"aud": []any{"a", "b"}, "one": "solo", "scope": "read  write\tadmin",
		"mixed": []any{"a", json.Number("1")}, "num": json.Number("3"), "empty": []any{},
		"typed": []string{"x", "y"},
	}
	cases := []struct {
		name            string
		strings, fields []string
	}{
		{"aud", []string{"a", "b"}, []string{"a", "b"}},
		{"one", []string{"solo"}, []string{"solo"}},
		{"scope", []string{"read  write\tadmin"}, []string{"read", "write", "admin"}},
		{"mixed", nil, nil},
		{"num", nil, nil},
		{"empty", []string{}, []string{}},
		{"typed", []string{"x", "y"}, []string{"x", "y"}},
		{"missing", nil, nil},
	}
	for _, tc := range cases {
		if got := c.Strings(tc.name); !slices.Equal(got, tc.strings) || (got == nil) != (tc.strings == nil) {
			t.Errorf("Strings(%q) = %#v, want %#v", tc.name, got, tc.strings)
		}
		if got := c.Fields(tc.name); !slices.Equal(got, tc.fields) {
			t.Errorf("Fields(%q) = %#v, want %#v", tc.name, got, tc.fields)
		}
	}
}

func TestClaimsTime(t *testing.T) {
	c := Claims{
		"exp": json.Number("1800000000"), "frac": json.Number("1800000000.25"), "f": 1800000000.5,
		"s": "1800000000", "huge": json.Number("1e300"), "bad": json.Number("x"),
	}
	if got, ok := c.Time("exp"); !ok || !got.Equal(t0) {
		t.Errorf("exp = %v, %v", got, ok)
	}
	if got, ok := c.Time("frac"); !ok || !got.Equal(t0.Add(250*time.Millisecond)) {
		t.Errorf("frac = %v, %v", got, ok)
	}
	if got, ok := c.Time("f"); !ok || !got.Equal(t0.Add(500*time.Millisecond)) {
		t.Errorf("f = %v, %v", got, ok)
	}
	for _, name := range []string{"s", "huge", "bad", "missing"} {
		if _, ok := c.Time(name); ok {
			t.Errorf("Time(%q) accepted", name)
		}
	}
}

func TestReasonCode(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range reasons {
		code := ReasonCode(refuse(r.err, "detail"))
		if code != r.code || seen[code] {
			t.Errorf("ReasonCode(%v) = %q", r.err, code)
		}
		seen[code] = true
		if ReasonCode(fmt.Errorf("wrapped: %w", r.err)) != r.code {
			t.Errorf("ReasonCode does not see through wrapping for %v", r.err)
		}
	}
	if ReasonCode(nil) != "" || ReasonCode(errors.New("other")) != "invalid_token" {
		t.Error("ReasonCode of nil or foreign errors")
	}
}

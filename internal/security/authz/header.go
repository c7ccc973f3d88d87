package authz

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// headerCond is one compiled HeaderMatch.
type headerCond struct {
	name    string
	value   string
	re      *regexp.Regexp
	present bool
}

// compileHeader compiles a HeaderMatch. It refuses one that sets more than one of Value, Regex
// and Present; one that sets none requires an empty value.
func compileHeader(m *config.HeaderMatch) (headerCond, error) {
	if m.Name == "" {
		return headerCond{}, errors.New("name is required")
	}
	n := 0
	if m.Value != "" {
		n++
	}
	if m.Regex != "" {
		n++
	}
	if m.Present {
		n++
	}
	if n > 1 {
		return headerCond{}, fmt.Errorf("%q: set only one of value, regex and present", m.Name)
	}
	c := headerCond{name: m.Name, value: m.Value, present: m.Present}
	if m.Regex != "" {
		re, err := anchored(m.Regex)
		if err != nil {
			return headerCond{}, fmt.Errorf("%q regex: %w", m.Name, err)
		}
		c.re = re
	}
	return c, nil
}

// holds reports whether any field of h named c.name satisfies the condition.
func (c *headerCond) holds(h httpmsg.Header) bool {
	for i := range h {
		if !httpmsg.EqualFold(h[i].Name, c.name) {
			continue
		}
		switch {
		case c.present:
			return true
		case c.re != nil:
			if c.re.MatchString(h[i].Value) {
				return true
			}
		case h[i].Value == c.value:
			return true
		}
	}
	return false
}

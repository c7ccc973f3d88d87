package record

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Filter selects records; empty fields match everything.
type Filter struct {
	// Service, Route and Consumer match those fields exactly.
	Service  string `json:"service,omitempty"`
	Route    string `json:"route,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	// Status is an exact status ("503") or a class ("5xx", "4xx").
	Status string `json:"status,omitempty"`
	// Proxy matches the proxy's name.
	Proxy string `json:"proxy,omitempty"`
}

// Check reports a malformed filter.
func (f *Filter) Check() error {
	if f == nil || f.Status == "" {
		return nil
	}
	if len(f.Status) == 3 && strings.HasSuffix(f.Status, "xx") && f.Status[0] >= '1' && f.Status[0] <= '5' {
		return nil
	}
	if n, err := strconv.Atoi(f.Status); err != nil || n < 100 || n > 599 {
		return fmt.Errorf("record: status filter %q: want a status (503) or a class (5xx)", f.Status)
	}
	return nil
}

// Match reports whether r passes the filter. A nil filter matches everything.
func (f *Filter) Match(r *Record) bool {
	if f == nil {
		return true
	}
	switch {
	case f.Service != "" && f.Service != r.Service,
		f.Route != "" && f.Route != r.Route,
		f.Consumer != "" && f.Consumer != r.Consumer,
		f.Proxy != "" && f.Proxy != r.Proxy:
		return false
	}
	if f.Status == "" {
		return true
	}
	if strings.HasSuffix(f.Status, "xx") {
		return r.Status/100 == int(f.Status[0]-'0')
	}
	return strconv.Itoa(r.Status) == f.Status
}

// FilterFromQuery reads a filter from the query parameters service, route, consumer, status and
// proxy, and checks it.
func FilterFromQuery(q url.Values) (*Filter, error) {
	f := &Filter{Service: q.Get("service"), Route: q.Get("route"), Consumer: q.Get("consumer"),
		Status: q.Get("status"), Proxy: q.Get("proxy")}
	return f, f.Check()
}

// Query returns the filter as query parameters, the ones FilterFromQuery reads.
func (f *Filter) Query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"service": f.Service, "route": f.Route, "consumer": f.Consumer, "status": f.Status, "proxy": f.Proxy} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

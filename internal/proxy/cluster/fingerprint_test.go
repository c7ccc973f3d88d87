package cluster

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// fullService returns a service with every pointer set and every slice holding one element, so
// that every leaf field of config.Service is reachable.
func fullService() *config.Service {
	return &config.Service{
		Name:         "users",
		Protocol:     config.UpstreamHTTP1,
		Endpoints:    []config.Endpoint{{Address: "10.0.0.1:80", Weight: 1}},
		LoadBalancer: config.LoadBalancer{Policy: config.LBRingHash, Hash: &config.HashOn{Header: "X-User"}},
		HealthCheck: &config.HealthCheck{
			HTTP:               &config.HTTPHealthCheck{Path: "/", Host: "h", ExpectedStatuses: []int{200}},
			TCP:                &config.TCPHealthCheck{},
			Interval:           5 * time.Second,
			Timeout:            2 * time.Second,
			UnhealthyThreshold: 3,
			HealthyThreshold:   2,
		},
		Pool: config.ConnectionPool{MaxIdlePerEndpoint: 64, MaxConnsPerEndpoint: 1024, IdleTimeout: 90 * time.Second, ConnectTimeout: 5 * time.Second},
	}
}

// leaves calls f with a setter for every leaf field (string, number, bool) under v.
func leaves(path string, v reflect.Value, f func(path string, set func())) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			leaves(path, v.Elem(), f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				leaves(path+"."+v.Type().Field(i).Name, v.Field(i), f)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			leaves(path+"[]", v.Index(i), f)
		}
	case reflect.String:
		f(path, func() { v.SetString(v.String() + "x") })
	case reflect.Bool:
		f(path, func() { v.SetBool(!v.Bool()) })
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32:
		f(path, func() {
			if v.CanInt() {
				v.SetInt(v.Int() + 1)
			} else {
				v.SetUint(v.Uint() + 1)
			}
		})
	}
}

func TestFingerprintCoversEveryField(t *testing.T) {
	base := Fingerprint(fullService())
	if base != Fingerprint(fullService()) {
		t.Fatal("fingerprint is not deterministic")
	}
	n := 0
	leaves("Service", reflect.ValueOf(fullService()), func(path string, _ func()) {
		n++
		svc := fullService()
		// Find the same leaf in a fresh copy and change it.
		leaves("Service", reflect.ValueOf(svc), func(p string, set func()) {
			if p == path {
				set()
			}
		})
		if Fingerprint(svc) == base {
			t.Errorf("changing %s does not change the fingerprint", path)
		}
	})
	if n < 15 {
		t.Fatalf("only %d leaf fields visited", n)
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		desc   string
		change func(*config.Service)
		equal  bool
	}{
		{desc: "unchanged", change: func(*config.Service) {}, equal: true},
		{desc: "endpoint added", change: func(s *config.Service) {
			s.Endpoints = append(s.Endpoints, config.Endpoint{Address: "10.0.0.2:80", Weight: 1})
		}},
		{desc: "endpoints reordered", change: func(s *config.Service) {
			s.Endpoints = append([]config.Endpoint{{Address: "10.0.0.2:80", Weight: 1}}, s.Endpoints...)
		}},
		{desc: "health check removed", change: func(s *config.Service) { s.HealthCheck = nil }},
		{desc: "hash removed", change: func(s *config.Service) { s.LoadBalancer.Hash = nil }},
		{desc: "equal but separately allocated", change: func(s *config.Service) {
			hc := *s.HealthCheck
			s.HealthCheck = &hc
			s.Endpoints = append([]config.Endpoint(nil), s.Endpoints...)
		}, equal: true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			a, b := fullService(), fullService()
			tt.change(b)
			if got := Equal(a, b); got != tt.equal {
				t.Fatalf("Equal = %v, want %v", got, tt.equal)
			}
		})
	}
	if Equal(nil, fullService()) || !Equal(nil, nil) {
		t.Fatal("nil services compare wrongly")
	}
}

func TestClusterFingerprint(t *testing.T) {
	svc := fullService()
	svc.HealthCheck.TCP = nil
	c := mustNew(t, svc, Options{})
	if c.Fingerprint() != Fingerprint(svc) {
		t.Fatal("Cluster.Fingerprint differs from Fingerprint of its service")
	}
}

func TestSettingsFingerprintCoversEveryFieldButEndpoints(t *testing.T) {
	base := SettingsFingerprint(fullService())
	leaves("Service", reflect.ValueOf(fullService()), func(path string, _ func()) {
		svc := fullService()
		leaves("Service", reflect.ValueOf(svc), func(p string, set func()) {
			if p == path {
				set()
			}
		})
		endpoint := strings.HasPrefix(path, "Service.Endpoints")
		if changed := SettingsFingerprint(svc) != base; changed == endpoint {
			t.Errorf("changing %s changes the settings fingerprint: %v", path, changed)
		}
	})
	svc := fullService()
	svc.Endpoints = nil
	if SettingsFingerprint(svc) != base {
		t.Error("removing every endpoint changes the settings fingerprint")
	}
}

package config

import (
	"reflect"
	"testing"
	"time"
)

func TestApplyDefaults(t *testing.T) {
	zero := 0
	tests := []struct {
		desc string
		in   Config
		want Config
	}{
		{
			desc: "empty config",
			in:   Config{},
			want: Config{Admin: Admin{Address: "127.0.0.1:9901", AuditLog: "off"}, AccessLog: AccessLog{Path: "stdout"}},
		},
		{
			desc: "every default",
			in: Config{
				Listeners: []Listener{{Name: "l", TLS: &ListenerTLS{}}},
				Routes: []Route{
					{Name: "r", Backends: []Backend{{Service: "s"}}},
					{
						Name:    "answers",
						Match:   []RouteMatch{{Method: "GET"}},
						Filters: []Filter{{Redirect: &Redirect{}}, {Respond: &Respond{}}, {Respond: &Respond{Body: "hi"}}},
					},
				},
				Services: []Service{{
					Name:        "s",
					Endpoints:   []Endpoint{{Address: "a:1"}},
					HealthCheck: &HealthCheck{HTTP: &HTTPHealthCheck{}},
				}},
			},
			want: Config{
				Admin:     Admin{Address: "127.0.0.1:9901", AuditLog: "off"},
				AccessLog: AccessLog{Path: "stdout"},
				Listeners: []Listener{{
					Name:     "l",
					Protocol: "http",
					TLS:      &ListenerTLS{MinVersion: "1.2"},
					Timeouts: ListenerTimeouts{ReadHeader: 10 * time.Second, Idle: 60 * time.Second, Request: 5 * time.Minute},
					Limits:   ListenerLimits{MaxHeaderBytes: 65536, MaxHeaderCount: 100, MaxBodyBytes: 10 << 20, MaxConnections: 10000, MaxConcurrentStreams: 250},
				}},
				Routes: []Route{
					{
						Name:     "r",
						Match:    []RouteMatch{{Path: &PathMatch{Prefix: "/"}}},
						Backends: []Backend{{Service: "s", Weight: ptr(1)}},

						StreamIdleTimeout: ptr(5 * time.Minute),
					},
					{
						Name:  "answers",
						Match: []RouteMatch{{Method: "GET", Path: &PathMatch{Prefix: "/"}}},
						Filters: []Filter{
							{Redirect: &Redirect{Status: 302}},
							{Respond: &Respond{Status: 200}},
							{Respond: &Respond{Status: 200, Body: "hi", ContentType: "text/plain; charset=utf-8"}},
						},
						StreamIdleTimeout: ptr(5 * time.Minute),
					},
				},
				Services: []Service{{
					Name:         "s",
					Protocol:     "http1",
					Endpoints:    []Endpoint{{Address: "a:1", Weight: 1}},
					LoadBalancer: LoadBalancer{Policy: "round_robin"},
					HealthCheck: &HealthCheck{
						HTTP:               &HTTPHealthCheck{Path: "/"},
						Interval:           5 * time.Second,
						Timeout:            2 * time.Second,
						UnhealthyThreshold: 3,
						HealthyThreshold:   2,
					},
					Pool: ConnectionPool{MaxIdlePerEndpoint: 256, MaxConnsPerEndpoint: 1024, IdleTimeout: 90 * time.Second, ConnectTimeout: 5 * time.Second},
				}},
			},
		},
		{
			desc: "set values stay",
			in: Config{
				Admin:     Admin{Address: "off"},
				AccessLog: AccessLog{Path: "off"},
				Listeners: []Listener{{Protocol: "h2c", Limits: ListenerLimits{MaxBodyBytes: -1}, Timeouts: ListenerTimeouts{Idle: time.Second}}},
				Routes:    []Route{{Backends: []Backend{{Weight: &zero}}, Timeout: ptr(time.Duration(0))}},
				Services:  []Service{{Protocol: "grpc", LoadBalancer: LoadBalancer{Policy: "random"}, Pool: ConnectionPool{MaxIdlePerEndpoint: 1}}},
			},
			want: Config{
				Admin:     Admin{Address: "off", AuditLog: "off"},
				AccessLog: AccessLog{Path: "off"},
				Listeners: []Listener{{
					Protocol: "h2c",
					Timeouts: ListenerTimeouts{ReadHeader: 10 * time.Second, Idle: time.Second, Request: 5 * time.Minute},
					Limits:   ListenerLimits{MaxHeaderBytes: 65536, MaxHeaderCount: 100, MaxBodyBytes: -1, MaxConnections: 10000, MaxConcurrentStreams: 250},
				}},
				Routes: []Route{{
					Match:    []RouteMatch{{Path: &PathMatch{Prefix: "/"}}},
					Backends: []Backend{{Weight: ptr(0)}},
					Timeout:  ptr(time.Duration(0)),

					StreamIdleTimeout: ptr(5 * time.Minute),
				}},
				Services: []Service{{
					Protocol:     "grpc",
					LoadBalancer: LoadBalancer{Policy: "random"},
					Pool:         ConnectionPool{MaxIdlePerEndpoint: 1, MaxConnsPerEndpoint: 1024, IdleTimeout: 90 * time.Second, ConnectTimeout: 5 * time.Second},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c := tt.in
			ApplyDefaults(&c)
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("ApplyDefaults:\n got %+v\nwant %+v", c, tt.want)
			}
			ApplyDefaults(&c)
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("ApplyDefaults is not idempotent:\n got %+v\nwant %+v", c, tt.want)
			}
		})
	}
	ApplyDefaults(nil) // must not panic
}

func ptr[T any](v T) *T { return &v }

package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// faultMirrorErrors returns the errors of the fault and mirror validators on every route of doc
// that sets them, after the services (whose names mirror policies refer to) were checked (see
// policyErrors).
func faultMirrorErrors(t *testing.T, doc string) []string {
	return policyErrors(t, doc, func(v *validator, c *Config) {
		v.serviceList()
		for i := range c.Routes {
			r := &c.Routes[i]
			s := v.object(pathIndex("routes", i), r.Name)
			if r.Fault != nil {
				checkFault(s.key("fault"), r.Fault)
			}
			if r.Mirror != nil {
				v.checkMirror(s.key("mirror"), r.Mirror)
			}
		}
	})
}

func TestValidateFaultAndMirror(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "valid policies",
			yaml: `version: 1
routes:
  - name: delay
    fault:
      delay: {percent: 0, duration: 1h}
  - name: abort
    fault:
      abort: {percent: 100, status: 200}
  - name: both
    fault:
      header: X-Chaos
      delay: {percent: 12.5, duration: 1ms}
      abort: {percent: 0.1, status: 599}
  - name: grpc
    fault:
      header: te
      abort: {percent: 50, grpcStatus: UNAVAILABLE}
  - name: grpc-number
    fault:
      abort: {percent: 50, grpcStatus: "16"}
  - name: mirror-defaults
    mirror: {service: shadow}
  - name: mirror-all-set
    mirror: {service: shadow, percent: 0.5, maxBodyBytes: 16777216, maxInFlight: 100000}
services:
  - {name: shadow, endpoints: [{address: "127.0.0.1:18081"}]}
`,
		},
		{
			desc: "fault without delay or abort",
			yaml: `version: 1
routes:
  - name: r
    fault: {header: X-Chaos}
`,
			want: []string{`gateway.yaml:4: route "r": fault: set at least one of delay or abort`},
		},
		{
			desc: "delay",
			yaml: `version: 1
routes:
  - name: a
    fault:
      delay: {}
  - name: b
    fault:
      delay:
        percent: -1
        duration: -5s
  - name: c
    fault:
      delay: {percent: 100.5, duration: 61m}
  - name: d
    fault:
      delay: {percent: .nan, duration: 1s}
`,
			want: []string{
				`gateway.yaml:5: route "a": fault.delay.percent: required: the percentage of requests delayed, 0 to 100`,
				`gateway.yaml:5: route "a": fault.delay.duration: required: how long each request is held back, above 0`,
				`gateway.yaml:9: route "b": fault.delay.percent: -1 is not a percentage; expected a number from 0 to 100`,
				`gateway.yaml:10: route "b": fault.delay.duration: must be above 0`,
				`gateway.yaml:13: route "c": fault.delay.percent: 100.5 is not a percentage; expected a number from 0 to 100`,
				`gateway.yaml:13: route "c": fault.delay.duration: 1h1m0s is longer than the maximum of 1h`,
				`gateway.yaml:16: route "d": fault.delay.percent: NaN is not a percentage; expected a number from 0 to 100`,
			},
		},
		{
			desc: "abort",
			yaml: `version: 1
routes:
  - name: a
    fault:
      abort: {}
  - name: b
    fault:
      abort: {percent: 10, status: 503, grpcStatus: unavailable}
  - name: c
    fault:
      abort:
        percent: 101
        status: 199
  - name: d
    fault:
      abort: {percent: 10, status: 600}
  - name: e
    fault:
      abort: {percent: 10, grpcStatus: ok}
  - name: f
    fault:
      abort: {percent: 10, grpcStatus: "0"}
  - name: g
    fault:
      abort: {percent: 10, grpcStatus: "17"}
`,
			want: []string{
				`gateway.yaml:5: route "a": fault.abort.percent: required: the percentage of requests aborted, 0 to 100`,
				`gateway.yaml:5: route "a": fault.abort: set exactly one of status or grpcStatus`,
				`gateway.yaml:8: route "b": fault.abort: set exactly one of status or grpcStatus, not status and grpcStatus`,
				`gateway.yaml:12: route "c": fault.abort.percent: 101 is not a percentage; expected a number from 0 to 100`,
				`gateway.yaml:13: route "c": fault.abort.status: 199 is not a status in 200..599`,
				`gateway.yaml:16: route "d": fault.abort.status: 600 is not a status in 200..599`,
				`gateway.yaml:19: route "e": fault.abort.grpcStatus: "ok" is not a gRPC status code name (such as "unavailable") or number 1-16`,
				`gateway.yaml:22: route "f": fault.abort.grpcStatus: "0" is not a gRPC status code name (such as "unavailable") or number 1-16`,
				`gateway.yaml:25: route "g": fault.abort.grpcStatus: "17" is not a gRPC status code name (such as "unavailable") or number 1-16`,
			},
		},
		{
			desc: "header",
			yaml: `version: 1
routes:
  - name: a
    fault:
      header: "X Chaos"
      abort: {percent: 1, status: 500}
  - name: b
    fault:
      header: "X-Chaos:"
      abort: {percent: 1, status: 500}
  - name: c
    fault:
      header: Connection
      abort: {percent: 1, status: 500}
  - name: d
    fault:
      header: transfer-encoding
      abort: {percent: 1, status: 500}
  - name: e
    fault:
      header: Content-Length
      abort: {percent: 1, status: 500}
`,
			want: []string{
				`gateway.yaml:5: route "a": fault.header: "X Chaos" is not a valid header name`,
				`gateway.yaml:9: route "b": fault.header: "X-Chaos:" is not a valid header name`,
				`gateway.yaml:13: route "c": fault.header: "Connection" is removed from requests before routing, so no request would carry it`,
				`gateway.yaml:17: route "d": fault.header: "transfer-encoding" is removed from requests before routing, so no request would carry it`,
				`gateway.yaml:21: route "e": fault.header: "Content-Length" is removed from requests before routing, so no request would carry it`,
			},
		},
		{
			desc: "mirror",
			yaml: `version: 1
routes:
  - name: a
    mirror: {}
  - name: b
    mirror: {service: nope}
  - name: c
    mirror:
      service: shadow
      percent: -0.5
      maxBodyBytes: 16777217
      maxInFlight: -1
  - name: d
    mirror: {service: shadow, percent: 250, maxBodyBytes: -1, maxInFlight: 100001}
  - name: e
    mirror: {service: shadow, percent: .inf}
services:
  - {name: shadow, endpoints: [{address: "127.0.0.1:18081"}]}
`,
			want: []string{
				`gateway.yaml:4: route "a": mirror.service: required: the service that receives the copies`,
				`gateway.yaml:6: route "b": mirror.service: service "nope" is not defined`,
				`gateway.yaml:10: route "c": mirror.percent: -0.5 is not a percentage; expected a number from 0 to 100`,
				`gateway.yaml:11: route "c": mirror.maxBodyBytes: must be between 0 and 16777216`,
				`gateway.yaml:12: route "c": mirror.maxInFlight: must be between 1 and 100000`,
				`gateway.yaml:14: route "d": mirror.percent: 250 is not a percentage; expected a number from 0 to 100`,
				`gateway.yaml:14: route "d": mirror.maxBodyBytes: must be between 0 and 16777216`,
				`gateway.yaml:14: route "d": mirror.maxInFlight: must be between 1 and 100000`,
				`gateway.yaml:16: route "e": mirror.percent: +Inf is not a percentage; expected a number from 0 to 100`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := strings.Join(faultMirrorErrors(t, tt.yaml), "\n")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.ReplaceAll(want, "\n", "\n\t"))
			}
		})
	}
}

// TestFaultPercentWithoutSource: a config built in code has no file positions, so a percent of
// 0 is taken as written.
func TestFaultPercentWithoutSource(t *testing.T) {
	c := &Config{Routes: []Route{{Name: "r", Fault: &FaultPolicy{Delay: &FaultDelay{Duration: time.Second}}}}}
	v := &validator{c: c}
	checkFault(v.object("routes[0]", "r").key("fault"), c.Routes[0].Fault)
	if len(v.errs) != 0 {
		t.Errorf("got errors %v, want none", v.errs)
	}
}

func TestFaultMirrorDefaults(t *testing.T) {
	tests := []struct {
		desc string
		in   MirrorPolicy
		want MirrorPolicy
	}{
		{
			desc: "nothing set",
			in:   MirrorPolicy{Service: "s"},
			want: MirrorPolicy{Service: "s", Percent: 100, MaxBodyBytes: 65536, MaxInFlight: 100},
		},
		{
			desc: "set values stay",
			in:   MirrorPolicy{Service: "s", Percent: 5, MaxBodyBytes: 10, MaxInFlight: 1},
			want: MirrorPolicy{Service: "s", Percent: 5, MaxBodyBytes: 10, MaxInFlight: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := tt.in
			mirrorDefaults(&got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			again := got
			mirrorDefaults(&again)
			if again != got {
				t.Errorf("applying the defaults twice changed %+v to %+v", got, again)
			}
		})
	}
	f := FaultPolicy{Header: "X-Chaos", Delay: &FaultDelay{Percent: 1, Duration: time.Second}}
	want := f
	faultDefaults(&f)
	if !reflect.DeepEqual(f, want) {
		t.Errorf("faultDefaults changed %+v to %+v", want, f)
	}
}

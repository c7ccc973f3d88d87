package config

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rateLimitErrors returns the errors of the rate-limit validator on every route of doc that sets
// a policy (see policyErrors).
func rateLimitErrors(t *testing.T, doc string) []string {
	return policyErrors(t, doc, func(v *validator, c *Config) {
		for i := range c.Routes {
			if r := &c.Routes[i]; r.RateLimit != nil {
				v.rateLimit(v.object(pathIndex("routes", i), r.Name).key("rateLimit"), r.RateLimit)
			}
		}
	})
}

func TestValidateRateLimit(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "valid local, global and both",
			yaml: `version: 1
routes:
  - name: local
    rateLimit:
      local: {rate: 10}
  - name: global
    rateLimit:
      global: {redis: "127.0.0.1:6379", rate: 0.5, burst: 0, key: {clientIP: true}, db: 15, passwordEnv: REDIS_PASSWORD_1, timeout: 5s, failOpen: true}
  - name: both
    rateLimit:
      local: {rate: 1000, burst: 50, key: {header: X-Api-Key}, maxKeys: 1}
      global: {redis: "redis.internal:6380", rate: 100, key: {header: x-tenant}}
`,
		},
		{
			desc: "neither local nor global",
			yaml: `version: 1
routes:
  - name: r
    rateLimit: {}
`,
			want: []string{`gateway.yaml:4: route "r": rateLimit: set at least one of local or global`},
		},
		{
			desc: "local limit",
			yaml: `version: 1
routes:
  - name: a
    rateLimit:
      local: {burst: -1, maxKeys: -5}
  - name: b
    rateLimit:
      local:
        rate: -2.5
        key: {clientIP: true, header: "X Bad"}
  - name: c
    rateLimit:
      local: {rate: .inf}
  - name: d
    rateLimit:
      local: {rate: .nan, key: {header: "X-Ok:"}}
`,
			want: []string{
				`gateway.yaml:5: route "a": rateLimit.local.rate: required: the sustained rate in requests per second, above 0`,
				`gateway.yaml:5: route "a": rateLimit.local.burst: must not be negative`,
				`gateway.yaml:5: route "a": rateLimit.local.maxKeys: must be at least 1`,
				`gateway.yaml:9: route "b": rateLimit.local.rate: -2.5 is not a rate; expected a finite number of requests per second above 0`,
				`gateway.yaml:10: route "b": rateLimit.local.key: set at most one of clientIP, header and consumer`,
				`gateway.yaml:10: route "b": rateLimit.local.key.header: "X Bad" is not a valid header name`,
				`gateway.yaml:13: route "c": rateLimit.local.rate: +Inf is not a rate; expected a finite number of requests per second above 0`,
				`gateway.yaml:16: route "d": rateLimit.local.rate: NaN is not a rate; expected a finite number of requests per second above 0`,
				`gateway.yaml:16: route "d": rateLimit.local.key.header: "X-Ok:" is not a valid header name`,
			},
		},
		{
			desc: "global limit",
			yaml: `version: 1
routes:
  - name: a
    rateLimit:
      global: {rate: 1}
  - name: b
    rateLimit:
      global:
        redis: "127.0.0.1"
        passwordEnv: "1PASS"
        db: 16
        rate: 5
        burst: -3
        key: {clientIP: true, header: X-Key}
        timeout: -1s
  - name: c
    rateLimit:
      global: {redis: "bad_host:6379", passwordEnv: "REDIS-PASS", db: -1, rate: 1, timeout: 6s}
  - name: d
    rateLimit:
      global: {redis: "127.0.0.1:0", rate: 1, passwordEnv: "A B"}
`,
			want: []string{
				`gateway.yaml:5: route "a": rateLimit.global.redis: required: the host:port of the Redis server`,
				`gateway.yaml:9: route "b": rateLimit.global.redis: "127.0.0.1" is not a host:port address`,
				`gateway.yaml:10: route "b": rateLimit.global.passwordEnv: "1PASS" is not a valid environment variable name`,
				`gateway.yaml:11: route "b": rateLimit.global.db: 16 is not a database number in 0..15`,
				`gateway.yaml:13: route "b": rateLimit.global.burst: must not be negative`,
				`gateway.yaml:14: route "b": rateLimit.global.key: set at most one of clientIP, header and consumer`,
				`gateway.yaml:15: route "b": rateLimit.global.timeout: must be above 0`,
				`gateway.yaml:18: route "c": rateLimit.global.redis: "bad_host" is not a valid host name or IP address`,
				`gateway.yaml:18: route "c": rateLimit.global.passwordEnv: "REDIS-PASS" is not a valid environment variable name`,
				`gateway.yaml:18: route "c": rateLimit.global.db: -1 is not a database number in 0..15`,
				`gateway.yaml:18: route "c": rateLimit.global.timeout: 6s is longer than the maximum of 5s`,
				`gateway.yaml:21: route "d": rateLimit.global.redis: port "0" must be a number in 1..65535`,
				`gateway.yaml:21: route "d": rateLimit.global.passwordEnv: "A B" is not a valid environment variable name`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := strings.Join(rateLimitErrors(t, tt.yaml), "\n")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.ReplaceAll(want, "\n", "\n\t"))
			}
		})
	}
}

func TestDefaultRateLimit(t *testing.T) {
	tests := []struct {
		desc string
		in   RateLimitPolicy
		want RateLimitPolicy
	}{
		{
			desc: "nothing set",
			in:   RateLimitPolicy{},
			want: RateLimitPolicy{},
		},
		{
			desc: "burst is the rate rounded up",
			in: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 2.1},
				Global: &GlobalRateLimit{Redis: "r:1", Rate: 100},
			},
			want: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 2.1, Burst: 3, MaxKeys: 100000},
				Global: &GlobalRateLimit{Redis: "r:1", Rate: 100, Burst: 100, Timeout: 50 * time.Millisecond},
			},
		},
		{
			desc: "burst at least 1",
			in: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 0.01},
				Global: &GlobalRateLimit{Rate: 0},
			},
			want: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 0.01, Burst: 1, MaxKeys: 100000},
				Global: &GlobalRateLimit{Rate: 0, Burst: 1, Timeout: 50 * time.Millisecond},
			},
		},
		{
			desc: "odd rates",
			in: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: math.NaN()},
				Global: &GlobalRateLimit{Rate: math.Inf(1)},
			},
			want: RateLimitPolicy{
				Local:  &LocalRateLimit{Burst: 1, MaxKeys: 100000},
				Global: &GlobalRateLimit{Rate: math.Inf(1), Burst: math.MaxInt32, Timeout: 50 * time.Millisecond},
			},
		},
		{
			desc: "set values stay",
			in: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 5, Burst: 7, MaxKeys: 10},
				Global: &GlobalRateLimit{Rate: 5, Burst: 9, Timeout: time.Second},
			},
			want: RateLimitPolicy{
				Local:  &LocalRateLimit{Rate: 5, Burst: 7, MaxKeys: 10},
				Global: &GlobalRateLimit{Rate: 5, Burst: 9, Timeout: time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := tt.in
			defaultRateLimit(&got)
			if got.Local != nil && math.IsNaN(got.Local.Rate) {
				got.Local.Rate = 0 // NaN never equals itself
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got local %+v global %+v\nwant local %+v global %+v", got.Local, got.Global, tt.want.Local, tt.want.Global)
			}
			var again RateLimitPolicy
			if got.Local != nil {
				l := *got.Local
				again.Local = &l
			}
			if got.Global != nil {
				g := *got.Global
				again.Global = &g
			}
			defaultRateLimit(&again)
			if !reflect.DeepEqual(again, got) {
				t.Errorf("applying the defaults twice changed %+v", got)
			}
		})
	}
}

// TestRateLimitExample runs the rate-limit defaults and validator over the example config.
func TestRateLimitExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "ratelimit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := &validator{c: c}
	n := 0
	for i := range c.Routes {
		if r := &c.Routes[i]; r.RateLimit != nil {
			n++
			defaultRateLimit(r.RateLimit)
			v.rateLimit(v.object(pathIndex("routes", i), r.Name).key("rateLimit"), r.RateLimit)
		}
	}
	if err := v.errs.err(); err != nil || n == 0 {
		t.Fatalf("%d routes with a rate limit; errors: %v", n, err)
	}
}

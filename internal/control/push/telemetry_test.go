package push

import (
	"testing"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// TestTelemetryResource checks that the config's telemetry block is one resource sent to every
// scope, and that a proxy's snapshot turns it back into the block.
func TestTelemetryResource(t *testing.T) {
	yaml := meshYAML + "telemetry:\n  tracing: {endpoint: \"127.0.0.1:4317\", sampleRate: 0.5}\n"
	ix, errs := buildIndex(mkState(t, 1, mustConfig(t, yaml), users(1)), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	key := Key(TypeTelemetry, TelemetryName)
	nodes := []*controlv1.Node{
		gatewayNode("gw"),
		{Id: "s", Role: RoleSidecar, Service: "users", Namespace: "shop"},
		{Id: "s", Role: RoleSidecar, Service: "billing", Namespace: "shop", Calls: []string{"missing"}},
	}
	for _, n := range nodes {
		sc, err := scopeOf(n)
		if err != nil {
			t.Fatal(err)
		}
		res := sc.resources(ix)
		if res[key] == nil {
			t.Fatalf("scope %s has no %s", sc.key(), key)
		}
		cfg, err := (&Snapshot{Resources: res}).Config()
		if err != nil {
			t.Fatal(err)
		}
		tr := cfg.Telemetry.Tracing
		if tr == nil || tr.Endpoint != "127.0.0.1:4317" || *tr.SampleRate != 0.5 || tr.Protocol != "grpc" {
			t.Fatalf("scope %s: telemetry %+v", sc.key(), cfg.Telemetry)
		}
	}
	// Without the block there is no resource.
	ix, _ = buildIndex(mkState(t, 2, mustConfig(t, meshYAML), users(1)), nil)
	if ix.byKey[key] != nil {
		t.Fatalf("%s sent without a telemetry block", key)
	}
	// A misnamed or unknown-field resource is refused.
	for _, r := range []*controlv1.Resource{
		{Type: TypeTelemetry, Name: "other", Body: []byte(`{}`)},
		{Type: TypeTelemetry, Name: TelemetryName, Body: []byte(`{"tracing":{"nope":1}}`)},
	} {
		if _, err := (&Snapshot{Resources: map[string]*controlv1.Resource{Key(r.Type, r.Name): r}}).Config(); err == nil {
			t.Errorf("resource %s %s accepted", Key(r.Type, r.Name), r.Body)
		}
	}
}

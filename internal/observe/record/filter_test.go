package record

import "testing"

func TestFilterQueryRoundTrip(t *testing.T) {
	f := &Filter{Service: "orders.shop", Route: "r", Consumer: "acme", Status: "5xx", Proxy: "p"}
	got, err := FilterFromQuery(f.Query())
	if err != nil || *got != *f {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := FilterFromQuery(map[string][]string{"status": {"9xx"}}); err == nil {
		t.Fatal("a bad status class was accepted")
	}
	if q := (&Filter{}).Query(); len(q) != 0 {
		t.Fatalf("an empty filter gives %v", q)
	}
}

package dashboard

import (
	"net/http"
	"testing"
)

func TestOwns(t *testing.T) {
	cases := []struct {
		path string
		want bool
	}{
		{"/dashboard/", true},
		{"/dashboard", true},
		{"/dashboard/api/top", true},
		{"/dashboard/../v1/config", false},
		{"/dashboardx", false},
		{"/v1/top", false},
	}
	for _, tc := range cases {
		r, err := http.NewRequest("GET", "http://127.0.0.1"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.Path = tc.path
		if got := Owns(r); got != tc.want {
			t.Errorf("Owns(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

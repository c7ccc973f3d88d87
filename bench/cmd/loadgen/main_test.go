package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestOpenLoop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = io.WriteString(w, "ok\n")
		case "/missing":
			http.NotFound(w, r)
		default:
			_, _ = io.WriteString(w, "ok\n")
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/", "/chunked"} {
		res, err := run(srv.URL+path, 1000, 4, 300*time.Millisecond, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Scheduled != 300 || res.Completed != 300 || res.Errors != 0 || res.Non2xx != 0 {
			t.Fatalf("%s: %+v", path, res)
		}
		if res.P50us <= 0 || res.P99us < res.P50us || res.MaxUs < res.P999us {
			t.Fatalf("%s: percentiles %+v", path, res)
		}
	}
	res, err := run(srv.URL+"/missing", 1000, 2, 50*time.Millisecond, time.Second)
	if err != nil || res.Non2xx != res.Completed || res.Completed == 0 {
		t.Fatalf("404s: %+v %v", res, err)
	}
}

func TestTargetValidation(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:1/", "http://192.0.2.1/", "::"} {
		if _, err := parseTarget(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	tg, err := parseTarget("http://127.0.0.1:18110/16k?x=1")
	if err != nil || tg.addr != "127.0.0.1:18110" || !strings.HasPrefix(string(tg.req), "GET /16k?x=1 HTTP/1.1\r\nHost: 127.0.0.1:18110\r\n") {
		t.Fatalf("%q %v", tg.req, err)
	}
}

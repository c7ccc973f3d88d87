// Package demo holds what `meshgate up` runs: the local mesh (a control plane, the gateway on it,
// and the demo services web, orders and payments with sidecars), its embedded config, and two
// small static services on loopback behind the gateway's edge routes.
package demo

import (
	"context"
	"encoding/json"

	"fmt"
	"net"
	"net/http"
	"time"
)

// Addresses are where the demo's parts listen.
type Addresses struct {
	// Gateway is the gateway's public listener.
	Gateway string
	// Admin is the admin API.
	Admin string
	// Users1 and Users2 are the two instances of the users service.
	Users1, Users2 string
	// Echo is the echo service.
	Echo string
}

// Services are the running demo services.
type Services struct {
	servers []*http.Server
	// Addrs holds the bound addresses (Gateway and Admin as requested).
	Addrs Addresses
}

// Start binds the demo services on loopback ports chosen by the kernel.
func Start(gatewayAddr, adminAddr string) (*Services, error) {
	s := &Services{Addrs: Addresses{Gateway: gatewayAddr, Admin: adminAddr}}
	var err error
	if s.Addrs.Users1, err = s.serve(usersHandler("users-1")); err != nil {
		return nil, err
	}
	if s.Addrs.Users2, err = s.serve(usersHandler("users-2")); err != nil {
		s.Close()
		return nil, err
	}
	if s.Addrs.Echo, err = s.serve(http.HandlerFunc(echo)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Services) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// Close stops the demo services.
func (s *Services) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		_ = srv.Shutdown(ctx)
	}
}

type user struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

var users = []user{{1, "Ada Lovelace"}, {2, "Grace Hopper"}, {3, "Barbara Liskov"}}

func usersHandler(instance string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, instance, 200, users) })
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, u := range users {
			if fmt.Sprint(u.ID) == r.PathValue("id") {
				writeJSON(w, instance, 200, u)
				return
			}
		}
		writeJSON(w, instance, 404, map[string]string{"error": "no such user"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, instance string, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Served-By", instance)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// echo answers with the request it received.
func echo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, "echo", 200, map[string]any{
		"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "host": r.Host,
		"headers": r.Header, "proto": r.Proto,
	})
}

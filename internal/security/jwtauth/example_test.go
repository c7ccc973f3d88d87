package jwtauth_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/security/jwtauth"
)

// A bearer-token middleware: every refusal becomes a 401 carrying a reason code.
func Example() {
	v, err := jwtauth.New(jwtauth.Options{
		JWKSURL:    "https://idp.example/.well-known/jwks.json",
		Algorithms: []string{"RS256", "ES256"},
		Issuer:     "https://idp.example",
		Audiences:  []string{"meshgate"},
		Leeway:     30 * time.Second,
		Logger:     slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_ = v.Start(ctx) // keeps retrying in the background if the identity provider is down
	defer v.Close()

	_ = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				http.Error(w, "missing_token", http.StatusUnauthorized)
				return
			}
			claims, err := v.Verify(token)
			if err != nil {
				http.Error(w, jwtauth.ReasonCode(err), http.StatusUnauthorized)
				return
			}
			if sub, ok := claims.String("sub"); ok {
				r.Header.Set("X-Subject", sub)
			}
			next.ServeHTTP(w, r)
		})
	}
}

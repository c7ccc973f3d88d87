// Package acmetest tests the gateway's automatic certificates (listener tls.acme) end to end,
// in process, against a real ACME server (pebble) on loopback.
//
// It is a package of its own because certmagic, which the gateway obtains certificates with,
// keeps goroutines that no API stops (a rate limiter per CA account for the life of the
// process, and a lock refresher that outlives its lock by a few seconds); the gateway package's
// tests tolerate no leftover goroutine, these tests ignore exactly those two.
package acmetest

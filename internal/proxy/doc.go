// Package proxy holds the core types of meshgate's data-plane engine: the Exchange that carries one
// request through the engine, the Handler and Middleware shapes every step has, the ResponseWriter
// that downstream transports implement, and the typed Error that carries a status and a stable
// reason code to the one place that writes error responses.
//
// Every role (edge gateway, sidecar) runs the same engine; they differ only in the listeners, routes
// and policies they are given.
package proxy

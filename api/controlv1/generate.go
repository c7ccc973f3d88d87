// Package controlv1 holds the generated code of meshgate's control-plane protocol
// (control.proto): the Identity, Registry and Discovery gRPC services.
package controlv1

//go:generate protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative control.proto

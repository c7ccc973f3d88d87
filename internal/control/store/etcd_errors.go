package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fail turns an etcd client error of operation op into the store's errors: contract outcomes
// pass through; an etcd that cannot be reached or does not answer in time (or cannot write: no
// leader, no space) wraps ErrUnavailable; the caller's own cancellation stays a context error.
func (e *Etcd) fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isContract(err):
		return err
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("store: etcd %s: %w", op, ctx.Err())
	case e.ctx.Err() != nil:
		return fmt.Errorf("store: etcd %s: store closed: %w: %w", op, ErrUnavailable, err)
	case unavailable(err):
		return fmt.Errorf("store: etcd %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: etcd %s: %w", op, err)
}

// unavailable reports whether err means etcd could not serve the request now.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	switch grpcCode(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	for _, e := range []error{rpctypes.ErrNoLeader, rpctypes.ErrNotCapable, rpctypes.ErrStopped,
		rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrUnhealthy, rpctypes.ErrLeaderChanged, rpctypes.ErrNoSpace} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// grpcCode returns the gRPC code an etcd client error carries, or codes.Unknown.
func grpcCode(err error) codes.Code {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code()
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

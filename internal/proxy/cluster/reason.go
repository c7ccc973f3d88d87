package cluster

import "github.com/meshgate/meshgate/internal/proxy"

// ReasonCircuitOpen is the reason code of a request a circuit breaker refused (503): a threshold
// of the service was reached, or the breaker is open after consecutive failures. It is
// proxy.ReasonCircuitOpen.
const ReasonCircuitOpen = proxy.ReasonCircuitOpen

package cluster

// ReasonCircuitOpen is the reason code of a request a circuit breaker refused (503): a threshold
// of the service was reached, or the breaker is open after consecutive failures.
const ReasonCircuitOpen = "circuit_open"

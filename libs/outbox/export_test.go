package outbox

import "github.com/prometheus/client_golang/prometheus"

// FailuresForTest exposes the failure counter to the external test package.
func (r *Relay) FailuresForTest() prometheus.Counter { return r.failures }

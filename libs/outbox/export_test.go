package outbox

import "github.com/prometheus/client_golang/prometheus"

// FailuresForTest exposes the failure counter to the external test package.
func (r *Relay) FailuresForTest() prometheus.Counter { return r.failures }

// PacedForTest exposes the pacing counter to the external test package.
func (r *Relay) PacedForTest() prometheus.Counter { return r.paced }

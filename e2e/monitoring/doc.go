// Package monitoring holds the checks of what SREs are given in deploy/ and k8s/base/monitoring/:
// every alert has a runbook, the Kubernetes PrometheusRule is the dev rules file, and every
// dashboard query names metrics that something really exports.
package monitoring

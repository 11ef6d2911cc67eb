#!/usr/bin/env bash
# Prints k8s/base/monitoring/prometheusrule.yaml: deploy/prometheus/alerts.yml wrapped in a
# PrometheusRule. `make monitoring` writes it; e2e/monitoring checks that the two agree.
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'HEAD'
# GENERATED from deploy/prometheus/alerts.yml by `make monitoring` (scripts/prometheusrule.sh):
# edit that file, not this one.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: customertext-webhooks
spec:
HEAD
grep -v '^#' deploy/prometheus/alerts.yml | sed 's/^/  /'

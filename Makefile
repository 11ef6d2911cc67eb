# The README's commands: `make dev` runs the whole platform locally, `make test` runs every test.
# Tools are pinned here and installed from the Go module proxy into .bin/ on first use.

SHELL := /bin/bash
BIN := $(CURDIR)/.bin
export PATH := $(BIN):$(PATH)
export GOFLAGS := -buildvcs=false

BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
# protoc-gen-openapi emits OpenAPI 3 from the google.api.http annotations.
GNOSTIC_VERSION := v0.7.1
# The finished OpenAPI document the subscription service serves at /v1/openapi.json.
OPENAPI_JSON := services/subscriptions/internal/ports/httpapi/openapi.json

MODULES := libs services/contacts services/messaging services/campaigns services/subscriptions services/dispatcher services/console e2e
SERVICES := contacts messaging campaigns subscriptions dispatcher console
# NATS_NODES=3 runs `make dev` and `make bench` on a 3-node JetStream cluster with R3 streams.
NATS_NODES ?= 1
# tools/ (image builder, Kubernetes manifest checks) is its own module outside go.work: its
# Kubernetes dependencies must not move the services' shared dependency versions.
TOOLS := tools

# One version stamp for every binary (main.version, the User-Agent) and image (tag and label).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

.PHONY: all dev test lint generate check-generated tools build bench clean postgres rules-test monitoring images check-images manifests chaos chaos-short nats-server

all: lint test

$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(BIN)/protoc-gen-openapi:
	GOBIN=$(BIN) go install github.com/google/gnostic/cmd/protoc-gen-openapi@$(GNOSTIC_VERSION)

# promtool and prometheus: Debian's package, unpacked into .cache/ (scripts/install-prometheus.sh).
$(BIN)/promtool:
	scripts/install-prometheus.sh $(BIN)


tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc $(BIN)/protoc-gen-openapi

## generate: lint the protobuf contracts and regenerate the committed Go code and OpenAPI document.
generate: tools
	buf lint
	buf generate
	cd services/subscriptions && go run ./internal/ports/httpapi/openapigen \
		-in ../../libs/gen/openapi/openapi.yaml -out internal/ports/httpapi/openapi.json

## check-generated: fail when regeneration changes the committed code (CI).
check-generated: generate
	@git add -N libs/gen $(OPENAPI_JSON) >/dev/null 2>&1 || true
	@if ! git diff --quiet --exit-code -- libs/gen $(OPENAPI_JSON); then \
		echo "generated code is stale: run 'make generate' and commit"; git diff --stat -- libs/gen $(OPENAPI_JSON); exit 1; fi

## lint: gofmt, go vet on every module, buf lint.
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
	cd $(TOOLS) && GOWORK=off go vet ./...
	buf lint

## rules-test: check the dev Prometheus config and the alerting/recording rules, and run the rules'
## promtool unit tests (deploy/prometheus/alerts_test.yml).
rules-test: $(BIN)/promtool
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/alerts_test.yml

## monitoring: regenerate k8s/base/monitoring/prometheusrule.yaml from deploy/prometheus/alerts.yml.
monitoring:
	scripts/prometheusrule.sh > k8s/base/monitoring/prometheusrule.yaml

## build: compile every service binary into .bin/.
build:
	@for s in $(SERVICES); do (cd services/$$s && go build -o $(BIN)/$$s .) || exit 1; done

## postgres: start the machine's PostgreSQL when it is stopped.
postgres:
	@scripts/ensure-postgres.sh

## test: every test of every module, with the race detector, against the machine's PostgreSQL and
## an in-process nats-server.
test: postgres $(BIN)/promtool
	@fail=0; for m in $(MODULES); do echo "=== $$m"; (cd $$m && go test -race -count=1 -timeout 15m ./...) || fail=1; done; \
		echo "=== $(TOOLS)"; (cd $(TOOLS) && GOWORK=off go test -race -count=1 -timeout 15m ./...) || fail=1; exit $$fail

## images: build every service's OCI image without Docker into .bin/images/<service>.tar, tagged
## customertext/webhooks-<service>:$(VERSION) (push them with crane: docs/operations.md).
images:
	cd $(TOOLS) && GOWORK=off go run ./cmd/images -root .. -out $(BIN)/images \
		-version $(VERSION) -revision $(REVISION) -created $(SOURCE_DATE_EPOCH)

## check-images: build the images and read them back (entrypoint, user, labels, static binary).
check-images: images
	cd $(TOOLS) && GOWORK=off IMAGES_DIR=$(BIN)/images IMAGES_VERSION=$(VERSION) go test -count=1 -run TestMadeImages -v ./images/

## manifests: render every kustomize overlay and check it (strict decoding and the deployment rules).
manifests:
	cd $(TOOLS) && GOWORK=off go test -count=1 ./manifests/

## dev: run the whole platform locally with an embedded NATS server and a demo webhook.
dev: postgres build
	cd e2e && go run ./cmd/devstack -bin $(BIN) -nats-nodes $(NATS_NODES)

## bench: drive the real pipeline and print figures; the last line is a JSON summary.
bench: postgres build
	cd e2e && go run ./cmd/bench -bin $(BIN) -nats-nodes $(NATS_NODES)

## nats-server: the real nats-server binary, from the Go module version the services pin (the chaos
## suite runs it as its own process so that it can be killed).
nats-server:
	cd e2e && go build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

## chaos: break the real platform under load (processes killed, PostgreSQL cut off, bad endpoints,
## poison messages) and check that nothing is lost; the last line is a JSON summary.
chaos: postgres build nats-server
	cd e2e && go build -o $(BIN)/chaos ./cmd/chaos
	$(BIN)/chaos -bin $(BIN) -nats-nodes $(NATS_NODES)

## chaos-short: the same scenarios with shorter faults and loads (CI; at most 5 minutes).
chaos-short: postgres build nats-server
	cd e2e && go build -o $(BIN)/chaos ./cmd/chaos
	$(BIN)/chaos -bin $(BIN) -short -nats-nodes $(NATS_NODES)

clean:
	rm -rf $(BIN)

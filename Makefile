# Stagehand — the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
BIN      := bin/stagehand
OUT      := out
FUZZTIME ?= 20s
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(shell go env GOPATH)/bin/golangci-lint

.PHONY: all deps test-deps container-deps build run test test-faults test-security test-containers test-helm vet lint fuzz bench bench-stage bench-go bench-latency clean

all: build

# Installs the Debian packages the build needs (FFmpeg 5.1 dev libraries,
# pkg-config, ffmpeg) when they are missing.
deps:
	@bash scripts/deps.sh

# Adds the servers the integration tests run against (nginx-rtmp, stunnel,
# versitygw, Chromium) and the Helm chart's tools (helm, kubeconform).
test-deps:
	@bash scripts/deps.sh --test

# Adds the container engine (podman with runc) and debootstrap.
container-deps:
	@bash scripts/deps.sh --containers

build: deps
	$(GO) build -o $(BIN) ./cmd/stagehand

# Renders the demo layouts, then runs the server on embedded defaults until Ctrl-C.
run: build
	@mkdir -p $(OUT)
	$(BIN) layout preview --config examples/layouts/grid.json --participants 5 --out $(OUT)/grid.png
	$(BIN) layout preview --config examples/layouts/grid-featured.json --participants 6 \
		--attr 3:featured=true --attr 1:order=2 --attr 2:order=1 --stopped 5 --out $(OUT)/grid-featured.png
	$(BIN) layout preview --config examples/layouts/pip.json --participants 2 \
		--attr 2:guest=true --video 2:720x1280 --out $(OUT)/pip.png
	@echo "demo previews written to $(OUT)/"
	$(BIN) serve --dev --demo

vet: deps
	$(GO) vet ./...
	$(GO) vet -tags faults ./internal/fleettest
	$(GO) vet -tags security ./internal/securitytest
	$(GO) vet -tags containers ./internal/containertest
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# golangci-lint with .golangci.yml (staticcheck included); installs the
# pinned version unless $(GOPATH)/bin already has it.
lint: test-deps vet
	@$(GOLANGCI_LINT) version 2>/dev/null | grep -q 'version $(GOLANGCI_LINT_VERSION:v%=%) ' || \
		GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags faults ./internal/fleettest
	$(GOLANGCI_LINT) run --build-tags security ./internal/securitytest
	$(GOLANGCI_LINT) run --build-tags containers ./internal/containertest

# Every test, under the race detector, then a short fuzz run of the layout engine.
# ./worker first: its tests take about 3 minutes one after the other, and
# started last they ran alone at the end (318 s against 256 s in all).
test: lint
	$(GO) test -race -count=1 ./worker ./...
	$(GO) test -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(FUZZTIME) ./layout
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime 10s ./api
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 10s ./token
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 10s ./api/sigv4
	$(GO) test -run '^$$' -fuzz '^FuzzVideoPush$$' -fuzztime 10s -fuzzminimizetime 2s ./trackdecode
	$(GO) test -run '^$$' -fuzz '^FuzzMessages$$' -fuzztime 10s -fuzzminimizetime 2s ./ingest
	$(GO) test -run '^$$' -fuzz '^FuzzJoin$$' -fuzztime 10s -fuzzminimizetime 2s ./internal/safepath
	$(MAKE) --no-print-directory test-security
	$(MAKE) --no-print-directory test-faults
	$(MAKE) --no-print-directory test-containers

# The attack suite: every attack tried against real servers must fail;
# prints "N attacks tried, 0 succeeded" and the list. Part of `make test`.
test-security: test-deps
	$(GO) test -tags security -count=1 -v -timeout 10m ./internal/securitytest

# The fleet as processes on loopback (3 NATS nodes, serve, 3 workers, S3,
# RTMP) with faults injected; prints what each fault cost. Part of `make test`.
test-faults: test-deps
	$(GO) test -tags faults -count=1 -v -timeout 15m ./internal/fleettest

# The fleet as podman containers (the image from docker/Dockerfile, 3 NATS
# nodes, serve, 2 workers, S3, RTMP; host network on 127.0.0.1): a worker
# killed, one stopped; prints the figures. Part of `make test` (about a
# minute once the Debian base image is cached; three the first time).
test-containers: test-deps container-deps
	$(GO) test -tags containers -count=1 -v -timeout 15m ./internal/containertest

# The Helm chart alone: helm lint, helm template and kubeconform (strict,
# offline schemas) for each set of values. `go test ./...` runs it too.
test-helm: test-deps
	$(GO) test -count=1 -v -run '^TestHelmChart$$' ./cmd/stagehand

fuzz: deps
	$(GO) test -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime 5m ./layout
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime 2m ./api
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 2m ./token
	$(GO) test -run '^$$' -fuzz '^FuzzParsePublicKey$$' -fuzztime 1m ./token
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 2m ./api/sigv4
	$(GO) test -run '^$$' -fuzz '^FuzzParseAuthorization$$' -fuzztime 1m ./api/sigv4
	$(GO) test -run '^$$' -fuzz '^FuzzVideoPush$$' -fuzztime 2m -fuzzminimizetime 5s ./trackdecode
	$(GO) test -run '^$$' -fuzz '^FuzzAudioPush$$' -fuzztime 1m -fuzzminimizetime 5s ./trackdecode
	$(GO) test -run '^$$' -fuzz '^FuzzClientInfo$$' -fuzztime 1m ./stage
	$(GO) test -run '^$$' -fuzz '^FuzzAcceptedMedia$$' -fuzztime 1m ./stage
	$(GO) test -run '^$$' -fuzz '^FuzzOffer$$' -fuzztime 2m -fuzzminimizetime 2s ./stage
	$(GO) test -run '^$$' -fuzz '^FuzzMessages$$' -fuzztime 2m -fuzzminimizetime 2s ./ingest
	$(GO) test -run '^$$' -fuzz '^FuzzAnnexB$$' -fuzztime 1m ./ingest
	$(GO) test -run '^$$' -fuzz '^FuzzJoin$$' -fuzztime 1m -fuzzminimizetime 5s ./internal/safepath

# Stagehand against the FFmpeg CLI, side by side, and against the codec
# floor: prints the table (benchmarks/README.md). BENCH_PAIRS=1
# BENCH_SECONDS=2 make bench is a quick smoke run.
bench: build
	$(GO) run ./benchmarks/sidebyside

# Stage nodes as processes on loopback, driven by `stagehand load`: one
# node's packets per CPU-second and MB per subscriber, the origin's CPU
# under a cascade of 3 edges, and the largest audience of 3 nodes
# (benchmarks/README.md). STAGEBENCH_SUBSCRIBERS=50 STAGEBENCH_SECONDS=10
# STAGEBENCH_SKIP_RAMP=1 make bench-stage is a quick run.
bench-stage: build
	$(GO) run ./benchmarks/stagebench

# Live-path latency: RTP in → RTMP out (p50/p95) and StartComposition → first
# RTMP frame, through a real stage, worker and RTMP listener. A measurement
# that prints figures; never part of make test.
bench-latency: deps
	STAGEHAND_LATENCY=1 $(GO) test -count=1 -run '^TestLatency$$' -v ./worker

# Go benchmarks of the hot paths (ns and allocations per rendered frame, per encoded frame).
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./layout ./compositor

clean:
	rm -rf bin $(OUT)

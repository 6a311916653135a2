# memphis.go — the targets a contributor needs. CI (.ci/run) runs
# `make test`, with the race detector required, and nothing else.
GO          ?= go
STATICCHECK_VERSION := v0.8.2
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# apidiff comes from golang.org/x/exp, which has no releases: a pinned commit.
APIDIFF_VERSION := v0.0.0-20261120182113-8801fbdfac81
# The official release whose API this module keeps, and a checkout of it;
# empty means the module proxy's copy.
OFFICIAL_VERSION := v1.3.2
OFFICIAL    ?=
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
FUZZTIME    ?= 30s
BENCHTIME   ?= 2s
BENCHROUNDS ?= 3
BENCH       ?= .
BENCHOUT    ?= /tmp/memphis-bench.txt
SOAK        ?= 10m
SOAKTIMEOUT ?= 20m
# The race detector needs cgo, and so a C compiler; go env says 0 when it
# found none, and the tests then run without it. CI sets RACE=-race, so
# there a missing compiler fails the run instead.
RACE        ?= $(if $(filter 1,$(shell $(GO) env CGO_ENABLED)),-race,)

INTEROP_COUNT ?= 20

.PHONY: all help test unit interop-ci run lint fmt vet staticcheck apicompat bench cover integration devbroker fuzz soak interop interop-go interop-node

all: test

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## test: what CI runs: lint, every test of both modules, and the interop suite
test: lint unit interop-ci

## unit: every package of both modules (the SDK's and otelmemphis') against in-process brokers, with the race detector where cgo works
# otelmemphis/ is a module of its own, so ./... leaves it out: it is tested
# (its example built and run too) from its own directory.
unit:
	$(GO) test $(RACE) -count=1 -timeout 14m ./...
	cd otelmemphis && $(GO) test $(RACE) -count=1 -timeout 5m ./...

# The official Go SDK always; the Node.js SDK where node and npm are installed.
interop-ci: interop-go
	@if command -v node >/dev/null && command -v npm >/dev/null; then 	  node --version && $(MAKE) --no-print-directory interop-node; 	else echo "interop-node not run: node and npm are not installed"; fi

## run: the quickstart example (in-process broker unless MEMPHIS_HOST is set)
run:
	$(GO) run ./examples/quickstart

## lint: gofmt, go vet and staticcheck on both modules, and apicompat; any finding fails
lint: fmt vet staticcheck apicompat

# Tracked and new (not ignored) Go files; plain find outside a git checkout.
fmt:
	@files=$$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'); \
	out=$$(gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd otelmemphis && $(GO) vet ./...

# staticcheck is installed with `go install` at the pinned version when it is
# missing or another version is found.
staticcheck:
	@$(GOBIN)/staticcheck -version 2>/dev/null | grep -q '($(STATICCHECK_VERSION:v%=%))' || \
	  { echo "go install $(STATICCHECK)"; $(GO) install $(STATICCHECK); }
	$(GOBIN)/staticcheck ./...
	cd otelmemphis && $(GOBIN)/staticcheck ./...

## apicompat: the exported API against the official v1.3.2 (OFFICIAL=<checkout>, else the module proxy's)
# Fails on an incompatible change not listed, with its reason, in
# internal/apicompat/accepted.txt. apidiff is built at APIDIFF_VERSION into a
# temporary directory, so neither go.mod nor GOBIN changes.
apicompat:
	$(GO) run ./internal/apicompat -apidiff $(APIDIFF_VERSION) -version $(OFFICIAL_VERSION) \
	  -official "$(OFFICIAL)" -accepted internal/apicompat/accepted.txt

## bench: SDK against raw nats.go JetStream on one in-process broker; prints one table of SDK/raw ratios
# The raw `go test -bench` output is kept in BENCHOUT. A pipe hides go test's
# exit status, so a failure is found in that output instead.
# Rounds alternate whole runs (BENCHROUNDS of them) rather than using -count,
# which would run every SDK case before every raw one and let load drift
# bias the ratios; benchtable takes the median of the per-round ratios.
bench:
	@for i in $$(seq $(BENCHROUNDS)); do \
	  $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime=$(BENCHTIME) -count=1 -timeout 60m . || exit 1; \
	done | tee $(BENCHOUT) | $(GO) run ./internal/benchtable
	@if grep -q -e '^FAIL' -e '^--- FAIL' -e '^panic:' $(BENCHOUT); then echo "benchmarks failed; see $(BENCHOUT)"; exit 1; fi

## cover: coverage of the SDK, memphistest and internal packages by every test, and the total (coverage.out)
# -coverpkg counts code run by any package's tests (internal/wire is covered
# by the SDK's); the examples run as separate processes and are left out.
cover:
	$(GO) test -count=1 -coverpkg=.,./memphistest,./internal/... -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1

## integration: the SDK and broker-protocol suites against the real broker at MEMPHIS_HOST
# -p 1: one package at a time, as the bad-input test taps all the broker's
# traffic to prove that locally refused calls send nothing.
integration:
	@test -n "$$MEMPHIS_HOST" || { echo "set MEMPHIS_HOST (and MEMPHIS_USER, MEMPHIS_PASSWORD or MEMPHIS_TOKEN, MEMPHIS_PORT)"; exit 2; }
	$(GO) test $(RACE) -count=1 -p 1 -timeout 20m . ./internal/broker/ ./examples/

## interop: the official Go SDK (INTEROP_COUNT=20 runs in a row) and Node.js SDK against dev brokers, or MEMPHIS_HOST
# Each part lives in interop/ as its own project: the official Go SDK has
# this module's path, so interop/golang is a module of its own that starts
# the dev broker as a separate process; interop/run.sh does that for Node.js.
interop: interop-go interop-node

interop-go:
	cd interop/golang && $(GO) test -count=$(INTEROP_COUNT) -timeout 40m .

# npm ci installs exactly what interop/node/package-lock.json pins.
interop-node:
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "interop-node needs node and npm (Debian: apt-get install nodejs npm)"; exit 2; }
	cd interop/node && npm ci --no-audit --no-fund --loglevel=error && ../run.sh node --test interop.test.mjs

## devbroker: the standalone in-process broker on :6666 (Ctrl-C stops it)
devbroker:
	$(GO) run ./cmd/memphis-devbroker -port 6666

## fuzz: every fuzz target, FUZZTIME (30s) each
# A failing input is saved under the package's testdata/fuzz/ and from then
# on runs in every `go test` until the bug is fixed.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## soak: produce and consume for SOAK (10m; raise SOAKTIMEOUT with it) and check nothing is lost
soak:
	MEMPHIS_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestSoak$$' -timeout $(SOAKTIMEOUT) -v .

# memphis.go — the targets a contributor needs. `make test` is what CI runs.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
FUZZTIME    ?= 30s

.PHONY: all test run lint fmt vet staticcheck bench cover integration devbroker fuzz soak

all: lint test

## test: every package, with the race detector (what CI runs, with lint)
test:
	$(GO) test -race -count=1 -timeout 14m ./...

## run: the quickstart example (in-process broker unless MEMPHIS_HOST is set)
run:
	$(GO) run ./examples/quickstart

## lint: gofmt, go vet and staticcheck; any finding fails
lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	$(GOBIN)/staticcheck ./...

## bench: SDK against raw nats.go JetStream on the same in-process broker
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m .

## cover: test coverage of the SDK package
cover:
	$(GO) test -count=1 -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1

## integration: the integration suites against a real broker at MEMPHIS_HOST
integration:
	@test -n "$$MEMPHIS_HOST" || { echo "set MEMPHIS_HOST (and MEMPHIS_USER, MEMPHIS_PASSWORD or MEMPHIS_TOKEN)"; exit 2; }
	$(GO) test -race -count=1 -timeout 20m . ./internal/broker/

## devbroker: a standalone in-process broker on :6666
devbroker:
	$(GO) run ./cmd/memphis-devbroker -port 6666

## fuzz: every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

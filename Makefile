# dvgate: a typed Dataverse client generated from the org's metadata, and a caching lookup gateway.
# `make help` lists the targets. Everything a target needs it fetches itself (Go modules, pinned tools).

GO        ?= go
PKGS      ?= ./...
BENCHTIME ?= 1x
LISTEN    ?= 127.0.0.1:8080

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build every package and the commands into bin/
	$(GO) build $(PKGS)
	$(GO) build -o bin/ ./cmd/...

.PHONY: test
test: lint ## Vet, staticcheck, and run all tests with the race detector (what CI runs)
	$(GO) test -race -count=1 $(PKGS)

.PHONY: lint
lint: ## go vet, staticcheck (pinned in go.mod), gofmt check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

.PHONY: generate
generate: ## Regenerate the committed generated/ client from testdata
	$(GO) generate ./generated/...

.PHONY: bench
bench: ## Run the benchmarks (benchstat-readable output)
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 $(PKGS)

.PHONY: demo
demo: ## Run the gateway on the in-process Dataverse simulator with demo data (LISTEN=addr)
	$(GO) run ./cmd/dvgate --demo --listen $(LISTEN)

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
test: lint inspector ## Vet, staticcheck, and run all tests with the race detector (what CI runs; ~12 min from empty caches on 2 cores)
	$(GO) test -race -count=1 $(PKGS)

# The MCP Inspector's CLI (a real MCP client for cmd/dvgate's tests) needs
# Node >= 22.19; npm installs Node 22 and the Inspector into .tools/inspector
# (gitignored). Without npm the target says so and the tests skip (under CI
# they fail). Keep the versions in step with cmd/dvgate/inspector_test.go.
INSPECTOR_DIR  := .tools/inspector
INSPECTOR_PKGS := node@22 @modelcontextprotocol/inspector@2.12.0

.PHONY: inspector
inspector: ## Install Node 22 and the MCP Inspector CLI into .tools/ (for the MCP tests; needs npm)
	@if [ -x $(INSPECTOR_DIR)/node_modules/.bin/mcp-inspector ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "npm install $(INSPECTOR_PKGS) into $(INSPECTOR_DIR)"; \
	  npm install --prefix $(INSPECTOR_DIR) --no-audit --no-fund --loglevel=error $(INSPECTOR_PKGS); \
	else echo "npm not found: the MCP Inspector tests will skip (apt-get install npm)"; fi

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
BENCHCOUNT ?= 3
bench: ## Benchmarks with their baselines, benchstat-readable (BENCHCOUNT=n runs each; ~3 min at 3)
	$(GO) test -run='^$$' -bench='^BenchmarkRead$$' -benchtime=3x -benchmem -count=$(BENCHCOUNT) ./csdl
	$(GO) test -run='^$$' -bench='^BenchmarkDvgen$$' -benchtime=3x -benchmem -count=$(BENCHCOUNT) ./codegen
	$(GO) test -run='^$$' -bench='^Benchmark(CustomerHit|OrderHit|RistrettoGet)$$' -benchtime=200000x -benchmem -count=$(BENCHCOUNT) ./gateway
	$(GO) test -run='^$$' -bench='^BenchmarkWhoAmI$$' -benchtime=2000x -benchmem -count=$(BENCHCOUNT) ./dataverse
	$(GO) test -run='^$$' -bench='^Benchmark(Filter)$$' -benchtime=20000x -benchmem -count=$(BENCHCOUNT) ./bench
	$(GO) test -run='^$$' -bench='^Benchmark(ColdLookup)$$' -benchtime=20x -benchmem -count=$(BENCHCOUNT) ./bench
	$(GO) test -run='^$$' -bench='^Benchmark(SidecarHit)$$' -benchtime=20000x -benchmem -count=$(BENCHCOUNT) ./bench
	$(GO) test -run='^$$' -bench='^BenchmarkEmailSweep$$' -benchtime=1x -benchmem -count=1 -timeout=10m ./bench

.PHONY: bench-report
bench-report: ## Run the benchmarks and load runs, rewrite BENCHMARKS.md (~5 min)
	$(GO) run ./bench/report -out BENCHMARKS.md

.PHONY: bench-fleet
bench-fleet: ## Measure the Redis shared level (4 replicas, needs redis-server), rewrite BENCHMARKS.md's fleet section (~40 s)
	$(GO) run ./fleet/internal/benchfleet -out BENCHMARKS.md

.PHONY: load
LOADARGS ?= --inprocess -scenario mix -c 50 -d 10s
load: ## Load generator (LOADARGS="-url http://127.0.0.1:8080 -scenario hit -c 50 -d 10s" for a running sidecar)
	$(GO) run ./cmd/dvgate-load $(LOADARGS)

.PHONY: demo
demo: ## Run the gateway on the in-process Dataverse simulator with demo data (LISTEN=addr; the first run compiles for 2-4 min)
	$(GO) run ./cmd/dvgate --demo --listen $(LISTEN)

SOAK     ?= 60s
FUZZTIME ?= 30s
RELTMP   ?= $(CURDIR)/.reliability
FUZZERS  ?= ./csdl:FuzzRead ./odataq:FuzzStringLiteral ./odataq:FuzzFilterLiteral ./gateway:FuzzNormalizeEmail \
            ./gateway:FuzzNormalizeOrderRef ./gateway:FuzzDecodeAnswers ./dataverse:FuzzHTTPError

.PHONY: soak
soak: ## Reliability run (SOAK=60s load with injected 503/429, 1M-lookup cache budget, each fuzzer FUZZTIME); rewrites RELIABILITY.md
	@rm -rf $(RELTMP) && mkdir -p $(RELTMP)
	@$(GO) test -count=1 -run 'TestFaultMatrix|TestHostileInput|TestOversizedRequests|TestAccessControl|TestCertificateHygiene|TestFloodOfUnknownEmails|TestSoak' \
	  ./cmd/dvgate -v -soak=$(SOAK) -reliability.report=$(RELTMP)/rows.jsonl > $(RELTMP)/dvgate.log 2>&1; s=$$?; \
	  grep -E '^(--- |ok|FAIL|panic)|soak_test|_test.go:[0-9]+:' $(RELTMP)/dvgate.log; exit $$s
	@$(GO) test -count=1 -run TestCacheBudget ./gateway -v -budget.lookups=1000000 > $(RELTMP)/gateway.log 2>&1; s=$$?; \
	  grep -E '^(--- |ok|FAIL|panic)|_test.go:[0-9]+:' $(RELTMP)/gateway.log; \
	  grep -E 'lookups:' $(RELTMP)/gateway.log | sed 's/^ *//' > $(RELTMP)/budget.txt; exit $$s
	@for f in $(FUZZERS); do pkg=$${f%%:*}; name=$${f##*:}; \
	  line=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1 | grep -E '^fuzz: elapsed|^--- FAIL|^FAIL|^ok' | tail -2 | tr '\n' ' '); \
	  echo "$$name ($$pkg): $$line" | tee -a $(RELTMP)/fuzz.txt; \
	  case "$$line" in *FAIL*) exit 1;; esac; done
	$(GO) run ./internal/relreport -rows $(RELTMP)/rows.jsonl -fuzz $(RELTMP)/fuzz.txt -budget $(RELTMP)/budget.txt > RELIABILITY.md
	@rm -rf $(RELTMP)
	@echo "RELIABILITY.md rewritten"

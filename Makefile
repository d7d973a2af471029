GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK_VERSION := v0.8.2
BIN       := bin/kiln

.PHONY: build test lint bench demo e2e deps fuzz

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/kiln

deps:
	scripts/deps.sh test

test: deps
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz

# Every parser of outside input, fuzzed briefly on each test run; longer
# runs: make fuzz FUZZTIME=5m. (pkg:target pairs; go test fuzzes one target at a time.)
FUZZTIME ?= 10s
FUZZ_TARGETS := builders:FuzzLoad master/hooks:FuzzGitHub master/hooks:FuzzGitea \
	master/hooks:FuzzGitLab master/hooks:FuzzBitbucket master/hooks:FuzzGeneric \
	master/hooks:FuzzRepoKey master/web:FuzzRenderANSI signing:FuzzRPMHeader

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh $(FUZZ_TARGETS)

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The e2e package's benchmarks run the kiln binary as a process.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	KILN_BIN=$(CURDIR)/$(BIN) $(GO) test -tags e2e -run '^$$' -bench . -benchmem -timeout 30m ./e2e/

e2e: build
	scripts/deps.sh e2e
	KILN_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -tags e2e -timeout 55m ./e2e/...

demo: build
	scripts/deps.sh demo
	$(BIN) checkconfig configs/demo.yaml
	$(BIN) demo --dir .kiln-demo

# Embedgate's Makefile: a thin layer over the Go toolchain. Every tool it needs
# is pinned here and installed on first use into .tools/ (git-ignored), from
# the Go module proxy or npm.

SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS   := $(CURDIR)/.tools
TOOLBIN := $(TOOLS)/bin
export PATH := $(TOOLBIN):$(PATH)

BUF_VERSION                := 1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.3

BUF                := $(TOOLS)/buf-$(BUF_VERSION)/node_modules/.bin/buf
PROTOC_GEN_GO      := $(TOOLBIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC := $(TOOLBIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
GRPCURL            := $(TOOLS)/grpcurl-$(GRPCURL_VERSION)/grpcurl

GO_TEST_FLAGS ?= -race -timeout 15m

# The Node.js gRPC client the interop test drives (server/node_client_test.go).
NODECLIENT := server/testdata/nodeclient
NODECLIENT_DEPS := $(NODECLIENT)/node_modules/.package-lock.json

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: run
run: $(GRPCURL) ## Start the server in dev mode with its embedded emulator.
	go run ./cmd/embedgate serve --dev --grpcurl $(GRPCURL)

.PHONY: emulator
emulator: ## Start only the Entra ID + Power BI emulator (HTTPS on 127.0.0.1:8444).
	go run ./cmd/embedgate emulator --certs .dev/emulator

.PHONY: test
test: $(GRPCURL) $(NODECLIENT_DEPS) ## Run every test, with the race detector.
	EMBEDGATE_TEST_GRPCURL=$(GRPCURL) go test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the benchmarks (ratios measured in one run).
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: build
build: ## Build bin/embedgate.
	go build -o bin/embedgate ./cmd/embedgate

.PHONY: generate
generate: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) ## Regenerate gen/ from proto/ (offline).
	rm -rf gen
	$(BUF) generate

.PHONY: check-generate
check-generate: generate ## Fail if gen/ is not what proto/ generates.
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
	  git status --short -- gen; echo "gen/ is stale: run 'make generate' and commit it"; exit 1; fi

# The API never breaks its callers: compare with the commit that shipped v1
# and with the previous commit.
API_V1_COMMIT = $(shell git log --diff-filter=A --format=%H -- proto/embedgate/v1/embed_token.proto | tail -1)

.PHONY: breaking
breaking: $(BUF) ## Fail if proto/ breaks compatibility with v1 or the previous commit.
	$(BUF) breaking --against '.git#ref=$(API_V1_COMMIT)'
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then $(BUF) breaking --against '.git#ref=HEAD~1'; fi

.PHONY: lint
lint: $(BUF) ## buf lint and format check, gofmt, go vet.
	$(BUF) lint
	$(BUF) format --diff --exit-code
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))" || { gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...

.PHONY: tools
tools: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(GRPCURL) ## Install the pinned tools into .tools/.

$(BUF):
	npm install --no-audit --no-fund --loglevel=error --prefix $(TOOLS)/buf-$(BUF_VERSION) @bufbuild/buf@$(BUF_VERSION)

$(PROTOC_GEN_GO):
	GOBIN=$(TOOLBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	touch $@

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(TOOLBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	touch $@

$(NODECLIENT_DEPS): $(NODECLIENT)/package-lock.json
	cd $(NODECLIENT) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

$(GRPCURL):
	GOBIN=$(dir $@) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

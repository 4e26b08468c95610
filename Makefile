# Embedgate's Makefile: a thin layer over the Go toolchain. Every tool it needs
# is pinned here and installed on first use into .tools/ (git-ignored), from
# the Go module proxy or npm, or from Debian's packages (apt).

SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS   := $(CURDIR)/.tools
TOOLBIN := $(TOOLS)/bin
export PATH := $(TOOLBIN):$(PATH)

BUF_VERSION                := 1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.3
HELM_VERSION               := v3.22.0
GOVULNCHECK_VERSION        := v1.9.0
CYCLONEDX_GOMOD_VERSION    := v1.10.0
# The Go vulnerability database, as the golang.org/x/vulndb module (its OSV
# files, indexed locally): vulnerability checks are offline and reproducible;
# a newer database is a deliberate bump of this line.
VULNDB_VERSION             := v0.0.0-20261105234957-e22db6528018
# The Go toolchain the image and the release binaries are built with (and
# scanned with): the newest the module proxy serves, carrying every standard
# library fix the pinned database knows. The go command fetches it on first use.
RELEASE_GO                 := go1.27.3

BUF                := $(TOOLS)/buf-$(BUF_VERSION)/node_modules/.bin/buf
PROTOC_GEN_GO      := $(TOOLBIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC := $(TOOLBIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
GRPCURL            := $(TOOLS)/grpcurl-$(GRPCURL_VERSION)/grpcurl
HELM               := $(TOOLS)/helm-$(HELM_VERSION)/helm
GOVULNCHECK        := $(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)-$(RELEASE_GO)/govulncheck
VULNDB             := $(TOOLS)/vulndb-$(VULNDB_VERSION)
CYCLONEDX_GOMOD    := $(TOOLS)/cyclonedx-gomod-$(CYCLONEDX_GOMOD_VERSION)/cyclonedx-gomod
CHARTCHECK         := $(TOOLS)/chartcheck/chartcheck

# What a production build stamps into internal/buildinfo. DATE is the
# commit's date, not the build's, so that rebuilding a commit gives the same
# bytes. Override all three when building outside a git checkout (the image).
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null && echo $$c || echo $$c-dirty; } || echo unknown)
DATE    ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo unknown)
BUILDINFO := github.com/embedgate/embedgate/internal/buildinfo
LDFLAGS   := -s -w -buildid= -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).commit=$(COMMIT) -X $(BUILDINFO).date=$(DATE)
# The production build: static, reproducible, without dev mode and the
# emulator (-tags production). The Dockerfile runs this same target.
STATIC_ENV   = CGO_ENABLED=0 GOTOOLCHAIN=$(RELEASE_GO)
STATIC_FLAGS = -trimpath -buildvcs=false -tags production -ldflags '$(LDFLAGS)'
GOOS   ?= $(shell go env GOOS)
GOARCH ?= $(shell go env GOARCH)
OUT    ?= bin/$(GOOS)_$(GOARCH)/embedgate
IMAGE  ?= embedgate:$(VERSION)
RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

# The value sets the chart is linted, rendered and validated with.
CHART       := charts/embedgate
CHART_SETS  := $(basename $(notdir $(wildcard $(CHART)/ci/*-values.yaml)))
CHART_OUT   := bin/chart
KUBE_VERSION := 1.31.0

GO_TEST_FLAGS ?= -race -timeout 15m

# The clients (clients/README.md). One version for the API and its three
# clients: clients/VERSION, stamped into each package by `make generate`.
API_VERSION := $(shell cat clients/VERSION)
TS_CLIENT   := clients/ts
TS_DEPS     := $(TS_CLIENT)/node_modules/.package-lock.json
TS_SOURCES  := $(TS_CLIENT)/package.json $(shell find $(TS_CLIENT)/src -name '*.ts')
# examples/web (examples/web/README.md): its npm packages, @embedgate/client
# among them as a packed copy of clients/ts, built first.
WEB_EXAMPLE := examples/web
WEB_DEPS    := $(WEB_EXAMPLE)/node_modules/.package-lock.json

# Debian packages (bookworm): protoc and grpcio's plugin generate the Python
# client; its tests run on Debian's python3 with grpcio and protobuf, and
# build its wheel with pip, setuptools and wheel. Generation checks the exact
# protoc and plugin versions, so that gen/ does not depend on the machine.
# The shared-state tests start redis-server processes of their own (the
# package's service is not used).
DEB_PACKAGES       := protobuf-compiler protobuf-compiler-grpc python3 python3-grpcio python3-protobuf \
                      python3-pip python3-setuptools python3-wheel redis-server
# Debian's Chromium for the browser test of examples/web, and a font for its
# screenshot.
BROWSER_PACKAGES   := chromium fonts-dejavu-core
PROTOC_VERSION     := 3.21.12
GRPC_PLUGIN_VERSION := 1.51.1
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# The interpreter Debian's python3-* packages are installed for (a python3
# earlier on PATH, say pyenv's, does not see them).
PYTHON := /usr/bin/python3

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
test: $(GRPCURL) $(TS_DEPS) $(WEB_DEPS) debian-packages browser-packages ## Run every test, with the race detector.
	EMBEDGATE_TEST_GRPCURL=$(GRPCURL) EMBEDGATE_TEST_PYTHON=$(PYTHON) go test $(GO_TEST_FLAGS) ./...

.PHONY: test-clients
test-clients: $(TS_DEPS) debian-packages ## Run only the clients' tests (Go, TypeScript, Python, README snippets).
	EMBEDGATE_TEST_PYTHON=$(PYTHON) go test $(GO_TEST_FLAGS) ./clients/...

.PHONY: web
web: $(WEB_DEPS) ## Start examples/web (the BFF and its page) against `make run`'s server.
	@emu=$$(node -p 'require("./.dev/endpoints.json").emulator.replace("https://", "")' 2>/dev/null) || { echo "no .dev/endpoints.json: start 'make run' first"; exit 1; }; \
	echo "Open the page in a browser that sends app.powerbi.com to the emulator (a throwaway profile):"; \
	echo "  chromium --user-data-dir=\"\$$(mktemp -d)\" --host-resolver-rules=\"MAP app.powerbi.com $$emu\" --ignore-certificate-errors http://127.0.0.1:3000/"
	cd $(WEB_EXAMPLE) && npm run --silent build && node build/server.js

.PHONY: screenshot
screenshot: $(WEB_DEPS) browser-packages ## Rewrite docs/images/browser-embed.png with the browser test.
	EMBEDGATE_CI=1 EMBEDGATE_SCREENSHOT=$(CURDIR)/docs/images/browser-embed.png go test -count=1 -run '^TestBrowserRefreshLoop$$' ./$(WEB_EXAMPLE)/

.PHONY: soak
soak: ## Soak the real binary 10 minutes (mixed traffic, upstream faults, Power BI restarts); RSS, goroutines and fds must stay flat.
	EMBEDGATE_SOAK=10m go test -count=1 -run '^TestSoak$$' -v -timeout 20m ./server/

.PHONY: bench
bench: ## Run the benchmarks (ratios measured in one run).
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: build
build: ## Build bin/embedgate.
	go build -o bin/embedgate ./cmd/embedgate

# Generated code, wiped first: gen/ (Go), and the generated parts of the
# TypeScript and Python clients, with clients/VERSION stamped into each.
GENERATED := gen $(TS_CLIENT)/src/gen clients/python/src/embedgate clients/python/src/buf \
	clients/python/src/embedgate_client/_googleapis clients/python/src/embedgate_client/_version.py \
	clients/go/embedgateclient/version.go

.PHONY: generate
generate: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(TS_DEPS) debian-packages ## Regenerate gen/ and the clients from proto/ (offline).
	@protoc --version | grep -qx 'libprotoc $(PROTOC_VERSION)' || { echo "protoc $(PROTOC_VERSION) (Debian bookworm's protobuf-compiler) is required, found: $$(protoc --version)"; exit 1; }
	@dpkg-query -W -f='$${Version}' protobuf-compiler-grpc | grep -q '^$(GRPC_PLUGIN_VERSION)-' || { echo "grpc_python_plugin $(GRPC_PLUGIN_VERSION) (Debian bookworm's protobuf-compiler-grpc) is required"; exit 1; }
	rm -rf $(GENERATED)
	$(BUF) generate
	$(BUF) generate --template buf.gen.googleapis.yaml
	cd $(TS_CLIENT) && [ "$$(node -p 'require("./package.json").version')" = "$(API_VERSION)" ] || \
	  npm version --no-git-tag-version --loglevel=error $(API_VERSION) >/dev/null
	printf '// Code generated by make generate from clients/VERSION. DO NOT EDIT.\n\n/** The version of the Embedgate API this client was generated from. */\nexport const version = "%s";\n' $(API_VERSION) > $(TS_CLIENT)/src/gen/version.ts
	printf '# Code generated by make generate from clients/VERSION. DO NOT EDIT.\n"""The version of the Embedgate API this client was generated from."""\n\n__version__ = "%s"\n' $(API_VERSION) > clients/python/src/embedgate_client/_version.py
	printf '// Code generated by make generate from clients/VERSION. DO NOT EDIT.\n\npackage embedgateclient\n\n// Version is the version of the Embedgate API this client was generated from.\nconst Version = "%s"\n' $(API_VERSION) > clients/go/embedgateclient/version.go

.PHONY: check-generate
check-generate: generate ## Fail if gen/ or a client is not what proto/ generates.
	@if [ -n "$$(git status --porcelain -- gen clients)" ]; then \
	  git status --short -- gen clients; echo "gen/ or clients/ is stale: run 'make generate' and commit it"; exit 1; fi

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

.PHONY: static
static: ## The production binary: static, stamped, -tags production (OUT, GOOS, GOARCH).
	$(STATIC_ENV) GOOS=$(GOOS) GOARCH=$(GOARCH) go build $(STATIC_FLAGS) -o $(OUT) ./cmd/embedgate

# With a container engine, build the image (the Dockerfile runs `make
# static`). Without one (this repository's CI), build the same binary the
# same way and run it as the image would (uid 65532, no dev commands).
.PHONY: image
image: ## Build the container image, or without a container engine the image's binary, and smoke-test it.
	@if docker info >/dev/null 2>&1; then \
	  docker build --build-arg GO_VERSION=$(RELEASE_GO:go%=%) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $(IMAGE) . && \
	  docker run --rm --read-only $(IMAGE) version; \
	elif command -v podman >/dev/null 2>&1; then \
	  podman build --build-arg GO_VERSION=$(RELEASE_GO:go%=%) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg DATE=$(DATE) -t $(IMAGE) . && \
	  podman run --rm --read-only $(IMAGE) version; \
	else \
	  echo "no container engine: building and running the image's binary instead"; \
	  $(MAKE) --no-print-directory static GOOS=linux OUT=bin/image/embedgate && \
	  $(MAKE) --no-print-directory smoke BIN=bin/image/embedgate; \
	fi

# What the image's binary must be: static, production, stamped, runnable as
# the image's user, and without the dev commands.
.PHONY: smoke
smoke:
	@go version -m $(BIN) | grep -q 'CGO_ENABLED=0' || { echo "$(BIN) is not static"; exit 1; }
	@go version -m $(BIN) | grep -q -- '-tags=production' || { echo "$(BIN) is not a production build"; exit 1; }
	@if readelf -l $(BIN) 2>/dev/null | grep -q INTERP; then echo "$(BIN) needs a dynamic loader"; exit 1; fi
	@run() { if [ "$$(id -u)" = 0 ] && command -v setpriv >/dev/null; then setpriv --reuid=65532 --regid=65532 --clear-groups "$$@"; else "$$@"; fi; }; \
	out=$$(run $(BIN) version) && echo "$$out" && echo "$$out" | grep -q '^commit: $(COMMIT)$$' || { echo "commit not stamped"; exit 1; }; \
	if run $(BIN) serve --dev 2>&1 | grep -q 'not available in this production build'; then :; else echo "serve --dev is in the production binary"; exit 1; fi; \
	if run $(BIN) emulator 2>&1 | grep -q 'not available in this production build'; then :; else echo "the emulator is in the production binary"; exit 1; fi
	@if go list -deps -tags production ./cmd/embedgate | grep -q '/emulator$$'; then echo "-tags production still imports the emulator"; exit 1; fi
	@echo "$(BIN): static, production (no serve --dev, no emulator), stamped, runs as uid 65532"

# The SBOM of each binary is read from the binary itself (its embedded
# module list and build settings), licenses from the module cache, offline.
.PHONY: release
release: $(CYCLONEDX_GOMOD) $(HELM) ## Static binaries (linux, darwin; amd64, arm64), CycloneDX SBOMs, the chart, SHA256SUMS in dist/.
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=embedgate_$(VERSION)_$${os}_$${arch}; \
	  echo "== $$name"; \
	  $(MAKE) --no-print-directory static GOOS=$$os GOARCH=$$arch OUT=dist/$$name; \
	  GOPROXY=off GOTOOLCHAIN=$(RELEASE_GO) $(CYCLONEDX_GOMOD) bin -json -licenses -version $(VERSION) \
	    -output dist/$$name.cdx.json dist/$$name 2>&1 | grep -v 'embedgate/embedgate@' || true; \
	done
	$(HELM) package $(CHART) --destination dist --app-version $(patsubst v%,%,$(VERSION))
	cd dist && sha256sum * > SHA256SUMS && cat SHA256SUMS

.PHONY: vulncheck
vulncheck: $(GOVULNCHECK) $(VULNDB)/index/db.json ## govulncheck, offline, the production build with the release Go.
	@# The database must work: a module with a known vulnerability is flagged.
	@cd tools/testdata/vulncanary && GOTOOLCHAIN=$(RELEASE_GO) $(GOVULNCHECK) -db file://$(VULNDB) -format json . | grep -q '"osv": *"GO-2021-0113"' \
	  || { echo "vulncheck: the offline database did not flag the canary (GO-2021-0113)"; exit 1; }
	GOTOOLCHAIN=$(RELEASE_GO) $(GOVULNCHECK) -db file://$(VULNDB) -tags production ./...

.PHONY: chart
chart: $(HELM) $(CHARTCHECK) ## Lint, render and validate the Helm chart offline, for every value set in its ci/.
	@rm -rf $(CHART_OUT) && mkdir -p $(CHART_OUT)
	@set -e; for set in $(CHART_SETS); do \
	  $(HELM) lint --strict --quiet $(CHART) -f $(CHART)/ci/$$set.yaml --kube-version $(KUBE_VERSION); \
	  $(HELM) template embedgate $(CHART) -n platform -f $(CHART)/ci/$$set.yaml --kube-version $(KUBE_VERSION) \
	    --api-versions monitoring.coreos.com/v1/ServiceMonitor > $(CHART_OUT)/$$set.yaml; \
	done
	$(CHARTCHECK) validate $(CHART_OUT)/*.yaml
	cd tools && go test ./...

# The config each value set renders must pass `embedgate check`, with the
# files it names and the AKS workload-identity variables filled in by
# chartcheck (.ci/run runs it after `make chart`).
.PHONY: chart-config-check
chart-config-check: chart ## Run `embedgate check` on the config and policy each chart value set renders.
	go build -o bin/embedgate ./cmd/embedgate
	@set -e; fail=0; for set in $(CHART_SETS); do \
	  root=$(CHART_OUT)/$$set.root; rm -rf $$root; \
	  config=$$($(CHARTCHECK) extract -out $$root $(CHART_OUT)/$$set.yaml); \
	  echo "== $$set"; \
	  env $$(cat $$root/env) bin/embedgate check --config $$config || fail=1; \
	done; exit $$fail

.PHONY: tools
tools: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) $(GRPCURL) $(TS_DEPS) $(WEB_DEPS) debian-packages browser-packages $(HELM) $(GOVULNCHECK) $(VULNDB)/index/db.json $(CYCLONEDX_GOMOD) ## Install the pinned tools into .tools/.

$(BUF):
	npm install --no-audit --no-fund --loglevel=error --prefix $(TOOLS)/buf-$(BUF_VERSION) @bufbuild/buf@$(BUF_VERSION)

$(PROTOC_GEN_GO):
	GOBIN=$(TOOLBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	touch $@

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(TOOLBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	touch $@

$(TS_DEPS): $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# npm packs clients/ts (its dist/ and src/) into examples/web/node_modules.
$(WEB_DEPS): $(WEB_EXAMPLE)/package-lock.json $(WEB_EXAMPLE)/.npmrc $(TS_DEPS) $(TS_SOURCES)
	cd $(TS_CLIENT) && node_modules/.bin/tsc -p tsconfig.json
	cd $(WEB_EXAMPLE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Installs the Debian packages that are missing (apt needs root: sudo
# otherwise); does nothing when all are there.
.PHONY: debian-packages browser-packages
debian-packages: PACKAGES = $(DEB_PACKAGES)
browser-packages: PACKAGES = $(BROWSER_PACKAGES)
debian-packages browser-packages:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(GRPCURL):
	GOBIN=$(dir $@) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(HELM):
	GOBIN=$(dir $@) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Built with the release Go: it type-checks code for the toolchain it scans.
$(GOVULNCHECK):
	GOTOOLCHAIN=$(RELEASE_GO) GOBIN=$(dir $@) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(VULNDB)/index/db.json:
	GOBIN=$(VULNDB)-bin go install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)
	rm -rf $(VULNDB) && $(VULNDB)-bin/indexdb -vulns "$$(go mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')/data/osv" -out $(VULNDB)

$(CYCLONEDX_GOMOD):
	GOBIN=$(dir $@) go install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@$(CYCLONEDX_GOMOD_VERSION)

$(CHARTCHECK): tools/go.mod tools/go.sum $(wildcard tools/chartcheck/*.go)
	cd tools && go build -o $(CHARTCHECK) ./chartcheck

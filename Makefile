# sparkenv: `make demo` builds the bundled example offline; `make test` runs
# the test suite. Both install what they need first, idempotently.
SHELL := /bin/bash
GO    ?= go
ROOT  := $(CURDIR)
TOOLS := $(ROOT)/.tools
BIN   := $(TOOLS)/bin
export PATH := $(BIN):$(PATH)

APT_PACKAGES := squashfs-tools squashfs-tools-ng squashfuse fuse3 \
	conda-package-handling python3-conda-package-streaming \
	protobuf-compiler pigz hyperfine patchelf graphviz time python3-pip python3-pip-whl python3-setuptools-whl zstd gcc shellcheck
RATTLER := tools/npm/node_modules/@conda-org/rattler/package.json

.PHONY: all build deps deps-apt deps-npm deps-go test test-short demo bench fuzz proto fmt vet clean

all: build

build:
	$(GO) build -o $(BIN)/sparkenv ./cmd/sparkenv

deps: deps-apt deps-npm deps-go

# Installs only the Debian packages that are missing.
deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

deps-npm: $(RATTLER)
$(RATTLER): tools/npm/package.json
	cd tools/npm && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $@

deps-go: $(BIN)/versitygw
$(BIN)/versitygw: tools/go.mod
	cd tools && $(GO) build -o $(BIN)/versitygw github.com/versity/versitygw/cmd/versitygw

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...

test-short:
	$(GO) test -short ./...

demo: deps-apt build
	@bash examples/quickstart/demo.sh

bench: deps build
	@bash scripts/bench.sh $(GROUPS)

fuzz:
	@bash scripts/fuzz.sh

proto:
	@bash scripts/proto.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(TOOLS) tools/npm/node_modules examples/*/dist examples/*/.sparkenv

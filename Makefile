# Libellule developer entry points. `make test` is what CI runs (.ci/run).

CARGO      ?= cargo
BIN        := target/release/libellule
PORT       ?= 6379
DATA_DIR   ?= ./data
# Test threads: every integration test starts its own servers, keep it low
# on small machines.
TEST_THREADS ?= 2

.PHONY: all build run test node-deps lint fmt bench loadtest install uninstall clean

all: build

build:
	$(CARGO) build --release

# Run a local server with sensible embedded defaults; extra flags via ARGS=...
run: build
	mkdir -p $(DATA_DIR)
	$(BIN) --port $(PORT) --bind 127.0.0.1 --dir $(DATA_DIR) $(ARGS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

test: lint node-deps
	$(CARGO) build --release
	$(CARGO) test --release --no-fail-fast -- --test-threads $(TEST_THREADS)

# The ioredis suite's packages (tests/node_ioredis.rs runs it).
node-deps:
	cd tests/node && npm ci --no-audit --no-fund

bench:
	$(CARGO) bench

loadtest:
	loadtest/run.sh

install:
	scripts/install.sh

uninstall:
	scripts/install.sh --uninstall

clean:
	$(CARGO) clean
	rm -rf loadtest/results

# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

# PostgreSQL tests run wherever a server is reachable. Without TEST_DATABASE_URL, a local server
# on 127.0.0.1:5432 is used when one answers (the harness creates the database if missing).
LOCAL_PG := postgres://postgres@127.0.0.1:5432/rekisteri_test
TEST_DATABASE_URL ?= $(shell command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 && echo $(LOCAL_PG))
export TEST_DATABASE_URL

.PHONY: municipalities run build test lint fmt openapi openapi-check client example clean help bench bench-quick crash crash-ci leak-sweep leak-sweep-report fuzz-api fuzz fuzz-build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

VTJ_SIMULATOR := 127.0.0.1:8090

run: ## build, migrate, seed a demo (prints its users' tokens once) and serve on the embedded SQLite default (data/), with the VTJ simulator on $(VTJ_SIMULATOR)
	$(CARGO) build --release -p rekisteri-server
	./target/release/rekisteri migrate
	./target/release/rekisteri demo seed
	./target/release/rekisteri vtj simulate --bind $(VTJ_SIMULATOR) --data demo/vtj-simulator.json & simulator=$$!; \
	  trap 'kill $$simulator 2>/dev/null' EXIT; \
	  MIMALLOC_PURGE_DELAY=0 REKISTERI_VTJ_BASE_URL=http://$(VTJ_SIMULATOR) ./target/release/rekisteri serve

build: ## release build of the rekisteri binary
	$(CARGO) build --release -p rekisteri-server

test: ## the whole test suite, on SQLite and (when reachable) PostgreSQL
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "== databases under test: SQLite and PostgreSQL ($$(sed -E 's#(://[^:/@]*):[^@]*@#\1:****@#' <<< "$$TEST_DATABASE_URL"))"; \
	else \
	  echo "== databases under test: SQLite only (no PostgreSQL reachable; set TEST_DATABASE_URL to include it)"; \
	fi
	@echo "== object storage under test: local directory and S3 (s3s-fs, scripts/s3-test-server)"
	scripts/s3-test-server run $(CARGO) test --workspace

bench: ## release build, then the headline figures on SQLite and (with BENCH_DATABASE_URL or TEST_DATABASE_URL) PostgreSQL against raw baselines; writes target/bench/results.json
	$(CARGO) build --release -p rekisteri-server -p rekisteri-bench
	./target/release/rekisteri-bench
	./target/release/rekisteri-bench --phases keys --out target/bench/results-keys.json

bench-quick: ## the benchmark at small scale on the dev build, to prove it runs (its figures mean nothing)
	$(CARGO) build -p rekisteri-server -p rekisteri-bench
	./target/debug/rekisteri-bench --quick --server target/debug/rekisteri --out target/bench/results-quick.json
	./target/debug/rekisteri-bench --quick --server target/debug/rekisteri --phases keys --out target/bench/results-keys-quick.json

# PL-17: kill -9 during sustained writes, restart, check. PostgreSQL from CRASH_DATABASE_URL or
# TEST_DATABASE_URL (a fresh database is made and dropped there). Keys left `pending` by a crash
# fail the run (strict); CRASH_FLAGS=--lenient-stuck-keys counts them without failing.
CRASH_CYCLES ?= 100
CRASH_FLAGS ?=
export CRASH_CYCLES

crash: ## PL-17 crash suite: $(CRASH_CYCLES) kill -9 cycles per database on the release binary; prints the figures per database
	$(CARGO) build --release -p rekisteri-server -p rekisteri-bench -p rekisteri-crash
	REKISTERI_INSTANCE_LEASE_SECS=3 ./target/release/rekisteri-crash --server target/release/rekisteri $(CRASH_FLAGS)

# CI's bounded pass on the debug binary, built with the same packages as bench-quick so that the
# two share one build of the server. Strict: a key still in use after the killed server's
# instance lease (3 s here) ran out fails it (issue 20 point 5).
CRASH_CI_FLAGS ?=

crash-ci: ## the crash suite bounded for CI: 10 cycles per database on the debug binary
	$(CARGO) build -p rekisteri-server -p rekisteri-bench -p rekisteri-crash
	REKISTERI_INSTANCE_LEASE_SECS=3 ./target/debug/rekisteri-crash --server target/debug/rekisteri --cycles 10 --max-load-ms 1500 $(CRASH_CI_FLAGS)

# Issue 20 point 2 (PL-18): schemathesis (pinned, from the Python package registry, in a virtualenv
# of its own under target/) against the served OpenAPI document, once per kind of principal, each
# on a freshly seeded server; every check on. FUZZ_API_FLAGS passes options to tools/fuzz-api.py
# (--principals, --max-examples, --phases, --database-url, --keep).
FUZZ_API_VENV := target/fuzz-api-venv
SCHEMATHESIS := schemathesis==4.32.5
FUZZ_API_FLAGS ?=
# CI passes the build `make test` made (`cargo test --workspace --no-run` builds the binary too), so
# the run does not build the server a second time with other features.
FUZZ_API_BUILD ?= $(CARGO) build -p rekisteri-server

fuzz-api: ## schemathesis against /openapi.json as every kind of principal (none, client handler, provider staff, main user, auditor, admin, a narrow integration); reports in target/fuzz-api
	$(FUZZ_API_BUILD)
	@if ! $(FUZZ_API_VENV)/bin/pip show -q schemathesis >/dev/null 2>&1; then \
	  python3 -m venv $(FUZZ_API_VENV) && $(FUZZ_API_VENV)/bin/pip install -q '$(SCHEMATHESIS)'; \
	fi
	python3 tools/fuzz-api.py --server target/debug/rekisteri --st $(FUZZ_API_VENV)/bin/st $(FUZZ_API_FLAGS)

# Issue 20 point 4 (PL-20): the parser fuzz targets, a cargo-fuzz workspace of its own under fuzz/
# (nightly; what each asserts is in crates/fuzz-checks). Each target starts from its committed
# seeds (fuzz/corpus/<target>, read only) and keeps what it finds in target/fuzz/corpus/<target>;
# a crash leaves its input in fuzz/artifacts/<target>/ and stops the run. The figures (runs,
# coverage) go to target/fuzz/<target>.log and are summed up at the end.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := identity_code oid e164 vtj_message json_bodies audio_header
CARGO_FUZZ := cargo-fuzz@0.13.2
FUZZ_FLAGS ?=

fuzz: ## run each parser fuzz target (identity code, OID, E.164, VTJ message, create bodies' JSON, audio header) for $(FUZZ_SECONDS) s; installs cargo-fuzz if missing
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked $(CARGO_FUZZ)
	cargo +nightly fuzz build
	@mkdir -p target/fuzz
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
	  mkdir -p target/fuzz/corpus/$$target; \
	  cargo +nightly fuzz run $$target target/fuzz/corpus/$$target fuzz/corpus/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_FLAGS) > target/fuzz/$$target.log 2>&1 \
	    || { tail -60 target/fuzz/$$target.log; echo "== fuzz $$target: crashed (input under fuzz/artifacts/$$target)"; exit 1; }; \
	done
	@for target in $(FUZZ_TARGETS); do \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' target/fuzz/$$target.log); \
	  cov=$$(grep -o 'cov: [0-9]*' target/fuzz/$$target.log | tail -1); \
	  echo "== fuzz $$target: $$runs runs in $(FUZZ_SECONDS) s, no crash ($$cov)"; \
	done

# CI's check that the targets compile: on stable, without libFuzzer's C++ (the default feature
# `libfuzzer`), into the main workspace's target directory so that `make lint`'s build is reused.
fuzz-build: ## check that the parser fuzz targets compile (cheap; CI)
	$(CARGO) check --locked --manifest-path fuzz/Cargo.toml --bins --no-default-features --target-dir target

# Issue 20 point 6: the API test suite with every log line, every problem document the server
# renders and every test database (SQLite files after a checkpoint, PostgreSQL rows as text)
# scanned for identity codes in clear and the passwords, tokens and names the tests sent.
LEAK_SWEEP_DIR := target/leak-sweep

leak-sweep: ## run the API test suite with the leak sweep on; fails on any identity code, name or secret found in a log line, an error body or a database
	rm -rf $(LEAK_SWEEP_DIR) && mkdir -p $(LEAK_SWEEP_DIR)
	REKISTERI_LEAK_SWEEP=$(abspath $(LEAK_SWEEP_DIR)) scripts/s3-test-server run $(CARGO) test -p rekisteri-tests --test e2e
	$(MAKE) --no-print-directory leak-sweep-report

# CI runs `make test` with REKISTERI_LEAK_SWEEP set (the sweep costs no second run), then this.
leak-sweep-report: ## sum up what the leak sweep scanned; fails on any finding
	@scanned=$$(cat $(LEAK_SWEEP_DIR)/scanned-*.txt 2>/dev/null | awk '{n+=$$1; b+=$$2} END {printf "%d items, %.1f MB", n, b/1e6}'); \
	  findings=$$(cat $(LEAK_SWEEP_DIR)/findings-*.txt 2>/dev/null | wc -l); \
	  echo "== leak sweep: $$scanned scanned (log lines, problem documents, database files and rows): $$findings findings"; \
	  if [ -z "$$(ls $(LEAK_SWEEP_DIR)/scanned-*.txt 2>/dev/null)" ]; then echo "the sweep scanned nothing" >&2; exit 1; fi; \
	  if [ "$$findings" -ne 0 ]; then sort $(LEAK_SWEEP_DIR)/findings-*.txt | uniq -c | sort -rn | head -50; exit 1; fi

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

openapi: ## regenerate api-spec/openapi.json from the code
	$(CARGO) run -q -p rekisteri-server -- openapi > api-spec/openapi.json

# openapi-spec-validator from the Python package registry, in a virtualenv of its own under target/.
OPENAPI_VENV := target/openapi-venv
OPENAPI_SPEC_VALIDATOR := openapi-spec-validator==0.9.0

openapi-check: ## validate the committed api-spec/openapi.json with openapi-spec-validator (a virtualenv under target/), and its examples against their schemas
	@if ! $(OPENAPI_VENV)/bin/pip show -q openapi-spec-validator >/dev/null 2>&1; then \
	  python3 -m venv $(OPENAPI_VENV) && $(OPENAPI_VENV)/bin/pip install -q '$(OPENAPI_SPEC_VALIDATOR)'; \
	fi
	$(OPENAPI_VENV)/bin/openapi-spec-validator api-spec/openapi.json
	$(OPENAPI_VENV)/bin/python tools/check-openapi-examples.py api-spec/openapi.json

# The Python client an integrator would generate (issue 24): openapi-python-client from the Python
# package registry, pinned, in a virtualenv of its own under target/ that later runs reuse. The
# generated code goes to target/ (not committed) and is installed into that virtualenv; the
# generator must print nothing but its "Generating" line, and every operation of the document
# must be in the client (examples/check_client.py).
CLIENT_VENV := target/client-venv
CLIENT_OUT := target/python-client
OPENAPI_PYTHON_CLIENT := openapi-python-client==0.29.1

client: ## generate the Python client from api-spec/openapi.json into target/python-client, install it, and check it has every operation
	@if ! $(CLIENT_VENV)/bin/pip show -q openapi-python-client >/dev/null 2>&1; then \
	  python3 -m venv $(CLIENT_VENV) && $(CLIENT_VENV)/bin/pip install -q '$(OPENAPI_PYTHON_CLIENT)'; \
	fi
	rm -rf $(CLIENT_OUT)
	$(CLIENT_VENV)/bin/openapi-python-client generate --path api-spec/openapi.json --output-path $(CLIENT_OUT) \
	  --meta setup --config examples/openapi-python-client.yaml > target/python-client.log 2>&1 \
	  || { cat target/python-client.log; exit 1; }
	@if grep -v '^Generating ' target/python-client.log | grep -q .; then \
	  echo "the generator said more than it should (warnings about the document?):"; cat target/python-client.log; exit 1; \
	fi
	$(CLIENT_VENV)/bin/pip uninstall -q -y rekisteri-client 2>/dev/null || true
	$(CLIENT_VENV)/bin/pip install -q ./$(CLIENT_OUT)
	$(CLIENT_VENV)/bin/python examples/check_client.py api-spec/openapi.json $(CLIENT_OUT)/rekisteri_client

# How `make example` gets target/debug/rekisteri. CI passes `cargo test --workspace --no-run`
# after `make test`: the binary the tests built is reused instead of a second build with another
# feature set.
EXAMPLE_BUILD ?= $(CARGO) build -q -p rekisteri-server

example: client ## the client-record system example (examples/client-record-system) against a freshly seeded server on a temporary SQLite file; exit 0 only if its pushes are visible through the API
	$(EXAMPLE_BUILD)
	examples/run-example.sh

municipalities: ## replace the shipped municipality codes with Statistics Finland's list of YEAR (network needed), then rebuild and `make openapi`
	python3 tools/refresh-municipalities.py --year $(YEAR)

clean: ## remove build output and the local demo data
	$(CARGO) clean
	rm -rf data

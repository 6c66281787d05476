# depot — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432

.PHONY: run test test-sqlite test-postgres test-browser nextest fmt lint bench soak clean-data

## Build, migrate the SQLite file under ./data, load the demo fixtures and serve on DEPOT_BIND (127.0.0.1:3000).
run:
	$(CARGO) build --bin depot
	./target/debug/depot migrate
	./target/debug/depot load-fixtures --dir fixtures
	./target/debug/depot serve

## The whole suite: Rust tests on SQLite and then on PostgreSQL, then the browser tests. A missing
## PostgreSQL or chromium is skipped loudly; CI sets DEPOT_REQUIRE_POSTGRES=1 and DEPOT_REQUIRE_BROWSER=1.
test: nextest test-sqlite test-postgres test-browser

nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked
	@python3 -c "import aiosmtpd, schemathesis, easypost, slack_sdk, scipy, lifelines" 2>/dev/null || python3 -m pip install -q -r tests/requirements.txt

test-sqlite:
	DEPOT_TEST_DB=sqlite $(CARGO) nextest run --workspace --no-fail-fast

test-postgres:
	@if (exec 3<>/dev/tcp/$(PG_HOST)/$(PG_PORT)) 2>/dev/null; then \
		DEPOT_TEST_DB=postgres $(CARGO) nextest run --workspace --no-fail-fast; \
	elif [ "$${DEPOT_REQUIRE_POSTGRES:-0}" = 1 ]; then \
		echo "ERROR: PostgreSQL is not reachable at $(PG_HOST):$(PG_PORT) and DEPOT_REQUIRE_POSTGRES=1"; exit 1; \
	else \
		echo; echo "################################################################"; \
		echo "# SKIPPED: the PostgreSQL half of the suite ($(PG_HOST):$(PG_PORT) unreachable)"; \
		echo "################################################################"; echo; \
	fi

CHROMIUM ?= /usr/bin/chromium

test-browser:
	@if [ -x "$(CHROMIUM)" ] && command -v node >/dev/null; then \
		$(CARGO) build --bin depot && \
		{ [ -d tests/browser/node_modules/playwright-core ] || npm ci --prefix tests/browser --no-audit --no-fund; } && \
		CHROMIUM=$(CHROMIUM) node --test --test-concurrency=1 tests/browser/; \
	elif [ "$${DEPOT_REQUIRE_BROWSER:-0}" = 1 ]; then \
		echo "ERROR: chromium ($(CHROMIUM)) or node is missing and DEPOT_REQUIRE_BROWSER=1"; exit 1; \
	else \
		echo; echo "################################################################"; \
		echo "# SKIPPED: the browser tests (no $(CHROMIUM) or no node)"; \
		echo "################################################################"; echo; \
	fi

## The load benchmark (tests/bench/main.rs): a generated dataset served by the release build, two
## clients on loopback, SQLite and PostgreSQL. BENCH_RMAS=1000000 for the full run; the table goes
## to target/bench/results.md.
bench:
	$(CARGO) bench --bench load

## Crash safety at length: many SIGKILL rounds (tests/soak.rs runs three in `make test`).
soak:
	SOAK_ROUNDS=$${SOAK_ROUNDS:-25} DEPOT_TEST_DB=sqlite $(CARGO) nextest run --test soak --no-capture
	@if (exec 3<>/dev/tcp/$(PG_HOST)/$(PG_PORT)) 2>/dev/null; then \
		SOAK_ROUNDS=$${SOAK_ROUNDS:-25} DEPOT_TEST_DB=postgres $(CARGO) nextest run --test soak --no-capture; fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean-data:
	rm -rf data

# depot — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432

.PHONY: run test test-sqlite test-postgres nextest fmt lint bench soak clean-data

## Build, migrate the SQLite file under ./data, load the demo fixtures and serve on DEPOT_BIND (127.0.0.1:3000).
run:
	$(CARGO) build --bin depot
	./target/debug/depot migrate
	./target/debug/depot load-fixtures --dir fixtures
	./target/debug/depot serve

## The whole suite, on SQLite and then on PostgreSQL (skipped loudly when PostgreSQL is not reachable,
## a failure when DEPOT_REQUIRE_POSTGRES=1 as in CI).
test: nextest test-sqlite test-postgres

nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked

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

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean-data:
	rm -rf data

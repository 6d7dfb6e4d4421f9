# DPN Ledger. `make run` and `make test` work on a fresh machine: each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := contracts/node_modules/.installed

.PHONY: run test lint typecheck demo bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import ledger, market, api, sqlalchemy, alembic, pyorderbook"
	touch $(STAMP)

## contracts/node_modules: the pinned solc-js, OpenZeppelin and anvil, for recompiling the
## contracts (tests/chain checks the committed artifacts). Without node, one line and on.
$(NODE_STAMP): contracts/package.json contracts/package-lock.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  (cd contracts && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
	  && touch $(NODE_STAMP); \
	else echo "node/npm not installed: contracts use their committed artifacts, no recompile check"; fi

## run: migrate the embedded SQLite database, start a local anvil (when contracts/node_modules
## has it) with the escrow factory, load the demo network if empty, serve the API
run: $(STAMP) $(NODE_STAMP)
	$(BIN)/dpn run --host 127.0.0.1 --port 8000

## test: ruff, mypy --strict, then the whole pytest suite on two processes (pytest-xdist).
## --dist loadfile keeps each file on one process, so a module's fixtures (servers, anvil,
## chromium) are built once, as in a serial run (session ones once per process); -ra
## (pyproject's addopts) still prints every skip's reason, which .ci/run greps for.
## The schemathesis file runs after, outside xdist: its cases share two node ids (one a
## database), and under xdist only the first case of each id ran (2 passed instead of
## 126). So the two databases' halves run as two plain pytest processes side by side.
SCHEMATHESIS := tests/e2e/test_schemathesis.py
test: lint typecheck browser $(NODE_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --ignore=$(SCHEMATHESIS)
	$(BIN)/python -m pytest $(SCHEMATHESIS) -k sqlite & sqlite=$$!; \
	  $(BIN)/python -m pytest $(SCHEMATHESIS) -k postgresql; postgresql=$$?; \
	  wait $$sqlite && [ $$postgresql = 0 ]

## browser: Debian's chromium for tests/browser (as root through apt; otherwise they skip, saying so)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser tests will skip"; }

lint: $(STAMP)
	$(BIN)/python -m ruff check .

typecheck: $(STAMP)
	$(BIN)/python -m mypy

## bench: the benchmarks, printing JSON
bench: $(STAMP)
	$(BIN)/dpn bench ledger --json
	$(BIN)/dpn bench market --json
	$(BIN)/dpn bench http --json
	$(BIN)/dpn bench outputs --json

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis

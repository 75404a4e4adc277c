# Everything the project needs is installed from here, into .venv, on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MELTANO_INSTALLED := .meltano/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-x tests/e2e/test_first_hour_duckdb.py'
PYTEST_ARGS ?=

.PHONY: install lint check test demo bench meltano-install clean

$(INSTALLED): pyproject.toml emulator/pyproject.toml reports/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e ./emulator
	$(BIN)/python -m pip install --quiet -e ./reports
	# Byte-compiled once here: an editable install is not, and with PYTHONDONTWRITEBYTECODE
	# every tap process would compile the package again (0.1 s of its start-up).
	$(BIN)/python -m compileall -q tap_spanning emulator/spanning_emulator
	touch $@

install: $(INSTALLED)

# Meltano installs each plugin into its own venv under .meltano/.
$(MELTANO_INSTALLED): $(INSTALLED) meltano.yml
	$(BIN)/meltano install
	# uv installs the plugins' venvs without byte-code, and with PYTHONDONTWRITEBYTECODE
	# every `meltano run` would compile its loader and dbt from source again (target-postgres
	# starts in 1.0 s instead of 2.4 s, dbt in 2.9 s instead of 5.1 s). Each venv's own python
	# compiles it, so the cache tag is the one it reads.
	for venv in .meltano/*/*/venv; do $$venv/bin/python -m compileall -q -j 0 $$venv >/dev/null || exit 1; done
	mkdir -p output  # target-duckdb writes output/spanning.duckdb but does not create the folder
	mkdir -p .meltano && touch $@

meltano-install: $(MELTANO_INSTALLED)

lint: install
	$(BIN)/ruff check tap_spanning emulator reports tests bench scripts
	$(BIN)/mypy

# The tiers are folders of tests/: unit (pure code, and dbt's unit tests of the marts),
# inprocess (the tap in the test's process over real HTTP to the emulator), process (a
# program started where the process is the point) and e2e (through Meltano, a real loader,
# dbt and PostgreSQL). tests/conftest.py holds each folder to its marker.
FAST_TIERS := tests/unit tests/inprocess
SLOW_TIERS := tests/process tests/e2e

# The fast tier: lint, types, unit and in-process tests (no tap or Meltano process, no
# PostgreSQL), with fewer hypothesis examples, on 4 workers (most of a test's time is
# waiting on the emulator). The loop to run while working.
check: lint $(MELTANO_INSTALLED)
	HYPOTHESIS_PROFILE=dev $(BIN)/pytest $(FAST_TIERS) -n 4 -q $(PYTEST_ARGS)

# The whole suite: the unit and in-process tiers on 4 workers, then the process and end-to-end tests
# on 2 (a module stays on one worker; the longest modules start first, tests/conftest.py).
# Both tiers keep 2 cores busy: more workers only add contention. With PYTEST_ARGS, pytest
# just once with them. The end-to-end tests load into PostgreSQL: the
# private cluster of scripts/postgres.sh (127.0.0.1:54329; installed, initialised and
# started when missing, a no-op when it runs), unless TAP_SPANNING_TEST_PG_URL names another.
PYTEST_RUNS = $(if $(strip $(PYTEST_ARGS)),$(BIN)/pytest $(PYTEST_ARGS),$(BIN)/pytest $(FAST_TIERS) -n 4 && $(BIN)/pytest $(SLOW_TIERS) -n 2 --dist loadfile --no-loadscope-reorder)

test: lint $(MELTANO_INSTALLED)
ifeq ($(strip $(TAP_SPANNING_TEST_PG_URL)),)
	bash scripts/postgres.sh start
	export TAP_SPANNING_TEST_PG_URL="$$(bash scripts/postgres.sh url)" && $(PYTEST_RUNS)
else
	$(PYTEST_RUNS)
endif

# The demo writes only under output/demo/ (meltano.yml's `demo` environment): a warehouse,
# .env or JSONL of a real run is never read or touched (scripts/demo.sh).
demo: $(MELTANO_INSTALLED)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .meltano output .mypy_cache .ruff_cache .pytest_cache

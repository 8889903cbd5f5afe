# The README's commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= $(if $(wildcard config.toml),config.toml,config.example.toml)
PLUGINS := $(sort $(wildcard plugins/tkr-*))
STAMP := $(VENV)/.installed
#: npm modules installed from lockfiles (see the rules below).
WEB_NODE := plugins/tkr-web/node_modules/.installed
CLIENT_JS_NODE := clients/js/node_modules/.installed
CLIENT := clients/python
#: Where `make run` starts the host (the bind of config.example.toml); the echo agent connects here.
RUN_URL ?= http://127.0.0.1:8000

.PHONY: run test lint typecheck pytest bench install clean docs mutants

$(STAMP): pyproject.toml $(CLIENT)/pyproject.toml $(foreach p,$(PLUGINS),$(p)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]" -e $(CLIENT) $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

install: $(STAMP)

var/jwt-secret:
	mkdir -p var
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > var/jwt-secret
	@echo "Generated a development JWT secret in var/jwt-secret (git-ignored)."

# The development credential of the example agent `echo`: an API key (agents run unattended,
# and keys do not expire as JWTs must), made once and kept in var/ (git-ignored). The host
# accepts it by its SHA-256 digest, which `make run` passes in the environment.
var/echo-key:
	mkdir -p var
	umask 077 && $(BIN)/python -c "import secrets; print('tkr_ak_' + secrets.token_urlsafe(32))" > var/echo-key
	@echo "Made a development API key for the agent echo in var/echo-key (git-ignored)."

ECHO_DIGEST = $$($(BIN)/python -c "import hashlib; print(hashlib.sha256(open('var/echo-key').read().strip().encode()).hexdigest())")

# The host and the echo agent; Ctrl-C stops both (the trap ends the agent whichever way the host stops).
run: $(STAMP) var/jwt-secret var/echo-key $(WEB_NODE)
	@echo "tkr-host on $(RUN_URL), with the agent echo — mint a token in another shell with:"
	@echo "  TKR_JWT_SECRET=\$$(cat var/jwt-secret) $(BIN)/tkr-host token --sub alice --kind user"
	@echo "Open the web chat, signed in as alice (the token stays in the fragment, which never reaches the server):"
	@echo "  $(RUN_URL)/#token=$$(TKR_JWT_SECRET="$$(cat var/jwt-secret)" $(BIN)/tkr-host token --sub alice --kind user --name Alice --config $(CONFIG))"
	@TKR_TOKEN="$$(cat var/echo-key)" $(BIN)/tkr-agent run examples/echo_agent.py:agent --url $(RUN_URL) & agent=$$!; \
	trap 'kill -TERM $$agent 2>/dev/null; wait $$agent 2>/dev/null' EXIT INT TERM; \
	TKR_PLUGINS__AUTH_APIKEY__KEYS="[{\"sha256\": \"$(ECHO_DIGEST)\", \"sub\": \"echo\", \"kind\": \"agent\", \"name\": \"Echo\"}]" \
	TKR_JWT_SECRET="$$(cat var/jwt-secret)" $(BIN)/tkr-host serve --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy tkr_host $(CLIENT)/tkr_client $(foreach p,$(PLUGINS),$(p)/$(subst -,_,$(notdir $(p))))

# The web page's npm modules (socket.io-client, marked, DOMPurify), served by tkr-web from
# node_modules, and the browser client's test dependencies: from their lockfiles, never copied.
$(WEB_NODE): plugins/tkr-web/package.json plugins/tkr-web/package-lock.json
	npm ci --prefix plugins/tkr-web --no-audit --no-fund
	touch $(WEB_NODE)

$(CLIENT_JS_NODE): clients/js/package.json clients/js/package-lock.json
	npm ci --prefix clients/js --no-audit --no-fund
	touch $(CLIENT_JS_NODE)

# The README's JavaScript example needs socket.io-client; tests/test_readme.py runs it with node.
EXAMPLES_NODE := examples/node_modules/.installed

$(EXAMPLES_NODE): examples/package.json examples/package-lock.json
	npm ci --prefix examples --no-audit --no-fund
	touch $(EXAMPLES_NODE)

# The benchmark's Node socket.io server and JS socket.io-client load, from their lockfile
# (tests/test_bench.py runs the bench's quick mode against all three servers).
BENCH_NODE := bench/node/node_modules/.installed

$(BENCH_NODE): bench/node/package.json bench/node/package-lock.json
	npm ci --prefix bench/node --no-audit --no-fund
	touch $(BENCH_NODE)

# Two steps (docs/testing.md, "Speed"): the suite waits far more than it computes, so everything
# not marked `serial` runs on PYTEST_WORKERS pytest-xdist workers (each test has its own port,
# SQLite file, PostgreSQL schema and Redis prefix); then the `serial` tests (tests/faults stop
# PostgreSQL for real) run alone. Both steps always run; the rule fails if either did. A step
# that PYTEST_ARGS leaves nothing to run (pytest's exit status 5) is not a failure.
PYTEST_WORKERS ?= 4
PYTEST_ARGS ?=
pytest: $(STAMP) $(EXAMPLES_NODE) $(WEB_NODE) $(CLIENT_JS_NODE) $(BENCH_NODE)
	@status=0; \
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not serial" $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	$(BIN)/pytest -q -m serial $(PYTEST_ARGS) || { s=$$?; [ $$s -eq 5 ] || status=$$s; }; \
	exit $$status

test: lint typecheck pytest

# docs/plugins.md is generated from tkr_host/hookspecs.py; a test fails when it is stale.
docs: $(STAMP)
	$(BIN)/python scripts/hook_reference.py
	$(BIN)/python scripts/error_reference.py

# Mutation testing (docs/testing.md), NOT part of `make test`: slow. The modules and their tests are
# the lines of tests/mutation/modules.txt; `make mutants MUTANTS="tkr_host/errors.py"` runs some of them.
# The report: mutants/report.md (git-ignored).
MUTANTS ?=
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[mutants]"
	$(BIN)/python tests/mutation/run_mutants.py $(MUTANTS)

# Three servers, two client kinds, three rounds (bench/README.md); BENCH_QUICK=1 for a small, fast run.
bench: $(STAMP) $(BENCH_NODE)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

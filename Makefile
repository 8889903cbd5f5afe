# The README's commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= $(if $(wildcard config.toml),config.toml,config.example.toml)
PLUGINS := $(sort $(wildcard plugins/tkr-*))
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench install clean docs

$(STAMP): pyproject.toml $(foreach p,$(PLUGINS),$(p)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]" $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

install: $(STAMP)

var/jwt-secret:
	mkdir -p var
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > var/jwt-secret
	@echo "Generated a development JWT secret in var/jwt-secret (git-ignored)."

run: $(STAMP) var/jwt-secret
	@echo "tkr-host on http://127.0.0.1:8000 — mint a token in another shell with:"
	@echo "  TKR_JWT_SECRET=\$$(cat var/jwt-secret) $(BIN)/tkr-host token --sub alice --kind user"
	TKR_JWT_SECRET="$$(cat var/jwt-secret)" $(BIN)/tkr-host serve --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy tkr_host $(foreach p,$(PLUGINS),$(p)/$(subst -,_,$(notdir $(p))))

# The README's JavaScript example needs socket.io-client; tests/test_readme.py runs it with node.
EXAMPLES_NODE := examples/node_modules/.installed

$(EXAMPLES_NODE): examples/package.json examples/package-lock.json
	npm ci --prefix examples --no-audit --no-fund
	touch $(EXAMPLES_NODE)

pytest: $(STAMP) $(EXAMPLES_NODE)
	$(BIN)/pytest -q

test: lint typecheck pytest

# docs/plugins.md is generated from tkr_host/hookspecs.py; a test fails when it is stale.
docs: $(STAMP)
	$(BIN)/python scripts/hook_reference.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache

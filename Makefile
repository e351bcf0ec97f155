# paper-digest — `make demo` shows it working, `make test` proves it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test lint format clean

install: $(STAMP)  ## create .venv with the package (editable) and the dev tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'from digest.ranking import lexical; from digest.delivery import qp; lexical.compile_kernel(); qp.compile_kernel()'
	touch $(STAMP)

# Debian packages the browser and feed-reader tests drive: chromium (Playwright never downloads
# a browser), newsboat and rss2email. Installed only when missing, and only as root;
# otherwise say what is missing (those tests skip, and fail under CI=true).
SYSTEM_DEPS := /usr/bin/chromium:chromium /usr/bin/newsboat:newsboat /usr/bin/r2e:rss2email

system-deps:  ## apt-get install chromium newsboat rss2email when missing (as root)
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
	  test -x "$${dep%%:*}" || missing="$$missing $${dep#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "system-deps: missing$$missing; install them (as root: apt-get install -y$$missing)" >&2; \
	  exit 0; \
	fi; \
	echo "system-deps: apt-get install -y$$missing"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing

demo: install  ## run the whole pipeline on the bundled sample (outbox + feeds on disk)
	$(BIN)/digest demo --dir demo-output

test: install system-deps  ## run the whole test suite
	$(BIN)/pytest

lint: install  ## ruff + mypy strict + the import layers (docs/architecture.md)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

# Not part of `make test`: needs Docker, or root to install and start it (docker/check.sh).
.PHONY: docker-check
docker-check:  ## build the image and run demo, serve, feeds and compose in Docker
	bash docker/check.sh

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: install browser test demo lint bench clean

install: $(VENV)/.installed

# torch first, then everything else constrained to it, so no second (CUDA) torch is ever pulled.
# Never add torchvision or transformers[vision]: no CPU build exists for this torch, and it breaks transformers.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[test,demo]"
	-$(PY) tests/transformers_suite.py  # transformers' common model tests, from the installed version's sdist
	touch $@

# Headless Chromium and its driver from the system packages, for the search app's browser test (never downloaded
# by the tests). Installed only when missing and apt-get exists; without apt-get that test skips and says why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	else echo "make browser: no apt-get here: the search app's browser test will skip"; fi

test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

# GLCCL and its two ablations trained from scratch on the synthetic corpus, evaluated beside chance (CPU, minutes).
demo: install
	$(PY) -m glccl_hf.demo --output_dir demo_output

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m bench.similarity

clean:
	rm -rf $(VENV) build *.egg-info demo_output demo_quick .transformers-tests

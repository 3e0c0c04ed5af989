# pulp_downloads: `make run` (set up, migrate, run) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# The checkout's settings file, read by manage.py, uvicorn and granian (settings/environment.py):
# `make env` (so `make run`) writes the demo's once. PULP_DOWNLOADS_ENV_FILE names another
# file; set but empty, none is written or read.
ENV_FILE := $(if $(filter undefined,$(origin PULP_DOWNLOADS_ENV_FILE)),.env,$(PULP_DOWNLOADS_ENV_FILE))
VAR_DIR  := $(or $(PULP_DOWNLOADS_VAR_DIR),var)

.PHONY: run test venv env migrate clean browser servers screenshots

venv: $(STAMP)

$(STAMP): requirements.txt
	@echo "installing dependencies into $(VENV), about a minute"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -qq --upgrade pip
	@$(PY) -m pip install -qq -r requirements.txt
	@touch $@

# The demo runs as deployed (DEBUG off): a secret key, static files served by the app, and its
# sample upstream on loopback allowed by the outbound policy, all in $(ENV_FILE). Never
# overwritten; a key an older checkout kept in var/secret-key is carried into it.
env: $(ENV_FILE)

ifneq ($(strip $(ENV_FILE)),)
$(ENV_FILE):
	@$(PYTHON) settings/demo_env.py $@ --key-from $(VAR_DIR)/secret-key
endif

# Migrations print one line (their full output only when they fail).
migrate: venv env
	@out=$$($(PY) manage.py migrate --noinput) || { echo "$$out"; exit 1; }; \
	  n=$$(echo "$$out" | grep -c '^  Applying '); \
	  if [ "$$n" = 0 ]; then echo "database ready (up to date)"; \
	  else echo "database ready: $$n migrations applied"; fi

# The demo: admin user, sample upstream, the "sample" remote synced, then web app + worker.
run: migrate
	@exec $(PY) manage.py demo --host $(HOST) --port $(PORT)

# The browser test drives Debian's Chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || (echo "installing Debian's chromium for the browser test" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Real servers the suite starts itself (nginx in front of the content app), from Debian.
servers:
	@test -x /usr/sbin/nginx || (echo "installing Debian's nginx-light for the content tests" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null)

# The suite runs on SQLite unless DATABASE_URL names another database.
test: venv browser servers
	$(PY) -m pytest $(PYTEST_ARGS)

# The pictures of docs/user-guide.md: admin pages from the browser tests, and the command
# line's progress bars captured in a pseudo-terminal.
screenshots: venv browser servers
	$(PY) docs/screenshots.py

clean:
	rm -rf $(VENV) var

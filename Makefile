# pulp_downloads: `make run` (set up, migrate, run) and `make test` (set up, run the suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed
# The demo runs as deployed (DEBUG off): a secret key generated once into var/, static files
# served by the app, and its sample upstream on loopback allowed by the outbound policy.
DEMO_KEY := var/secret-key
DEMO_ENV  = SECRET_KEY="$${SECRET_KEY:-$$(cat $(DEMO_KEY))}" SERVE_STATIC=1 \
            PULP_DOWNLOADS_ALLOWED_NETWORKS="$${PULP_DOWNLOADS_ALLOWED_NETWORKS-127.0.0.0/8}"

.PHONY: run test venv migrate clean browser servers screenshots

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing dependencies into $(VENV), about a minute"
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(DEMO_KEY):
	@mkdir -p var && umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(50))" > $@

migrate: venv $(DEMO_KEY)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput

# The demo: admin user, sample upstream, the "sample" remote synced, then web app + worker.
run: migrate
	$(DEMO_ENV) exec $(PY) manage.py demo --host $(HOST) --port $(PORT)

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

# The two commands a newcomer types: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The in-memory channel layer lives in one process: without Redis the web side runs one.
WEB_CONCURRENCY ?= $(if $(REDIS_URL),2,1)

.PHONY: run test lint install browser deploy-tools imap-server migrate demo lock messages bench-inbound bench-email bench-outbound bench-latency bench-sockets bench-chat bench-pair clean

$(INSTALLED): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $@

install: $(INSTALLED)

# The inbox's end-to-end test drives Debian's chromium (Playwright downloads no browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null)

# The deployment tests run production's proxy and Redis Sentinel: Debian's haproxy and redis-sentinel
# (installed, never started as services: the tests start their own on free ports).
deploy-tools:
	@test -x /usr/sbin/haproxy -a -x /usr/bin/redis-sentinel || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy redis-sentinel >/dev/null)

# The IMAP polling tests run Debian's Dovecot (tests/imap_server.py), started by the tests themselves.
imap-server:
	@test -x /usr/sbin/dovecot || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends dovecot-imapd >/dev/null)

migrate: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_schedules

demo: migrate
	$(BIN)/python manage.py demo

# Without real Twilio credentials, `make run` also starts the simulator (Twilio's API and the
# customers' phones on http://127.0.0.1:$(SIMULATOR_PORT)/) and points every process at it.
SIMULATOR_PORT ?= 8001
# The simulator's SMTP server (Camille's mailbox, http://127.0.0.1:$(SIMULATOR_PORT)/mailbox), which Django sends email to.
SIMULATOR_SMTP_PORT ?= 8025
ifeq ($(strip $(TWILIO_ACCOUNT_SID)),)
RUN_PROCFILE := Procfile.dev
RUN_ENV := TWILIO_API_BASE_URL=http://127.0.0.1:$(SIMULATOR_PORT) TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 \
	TWILIO_AUTH_TOKEN=simulator-dev-auth-token TWILIO_WHATSAPP_FROM=whatsapp:+33180000000 TWILIO_SMS_FROM=+33180000000 \
	PUBLIC_BASE_URL=http://$(HOST):$(PORT) SIMULATOR_PORT=$(SIMULATOR_PORT) \
	SIMULATOR_SMTP_PORT=$(SIMULATOR_SMTP_PORT) EMAIL_HOST=127.0.0.1 EMAIL_PORT=$(SIMULATOR_SMTP_PORT) \
	ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY=simulator-dev-mailgun-signing-key ANYMAIL_WEBHOOK_SECRET=simulator:dev-webhook-secret \
	CHAT_JWT_SECRET=simulator-dev-chat-secret-for-the-bank-site CHAT_ALLOWED_ORIGINS=http://127.0.0.1:$(SIMULATOR_PORT)
else
RUN_PROCFILE := Procfile
RUN_ENV :=
endif

# honcho runs the Procfile's processes; one Ctrl-C stops them all.
run: demo
	HOST=$(HOST) PORT=$(PORT) WEB_CONCURRENCY=$(WEB_CONCURRENCY) PATH="$(abspath $(BIN)):$$PATH" $(RUN_ENV) \
		$(BIN)/honcho start -f $(RUN_PROCFILE)

test: install browser deploy-tools imap-server
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports

# Benchmarks: the shipped server on PostgreSQL + Redis (docs/benchmarks.md: targets and figures).
bench-inbound: install
	bench/serve.sh $(BIN)/python bench/inbound.py -n $(or $(N),20000) -c $(or $(C),32)

# N realistic emails (20 KB, a quoted reply, half with a 200 KB PDF) through Mailgun's signed inbound webhook.
bench-email: install
	ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY=bench-mailgun-signing-key ANYMAIL_WEBHOOK_SECRET=bench:webhook-secret \
	bench/serve.sh $(BIN)/python bench/email_inbound.py -n $(or $(N),2000) -c $(or $(C),16)

# N replies queued at once, delivered by a real qcluster to the simulator (see bench/outbound.py).
# Its own database and ports, so it never collides with a bench-inbound run.
bench-outbound: install
	BENCH_DATABASE_URL=$(or $(BENCH_DATABASE_URL),postgres://postgres@127.0.0.1:5432/attitre_bench_outbound) \
	BENCH_REDIS_URL=$(or $(BENCH_REDIS_URL),redis://127.0.0.1:6379/2) BENCH_PORT=$(or $(BENCH_PORT),8110) \
		bench/serve.sh $(BIN)/python bench/outbound.py -n $(or $(N),1000) --workers $(or $(W),4)

bench-latency: install
	bench/serve.sh $(BIN)/python bench/latency.py -n $(or $(N),1000) --rate $(or $(RATE),50)

# Inbound webhooks through HAProxy (deploy/haproxy.cfg) to one server, then to two.
bench-pair: install deploy-tools
	bench/pair.sh -n $(or $(N),10000) -c $(or $(C),32)

bench-sockets: install
	WEB_CONCURRENCY=1 bench/serve.sh $(BIN)/python bench/sockets.py -n $(or $(N),5000) --batch $(or $(BATCH),200)

# N customers' chat widgets on one server process, writing at RATE msgs/s (bench/chat.py).
bench-chat: install
	WEB_CONCURRENCY=1 CHAT_JWT_SECRET=bench-only-chat-secret-0123456789abcdef CHAT_ALLOWED_ORIGINS=https://www.bank.example \
	CHAT_RATE_PER_MINUTE=1000 bench/serve.sh $(BIN)/python bench/chat.py -n $(or $(N),5000) --rate $(or $(RATE),100) \
		--messages $(or $(MESSAGES),2000)

# Re-resolve the pinned install set after editing requirements*.in.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements-dev.in
	( echo '# Pinned install set (generated by `make lock` from requirements-dev.in). Edit the .in files, not this one.'; \
	  .lock-venv/bin/pip freeze ) > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) staticfiles .pytest_cache

# Extract the strings marked for translation into the French catalogue every app shares
# (core/locale/fr/LC_MESSAGES/django.po, LOCALE_PATHS), then compile it.
messages: install
	$(BIN)/python manage.py makemessages -l fr --no-location --no-obsolete
	$(BIN)/python manage.py compilemessages -l fr

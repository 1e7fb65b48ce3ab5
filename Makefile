# demandflow: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := prometheus prometheus-alertmanager docker-compose

.PHONY: demo test bench install system-deps kafka-fetch kafka-start kafka-stop lint unit integration clean

# `make demo SOURCE=replay` replays real exports (REPLAY_FILES, MAPPING) at SPEED x real time.
SOURCE ?= simulator
SPEED ?= 600
MAPPING ?= decc-cad
REPLAY_FILES ?= ../shared/data/decc-cad/week*.csv

demo: install kafka-fetch  ## Local Kafka + worker + simulator (or replay) + live summary
	deploy/demo.sh --source $(SOURCE) $(if $(filter replay,$(SOURCE)),--speed $(SPEED) \
		--mapping $(MAPPING) $(foreach f,$(wildcard $(REPLAY_FILES)),--replay-file $(f))) \
		$(DEMO_ARGS)

test: install system-deps kafka-fetch  ## Install what is needed, lint, run the whole suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests

bench: install  ## Benchmarks (never part of make test): the per-event hot path for now
	$(BIN)/python -m bench.hot_path

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install kafka-fetch
	$(BIN)/python -m pytest tests/integration

lint: install
	$(BIN)/ruff check .

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages later parts need (Prometheus, Alertmanager, promtool, amtool);
# installed when running as root, otherwise named.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "not root: install these Debian packages yourself:$$missing"; fi; \
	fi

kafka-fetch:
	deploy/kafka/kafka.sh fetch

kafka-start:
	deploy/kafka/kafka.sh start

kafka-stop:
	deploy/kafka/kafka.sh stop

clean:
	rm -rf .run .pytest_cache .ruff_cache

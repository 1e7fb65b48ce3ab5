# demandflow: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
DEBIAN_PACKAGES := prometheus prometheus-alertmanager docker-compose

.PHONY: demo test bench install system-deps kafka-fetch kafka-start kafka-stop lint unit integration clean

# `make demo SOURCE=replay` replays real exports (REPLAY_FILES, MAPPING) at SPEED x real time.
SOURCE ?= simulator
SPEED ?= 600
MAPPING ?= decc-cad
# A week of a real export ships with the project (deploy/samples/README.md says where from).
REPLAY_FILES ?= deploy/samples/decc-week41.csv.gz

demo: install kafka-fetch  ## Local Kafka + worker + simulator (or replay) + live summary
	deploy/demo.sh --source $(SOURCE) $(if $(filter replay,$(SOURCE)),--speed $(SPEED) \
		--mapping $(MAPPING) $(foreach f,$(wildcard $(REPLAY_FILES)),--replay-file $(f))) \
		$(DEMO_ARGS)

test: install system-deps kafka-fetch $(BENCH_STAMP)  ## Install what is needed, lint, run the whole suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest tests

bench: install kafka-fetch $(BENCH_STAMP)  ## Benchmarks (never part of make test): docs/performance.md
	$(BIN)/python -m bench.hot_path
	$(BIN)/python -m bench.backlog_scale
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Quix Streams, the benchmark's peer, pins pydantic below demandflow's: its own venv, with
# demandflow's code (not its dependencies) installed beside it for the shared pure functions.
$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet quixstreams==3.28.1 jsonschema==4.26.0 \
		fastjsonschema==2.22.3 orjson==3.13.0 'pydantic-settings>=2.6,<3'
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(BENCH_STAMP)

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install kafka-fetch $(BENCH_STAMP)
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

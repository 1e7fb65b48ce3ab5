#!/usr/bin/env bash
# `make demo`: local Kafka (unless DEMANDFLOW_BOOTSTRAP_SERVERS names a cluster),
# then the worker, the simulator and a live summary until Ctrl-C; then it stops
# everything it started.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"
if [[ -z "${DEMANDFLOW_BOOTSTRAP_SERVERS:-}" ]]; then
    trap 'deploy/kafka/kafka.sh stop' EXIT
    deploy/kafka/kafka.sh start
fi
# The pipeline reaches the broker just started on its port (DEMANDFLOW_KAFKA_PORT moves it
# off 9092). Not exported to this script: kafka.sh stop does nothing when it is set.
BOOTSTRAP="${DEMANDFLOW_BOOTSTRAP_SERVERS:-127.0.0.1:${DEMANDFLOW_KAFKA_PORT:-9092}}"
# Ctrl-C is for the demo process below (it stops what it started); this script waits for
# it, then its EXIT trap stops Kafka. A handler, not `trap '' INT`: an ignored signal stays
# ignored in the child, and the demo then never saw Ctrl-C at all.
trap ':' INT
DEMANDFLOW_BOOTSTRAP_SERVERS="$BOOTSTRAP" .venv/bin/demandflow demo "$@" || true

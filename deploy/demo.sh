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
trap '' INT  # Ctrl-C is for the demo process below; this script then cleans up
( trap - INT; exec .venv/bin/demandflow demo "$@" )

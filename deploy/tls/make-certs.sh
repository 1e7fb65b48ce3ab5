#!/usr/bin/env bash
# Make a CA, a broker certificate and a client certificate with openssl, for trying
# demandflow's TLS and mutual-TLS set-ups locally (deploy/kafka/kafka.sh) and in Docker
# (deploy/docker-compose.secured.yml). A force uses certificates from its own CA instead.
#
#   deploy/tls/make-certs.sh DIR [BROKER_NAMES]
#
# DIR gets: ca.pem (what clients trust), ca.key, broker.pem (key + certificate + CA, the
# PEM "keystore" Kafka reads), client.crt and client.key (CN=demandflow, for mutual TLS).
# BROKER_NAMES: the broker certificate's names, comma-separated (default
# "DNS:localhost,IP:127.0.0.1"). Files are readable by their owner only. Does nothing if
# DIR/broker.pem exists.
set -euo pipefail
dir="${1:?usage: make-certs.sh DIR [BROKER_NAMES]}"
names="${2:-DNS:localhost,IP:127.0.0.1}"
[[ -f "$dir/broker.pem" ]] && exit 0
command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl is required" >&2; exit 1; }
mkdir -p "$dir" && chmod 700 "$dir"
ssl() { openssl "$@" 2>/dev/null; }
ssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=demandflow-local-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem"
ssl req -newkey rsa:2048 -nodes -subj "/CN=demandflow-broker" \
    -keyout "$dir/broker.key.pkcs1" -out "$dir/broker.csr"
printf 'subjectAltName=%s\n' "$names" >"$dir/san.ext"
ssl x509 -req -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 365 -extfile "$dir/san.ext" -out "$dir/broker.crt"
ssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key.pkcs1" -out "$dir/broker.key"
cat "$dir/broker.key" "$dir/broker.crt" "$dir/ca.pem" >"$dir/broker.pem"
ssl req -newkey rsa:2048 -nodes -subj "/CN=demandflow" \
    -keyout "$dir/client.key" -out "$dir/client.csr"
ssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 365 -out "$dir/client.crt"
rm -f "$dir"/*.csr "$dir/broker.key.pkcs1" "$dir/san.ext"
chmod 600 "$dir"/*

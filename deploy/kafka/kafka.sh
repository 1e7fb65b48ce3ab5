#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) for demos and tests.
#
#   deploy/kafka/kafka.sh fetch   resolve the broker jars from Maven Central (cached)
#   deploy/kafka/kafka.sh start   format (first time) and start on 127.0.0.1, wait until ready
#   deploy/kafka/kafka.sh stop    stop it cleanly (SIGTERM, then wait for the controlled shutdown)
#   deploy/kafka/kafka.sh status  exit 0 when it is running
#
# If DEMANDFLOW_BOOTSTRAP_SERVERS is set, the pipeline uses that cluster and this
# script starts nothing: a user with a cluster never gets a second one.
#
# Environment (all optional):
#   DEMANDFLOW_KAFKA_PORT        broker port (default 9092); the controller uses port+1
#   DEMANDFLOW_KAFKA_RUN_DIR     data, logs and pid (default <repo>/.run/kafka-<port>)
#   DEMANDFLOW_KAFKA_CACHE       jar cache (default ~/.cache/demandflow/kafka-<version>)
#   DEMANDFLOW_KAFKA_HEAP        JVM heap (default 512m)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
POM="$HERE/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
PORT="${DEMANDFLOW_KAFKA_PORT:-9092}"
CPORT="$((PORT + 1))"
RUN_DIR="${DEMANDFLOW_KAFKA_RUN_DIR:-$REPO/.run/kafka-$PORT}"
CACHE="${DEMANDFLOW_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/demandflow/kafka-$KAFKA_VERSION}"
HEAP="${DEMANDFLOW_KAFKA_HEAP:-512m}"
PIDFILE="$RUN_DIR/kafka.pid"
LOG="$RUN_DIR/logs/server.log"

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_java() {
    command -v java >/dev/null 2>&1 ||
        die "Java 17 or newer is required. Install it with: apt-get install openjdk-17-jre-headless"
    local major
    major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$major" && "$major" -ge 17 ]] ||
        die "Java 17 or newer is required (found '${major:-unknown}'). Install: apt-get install openjdk-17-jre-headless"
}

fetch() {
    if [[ -f "$CACHE/.complete" ]]; then return 0; fi
    command -v mvn >/dev/null 2>&1 ||
        die "Maven is required to fetch Kafka $KAFKA_VERSION. Install it with: apt-get install maven"
    echo "Fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE ..."
    mkdir -p "$CACHE"
    mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$CACHE" -DincludeScope=runtime ||
        die "Maven could not resolve Kafka $KAFKA_VERSION (see the output above)"
    touch "$CACHE/.complete"
}

running() {
    [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# DEMANDFLOW_KAFKA_SECURITY=sasl_ssl: the client listener speaks SASL_SSL (SCRAM-SHA-512)
# with a certificate from a CA made here on the first start ($RUN_DIR/tls/ca.pem is what
# clients trust); the SCRAM user "demandflow" gets a random password in
# $RUN_DIR/tls/demandflow.password. For tests and for trying a secured set-up locally.
# DEMANDFLOW_KAFKA_SECURITY=mtls: the client listener speaks SSL and requires a client
# certificate signed by that CA (mutual TLS): $RUN_DIR/tls/client.crt and client.key.
SECURITY="${DEMANDFLOW_KAFKA_SECURITY:-plaintext}"
TLS="$RUN_DIR/tls"

make_tls() {
    [[ -f "$TLS/broker.pem" ]] && return 0
    command -v openssl >/dev/null 2>&1 || die "openssl is required for DEMANDFLOW_KAFKA_SECURITY=$SECURITY"
    mkdir -p "$TLS" && chmod 700 "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=demandflow-local-ca" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$TLS/broker.key.pkcs1" -out "$TLS/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$TLS/san.ext"
    openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 30 -extfile "$TLS/san.ext" -out "$TLS/broker.crt" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$TLS/broker.key.pkcs1" -out "$TLS/broker.key"
    cat "$TLS/broker.key" "$TLS/broker.crt" "$TLS/ca.pem" >"$TLS/broker.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=demandflow" \
        -keyout "$TLS/client.key" -out "$TLS/client.csr" 2>/dev/null
    openssl x509 -req -in "$TLS/client.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 30 -out "$TLS/client.crt" 2>/dev/null
    openssl rand -hex 16 >"$TLS/admin.password"
    openssl rand -hex 16 >"$TLS/demandflow.password"
    chmod 600 "$TLS"/*
}

write_config() {
    mkdir -p "$RUN_DIR/data" "$RUN_DIR/logs"
    local proto=PLAINTEXT extra=""
    if [[ "$SECURITY" == sasl_ssl ]]; then
        make_tls
        proto=SASL_SSL
        extra="sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(cat "$TLS/admin.password")\";
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem"
    elif [[ "$SECURITY" == mtls ]]; then
        make_tls
        proto=SSL
        extra="ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem"
    elif [[ "$SECURITY" != plaintext ]]; then
        die "DEMANDFLOW_KAFKA_SECURITY must be plaintext, sasl_ssl or mtls (not '$SECURITY')"
    fi
    cat >"$RUN_DIR/server.properties" <<EOF
# Generated by deploy/kafka/kafka.sh: a single-node KRaft broker for local use.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=$proto://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=$proto://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$proto:$proto,CONTROLLER:PLAINTEXT
inter.broker.listener.name=$proto
$extra
log.dirs=$RUN_DIR/data
# Topics are created explicitly by the pipeline (partition counts must match
# their changelogs), so the broker never invents one.
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
    cat >"$RUN_DIR/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
EOF
}

java_cmd() {
    java -Xms128m "-Xmx$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$RUN_DIR/log4j2.properties" \
        -cp "$CACHE/*" "$@"
}

start() {
    if [[ -n "${DEMANDFLOW_BOOTSTRAP_SERVERS:-}" ]]; then
        echo "DEMANDFLOW_BOOTSTRAP_SERVERS=$DEMANDFLOW_BOOTSTRAP_SERVERS: using that cluster, starting nothing."
        return 0
    fi
    if running; then echo "Kafka already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; return 0; fi
    if port_open "$PORT"; then die "port $PORT is taken by another process; set DEMANDFLOW_KAFKA_PORT"; fi
    need_java
    fetch
    write_config
    if [[ ! -f "$RUN_DIR/data/meta.properties" ]]; then
        local scram=()
        if [[ "$SECURITY" == sasl_ssl ]]; then  # the SCRAM users exist from the first start
            scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$TLS/admin.password")]"
                   --add-scram "SCRAM-SHA-512=[name=demandflow,password=$(cat "$TLS/demandflow.password")]")
        fi
        java_cmd kafka.tools.StorageTool format \
            -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
            -c "$RUN_DIR/server.properties" "${scram[@]}" >"$RUN_DIR/logs/format.log" 2>&1 ||
            die "formatting the KRaft log failed: $(tail -5 "$RUN_DIR/logs/format.log")"
    fi
    : >"$LOG"
    # setsid: its own session, so a Ctrl-C meant for `make demo` does not reach the
    # broker before the pipeline has stopped; `kafka.sh stop` stops it in order.
    setsid nohup java -Xms128m "-Xmx$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$RUN_DIR/log4j2.properties" \
        -cp "$CACHE/*" kafka.Kafka "$RUN_DIR/server.properties" \
        >"$RUN_DIR/logs/stdout.log" 2>&1 &
    echo $! >"$PIDFILE"
    local waited=0
    until grep -q "Kafka Server started" "$LOG" 2>/dev/null && port_open "$PORT"; do
        if ! running; then
            die "Kafka exited during start-up; last lines of $LOG:
$(tail -20 "$LOG" "$RUN_DIR/logs/stdout.log")"
        fi
        if ((waited >= 120)); then die "Kafka did not start within 60 s (see $LOG)"; fi
        sleep 0.5
        waited=$((waited + 1))
    done
    echo "Kafka $KAFKA_VERSION ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), data in $RUN_DIR)"
}

stop() {
    if [[ -n "${DEMANDFLOW_BOOTSTRAP_SERVERS:-}" ]]; then return 0; fi
    if ! running; then rm -f "$PIDFILE"; echo "Kafka on port $PORT is not running"; return 0; fi
    local pid waited=0
    pid="$(cat "$PIDFILE")"
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= 60)); then
            echo "Kafka did not stop within 30 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    rm -f "$PIDFILE"
    echo "Kafka on port $PORT stopped"
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    status) running ;;
    *) die "usage: $0 fetch|start|stop|status" ;;
esac

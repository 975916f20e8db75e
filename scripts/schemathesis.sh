#!/usr/bin/env bash
# Property-based tests of a running Natter API with Schemathesis, generated from the
# server's own OpenAPI document.
#
#   scripts/schemathesis.sh BASE_URL [TOKEN] [-- MORE_SCHEMATHESIS_RUN_OPTIONS...]
#
# Loads BASE_URL/openapi.json and sends every request to BASE_URL, nowhere else (proxies
# from the environment are ignored, redirects are not followed), with the header
# "Authorization: Bearer TOKEN" when TOKEN is given (schemathesis masks it in its output).
# Checks on every response:
#   not_a_server_error            no 5xx (even a documented 503 counts as a failure)
#   status_code_conformance       the status code is documented for the operation
#   content_type_conformance      the Content-Type is documented for that status
#   response_schema_conformance   the body matches the documented schema
# All phases run (examples, coverage, fuzzing, stateful), once, with one worker and at most
# NATTER_SCHEMATHESIS_MAX_EXAMPLES generated cases per operation and phase: 20-90 s against
# a local debug build (mostly min_sequence waits that end in 503 after 3 s). Exit 0 when
# nothing failed, non-zero on failures or errors; the summary (each failure with a curl
# line to reproduce it, then the totals) comes last.
#
# Env: NATTER_SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase (default 20)
#      NATTER_SCHEMATHESIS_REQUEST_TIMEOUT  seconds per request (default 10)
#      NATTER_SCHEMATHESIS_DEADLINE  seconds before the whole run is killed (default 300)
#      NATTER_SCHEMATHESIS_SEED  replay a run's generation: the seed its summary printed
# Schemathesis keeps its crash files (for `st replay ID`) and Hypothesis cache in
# .natter/schemathesis/; replay a failure from there with a valid token:
#   cd .natter/schemathesis && ../../.tools/venv/bin/st replay ID -H "Authorization: Bearer $TOKEN"
#
# Excluding operations or checks: nothing is excluded by default. Add schemathesis filter
# options to EXCLUDE below for a permanent exclusion, or after "--" for one run, e.g.
#   scripts/schemathesis.sh "$URL" "$TOKEN" -- --exclude-path /v1/sessions/current
#   ... -- --exclude-method DELETE --exclude-operation-id logout --exclude-path-regex '^/v1/admin'
#   ... -- --exclude-checks response_schema_conformance
# Mind that operations which end the caller's session (signing out, changing the password,
# deleting the account) run with TOKEN too: once one succeeds, the operations tested after
# it only see 401 (schemathesis then warns "Authentication failed"). The spec's request
# examples are sent as they are, so a test account whose password appears in them
# ("correct horse battery") gets its password changed or the account deleted: give the
# test account another password.
set -euo pipefail
NATTER_LOG_TAG=schemathesis
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- exclusions: none. Put filter options here, one per element, e.g.
#   EXCLUDE=(--exclude-path /v1/sessions/current --exclude-checks response_schema_conformance)
EXCLUDE=()

usage() { sed -n '2,/^set /{/^#/p}' "$0"; }

BASE_URL="" TOKEN=""
positional=()
while (($#)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        *) positional+=("$1"); shift ;;
    esac
done
EXTRA=("$@")
((${#positional[@]} >= 1 && ${#positional[@]} <= 2)) || { usage >&2; die "expected BASE_URL [TOKEN] [-- OPTIONS...]"; }
BASE_URL="${positional[0]%/}"
TOKEN="${positional[1]:-}"
[[ "$BASE_URL" =~ ^https?://[^/]+(/.*)?$ ]] || die "BASE_URL must be http(s)://host[:port][/path], got '$BASE_URL'"

MAX_EXAMPLES="${NATTER_SCHEMATHESIS_MAX_EXAMPLES:-20}"
REQUEST_TIMEOUT="${NATTER_SCHEMATHESIS_REQUEST_TIMEOUT:-10}"
DEADLINE="${NATTER_SCHEMATHESIS_DEADLINE:-300}"
SEED="${NATTER_SCHEMATHESIS_SEED:-}"
[[ "$MAX_EXAMPLES" =~ ^[1-9][0-9]*$ ]] || die "NATTER_SCHEMATHESIS_MAX_EXAMPLES='$MAX_EXAMPLES' is not a positive integer"
[[ "$REQUEST_TIMEOUT" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "NATTER_SCHEMATHESIS_REQUEST_TIMEOUT='$REQUEST_TIMEOUT' is not a number of seconds"
[[ "$DEADLINE" =~ ^[1-9][0-9]*$ ]] || die "NATTER_SCHEMATHESIS_DEADLINE='$DEADLINE' is not a positive integer"
[[ -z "$SEED" || "$SEED" =~ ^[0-9]+$ ]] || die "NATTER_SCHEMATHESIS_SEED='$SEED' is not an integer"

ST="$NATTER_VENV/bin/schemathesis"
version="$([[ -x "$ST" ]] && "$ST" --version 2>/dev/null)" ||
    die "schemathesis is not installed in ${NATTER_VENV#"$NATTER_ROOT"/}; run scripts/deps.sh"

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
args=(
    run "$BASE_URL/openapi.json"
    --url "$BASE_URL"
    --checks "$CHECKS"
    --workers 1
    --max-examples "$MAX_EXAMPLES"
    --request-timeout "$REQUEST_TIMEOUT"
    --max-redirects 0
    --wait-for-schema 30
    --generation-database none
)
[[ -n "$SEED" ]] && args+=(--seed "$SEED")
args+=("${EXCLUDE[@]}" "${EXTRA[@]}")

# What we print: the command without the token.
shown="schemathesis ${args[*]}"
[[ -n "$TOKEN" ]] && shown+=" --header 'Authorization: Bearer ***'"
[[ -n "$TOKEN" ]] && args+=(--header "Authorization: Bearer $TOKEN")

# Only BASE_URL: no proxy from the environment (requests honours these variables).
unset HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy
export NO_PROXY='*' no_proxy='*'

# Crash files and Hypothesis' cache land in the working directory: keep them out of the tree.
WORK_DIR="$NATTER_ROOT/.natter/schemathesis"
mkdir -p "$WORK_DIR"
cd "$WORK_DIR"

log "$version against $BASE_URL (max $MAX_EXAMPLES examples per operation and phase, request timeout ${REQUEST_TIMEOUT}s, deadline ${DEADLINE}s)"
log "$shown"
started=$SECONDS
rc=0
timeout --foreground -k 10 "$DEADLINE" "$ST" "${args[@]}" || rc=$?
elapsed=$((SECONDS - started))
case "$rc" in
    0) log "passed in ${elapsed}s" ;;
    124 | 137) die "killed after the ${DEADLINE}s deadline (NATTER_SCHEMATHESIS_DEADLINE); no summary" ;;
    *) log "FAILED (exit $rc) in ${elapsed}s; crash files: ${WORK_DIR#"$NATTER_ROOT"/}/.schemathesis" ;;
esac
exit "$rc"

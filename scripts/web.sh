#!/usr/bin/env bash
# The web app (web/): install, check, build and test it.
#
#   scripts/web.sh build   npm ci (when package-lock.json changed), then the static export in web/out
#   scripts/web.sh check   type-check, the API client against docs/openapi.json, unit tests
#   scripts/web.sh e2e     Playwright in Debian's Chromium against a real natter serve
#                          (needs target/debug/natter, our NATS and Postgres), then the budgets
# Env: NATTER_BIN (the natter binary for e2e), NATTER_CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
NATTER_LOG_TAG=web
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$NATTER_ROOT/web"
export NEXT_TELEMETRY_DISABLED=1

# npm ci only when the lock file differs from the one node_modules was installed from.
install() {
    local stamp=node_modules/.natter-lock.sha256 want
    want="$(sha256sum package-lock.json | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        log "npm ci"
        npm ci --no-audit --no-fund --loglevel=error
        echo "$want" >"$stamp"
    fi
}

case "${1:-build}" in
build)
    install
    log "next build (static export to web/out)"
    npx next build
    log "service worker (app shell of the export)"
    node scripts/sw.mjs
    ;;
check)
    install
    log "type-check"
    npx tsc --noEmit
    log "API client generated from docs/openapi.json is the committed one"
    npx openapi-typescript ../docs/openapi.json -o .api-check.d.ts >/dev/null
    if ! diff -q src/api/schema.d.ts .api-check.d.ts >/dev/null; then
        diff -u src/api/schema.d.ts .api-check.d.ts | head -40 >&2 || true
        rm -f .api-check.d.ts
        die "web/src/api/schema.d.ts is stale: run 'npm run api:generate' in web/ and commit it"
    fi
    rm -f .api-check.d.ts
    log "unit tests"
    npx vitest run
    ;;
e2e)
    install
    [[ -f out/index.html ]] || die "web/out is missing: run scripts/web.sh build first"
    log "Playwright (Chromium: ${NATTER_CHROMIUM:-/usr/bin/chromium})"
    rm -rf artifacts
    npx playwright test
    node scripts/budgets.mjs
    log "screenshots in web/artifacts/screenshots"
    ;;
*)
    die "usage: scripts/web.sh build|check|e2e"
    ;;
esac

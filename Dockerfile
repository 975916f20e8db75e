# syntax=docker/dockerfile:1
# Natter server image. Build: docker build -t natter .   (or: docker compose build)

# ---- build -----------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# sqlx's compile-time checked queries (if any) must not need a live database here.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is copied
# out in the same step because the target cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin natter \
 && install -D -m 0755 target/release/natter /out/natter

# ---- web app: the static export natter serves at / ---------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN NEXT_TELEMETRY_DISABLED=1 npx next build && node scripts/sw.mjs

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 natter \
 && useradd --system --uid 10001 --gid natter --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin natter
COPY --from=builder /out/natter /usr/local/bin/natter
COPY --from=web /web/out /usr/share/natter/web
USER 10001:10001
ENV NATTER_LISTEN=0.0.0.0:8080 \
    NATTER_WEB_DIR=/usr/share/natter/web \
    RUST_LOG=info
EXPOSE 8080
ENTRYPOINT ["natter"]
CMD ["serve"]

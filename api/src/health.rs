//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use sqlx::PgPool;

use crate::{ApiError, ApiState};

/// The process is up.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready to serve: NATS answers with the stream and buckets in place (after a reconnect,
/// once the log's keeper has made them again), Postgres answers, every migration is
/// applied, every read model this version reads has been built, and none has stopped at
/// an event it cannot read.
pub(crate) async fn readyz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    if state.log.client().connection_state() != async_nats::connection::State::Connected {
        return Err(ApiError::unavailable(
            "unavailable",
            "NATS is not connected",
            1,
        ));
    }
    if !state.log.is_ready() {
        return Err(ApiError::unavailable(
            "unavailable",
            "NATS reconnected; the stream and buckets are being made again",
            1,
        ));
    }
    state
        .log
        .last_sequence()
        .await
        .map_err(|e| ApiError::unavailable("unavailable", format!("JetStream: {e}"), 1))?;
    migrations_applied(&state.pool)
        .await
        .map_err(|e| ApiError::unavailable("unavailable", format!("Postgres: {e}"), 1))?;
    let outdated = natter_projections::build::outdated(&state.pool)
        .await
        .map_err(|e| ApiError::unavailable("unavailable", format!("Postgres: {e}"), 1))?;
    let stalled = natter_projections::stalled(&state.pool)
        .await
        .map_err(|e| ApiError::unavailable("unavailable", format!("Postgres: {e}"), 1))?;
    if let Some((name, version, sequence, reason)) = stalled.first() {
        return Err(ApiError::unavailable(
            "projection_stalled",
            format!(
                "read model {name} v{version} stopped at sequence {sequence}, \
                 an event it cannot read ({reason}); deploy a build that reads it"
            ),
            30,
        ));
    }
    if !outdated.is_empty() {
        return Err(ApiError::unavailable(
            "rebuilding",
            format!(
                "read models being rebuilt for this version: {}",
                outdated.join(", ")
            ),
            5,
        ));
    }
    Ok("ready")
}

/// Fails unless every migration this build knows is applied.
pub async fn migrations_applied(pool: &PgPool) -> Result<(), String> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    if table.is_none() {
        return Err("no migration applied; run `natter migrate`".into());
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let missing: Vec<i64> = natter_schema::MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "migrations not applied: {missing:?}; run `natter migrate`"
        ))
    }
}

pub(crate) async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.registry)
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}

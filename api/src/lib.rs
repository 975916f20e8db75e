//! The HTTP API: liveness, readiness and Prometheus metrics, and (as they arrive) the
//! versioned REST endpoints. Every error leaves as `application/problem+json` with a
//! stable `code`.

pub mod health;
mod problem;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use natter_eventlog::EventLog;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

pub use problem::{ApiError, Problem};

/// What every handler may use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub log: EventLog,
    pub registry: Arc<Registry>,
}

/// The whole HTTP surface.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(problem::not_found)
        .with_state(state)
}

//! The operators' endpoints, under `/v1/admin`: behind a bearer token of their own
//! (`NATTER_ADMIN_TOKEN`), separate from users' sessions, and off when it is unset.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{ApiError, ApiState};

/// The shortest admin token accepted.
const MIN_TOKEN: usize = 32;

/// The operators' token, kept as a digest: requests are compared digest to digest, so
/// the time a comparison takes says nothing about the token.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    pub fn new(token: &str) -> Result<Self, String> {
        if token.chars().count() < MIN_TOKEN {
            return Err(format!(
                "the admin token must be at least {MIN_TOKEN} characters"
            ));
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    fn admits(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        presented
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// Lets the request through if it carries the admin token.
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.config.admin_token else {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is off: set NATTER_ADMIN_TOKEN to turn it on",
        ));
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if token.admits(presented) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "invalid_admin_token",
            "send the admin token as a bearer token",
        ))
    }
}

/// Where the read models stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionsStatus {
    /// The newest sequence in the log.
    pub log_end: u64,
    pub projections: Vec<ProjectionStatus>,
}

/// One read model at one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    /// The version this build reads (older ones are kept for processes not yet upgraded).
    pub current: bool,
    /// The last sequence applied.
    pub checkpoint: u64,
    /// Events in the log after the checkpoint.
    pub lag: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub last_rebuild: Option<LastRebuild>,
    /// Where the read model stopped, failing closed, at an event it needs and cannot
    /// read; it goes on under a build that reads it.
    pub stalled: Option<Stall>,
}

/// A read model stopped at an event it cannot read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stall {
    /// The sequence of the event.
    pub sequence: u64,
    pub reason: String,
}

/// The last rebuild that switched a read model's tables in.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastRebuild {
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// `manual` (`natter projections rebuild`) or `automatic` (at start, for a new version).
    pub reason: String,
    /// The checkpoint the rebuilt tables went live at.
    pub through: u64,
}

/// Every read model's version, checkpoint, lag and last rebuild.
#[utoipa::path(
    get, path = "/v1/admin/projections", tag = "admin", security(("admin" = [])),
    responses(
        (status = 200, description = "Where the read models stand", body = ProjectionsStatus),
        (status = 403, description = "The admin API is off"),
    )
)]
pub(crate) async fn projections(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<axum::Json<ProjectionsStatus>, ApiError> {
    authorize(&state, &headers)?;
    let status = natter_projections::status(&state.pool, &state.log)
        .await
        .map_err(ApiError::internal)?;
    let projections = status
        .projections
        .into_iter()
        .map(|s| ProjectionStatus {
            current: natter_projections::CURRENT.contains(&(s.name.as_str(), s.version)),
            name: s.name,
            version: s.version,
            checkpoint: s.checkpoint,
            lag: s.lag,
            updated_at: s.updated_at,
            last_rebuild: s.last_rebuild.map(|r| LastRebuild {
                finished_at: r.finished_at,
                reason: r.reason,
                through: r.through,
            }),
            stalled: s.stalled.map(|stall| Stall {
                sequence: stall.sequence,
                reason: stall.reason,
            }),
        })
        .collect();
    Ok(axum::Json(ProjectionsStatus {
        log_end: status.log_end,
        projections,
    }))
}

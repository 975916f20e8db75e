//! Each account's sessions, for "list my sessions".

use natter_domain::session::SessionEvent;
use natter_domain::user::UserEvent;
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;

use crate::{Decoded, Projection};

/// Projects session events (and the password changes that end sessions) into
/// `sessions_v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sessions;

#[derive(Debug, Clone)]
pub enum SessionsEvent {
    Session(SessionEvent),
    User(UserEvent),
}

impl Projection for Sessions {
    const NAME: &'static str = "sessions";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &["sessions_v1"];
    const KINDS: &'static [&'static str] = &["session", "user"];
    type Event = SessionsEvent;

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<SessionsEvent>, natter_schema::SchemaError> {
        let envelope = &stored.envelope;
        let decoded = match (
            envelope.aggregate_type.as_str(),
            envelope.event_type.as_str(),
        ) {
            ("session", _) => natter_schema::decode(
                &envelope.event_type,
                envelope.schema_version,
                &envelope.payload,
            )
            .map(SessionsEvent::Session),
            ("user", "PasswordChanged" | "SignedOutEverywhere" | "AccountDeleted") => {
                natter_schema::decode(
                    &envelope.event_type,
                    envelope.schema_version,
                    &envelope.payload,
                )
                .map(SessionsEvent::User)
            }
            // A user event type a newer build added may end sessions too (as
            // SignedOutEverywhere did): an old process stops at it rather than pass it by.
            ("user", other) if natter_schema::current_version(other).is_none() => {
                return Err(natter_schema::SchemaError::UnknownType(other.to_owned()));
            }
            _ => return Ok(None),
        };
        decoded.map(Some)
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<SessionsEvent>],
    ) -> Result<(), sqlx::Error> {
        for decoded in events {
            let sequence = i64::try_from(decoded.sequence).unwrap_or(i64::MAX);
            match &decoded.event {
                SessionsEvent::Session(SessionEvent::SessionOpened(opened)) => {
                    sqlx::query(
                        "INSERT INTO sessions_v1 (session_id, user_id, device_name, epoch, created_at,
                                                  last_used_at, expires_at, last_sequence)
                         VALUES ($1, $2, $3, $4, $5, $5, $6, $7) ON CONFLICT (session_id) DO NOTHING",
                    )
                    .bind(opened.session_id)
                    .bind(opened.user_id)
                    .bind(opened.device_name.as_str())
                    .bind(i32::try_from(opened.epoch).unwrap_or(i32::MAX))
                    .bind(opened.opened_at)
                    .bind(opened.expires_at)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::Session(SessionEvent::SessionRefreshed(refreshed)) => {
                    sqlx::query(
                        "UPDATE sessions_v1 SET last_used_at = $2, last_sequence = $3
                         WHERE session_id = $1 AND last_sequence < $3",
                    )
                    .bind(refreshed.session_id)
                    .bind(refreshed.refreshed_at)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::Session(SessionEvent::SessionRevoked(revoked)) => {
                    let reason = serde_json::to_value(revoked.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    sqlx::query(
                        "UPDATE sessions_v1 SET ended_at = $2, end_reason = $3, last_sequence = $4
                         WHERE session_id = $1 AND last_sequence < $4",
                    )
                    .bind(revoked.session_id)
                    .bind(revoked.revoked_at)
                    .bind(reason)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::Session(SessionEvent::PushSubscribed(subscribed)) => {
                    let subscription = &subscribed.subscription;
                    sqlx::query(
                        "UPDATE sessions_v1 SET push_endpoint = $2, push_p256dh = $3, push_auth = $4,
                                push_previews = $5, last_sequence = $6
                         WHERE session_id = $1 AND last_sequence < $6",
                    )
                    .bind(subscribed.session_id)
                    .bind(&subscription.endpoint)
                    .bind(&subscription.p256dh)
                    .bind(&subscription.auth)
                    .bind(subscribed.previews)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::Session(SessionEvent::PushUnsubscribed(unsubscribed)) => {
                    sqlx::query(
                        "UPDATE sessions_v1 SET push_endpoint = NULL, push_p256dh = NULL,
                                push_auth = NULL, push_previews = true, last_sequence = $2
                         WHERE session_id = $1 AND last_sequence < $2",
                    )
                    .bind(unsubscribed.session_id)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::User(UserEvent::PasswordChanged(changed)) => {
                    sqlx::query(
                        "UPDATE sessions_v1 SET ended_at = $3, end_reason = 'password_changed', last_sequence = $5
                         WHERE user_id = $1 AND epoch < $2 AND session_id IS DISTINCT FROM $4
                           AND ended_at IS NULL AND last_sequence < $5",
                    )
                    .bind(changed.user_id)
                    .bind(i32::try_from(changed.session_epoch).unwrap_or(i32::MAX))
                    .bind(changed.changed_at)
                    .bind(changed.kept_session)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::User(UserEvent::SignedOutEverywhere(signed_out)) => {
                    sqlx::query(
                        "UPDATE sessions_v1 SET ended_at = $3, end_reason = 'signed_out_everywhere', last_sequence = $4
                         WHERE user_id = $1 AND epoch < $2 AND ended_at IS NULL AND last_sequence < $4",
                    )
                    .bind(signed_out.user_id)
                    .bind(i32::try_from(signed_out.session_epoch).unwrap_or(i32::MAX))
                    .bind(signed_out.signed_out_at)
                    .bind(sequence)
                    .execute(&mut *connection)
                    .await?;
                }
                SessionsEvent::User(UserEvent::AccountDeleted(deleted)) => {
                    sqlx::query("DELETE FROM sessions_v1 WHERE user_id = $1")
                        .bind(deleted.user_id)
                        .execute(&mut *connection)
                        .await?;
                }
                SessionsEvent::User(_) => {}
            }
        }
        Ok(())
    }
}

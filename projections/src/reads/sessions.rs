//! What the sessions read model says of a user's sessions.

use std::sync::LazyLock;

use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::table;
use crate::Sessions;

/// A session that is neither ended nor expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: Uuid,
    pub device_name: String,
    pub created_at: OffsetDateTime,
    /// The last login or refresh.
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

static OPEN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT session_id, device_name, created_at, last_used_at, expires_at FROM {}
         WHERE user_id = $1 AND ended_at IS NULL AND expires_at > now()
         ORDER BY created_at DESC LIMIT 500",
        table::<Sessions>("sessions")
    )
});

/// `user`'s open sessions (at most 500), newest first.
pub async fn open(pool: &PgPool, user: Uuid) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(&OPEN).bind(user).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Session {
                session_id: row.try_get("session_id")?,
                device_name: row.try_get("device_name")?,
                created_at: row.try_get("created_at")?,
                last_used_at: row.try_get("last_used_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_sessions_table() {
        assert!(LazyLock::force(&OPEN).contains(&table::<Sessions>("sessions")));
    }
}

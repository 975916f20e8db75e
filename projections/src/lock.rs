//! Postgres session-level advisory locks: one holder across every process.

use sqlx::{Connection, PgConnection, PgPool};

/// An advisory lock held by a connection of its own, until released or dropped (closing
/// the connection ends its session and so releases the lock).
#[derive(Debug)]
pub struct AdvisoryLock {
    connection: PgConnection,
}

impl AdvisoryLock {
    /// Takes the lock named `key`, or `None` if another session holds it.
    pub async fn try_take(pool: &PgPool, key: &str) -> Result<Option<Self>, sqlx::Error> {
        let mut connection = pool.acquire().await?.detach();
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(key)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            Ok(Some(Self { connection }))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }

    /// Whether the lock is still this process's. A session lock is let go only by an
    /// unlock or by the end of its session, so a live connection still holds it; one that
    /// dropped (Postgres restarted, the backend was killed, the network broke) let it go,
    /// and another process may have taken it since.
    pub async fn held(&mut self) -> bool {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut self.connection)
            .await
            .is_ok()
    }

    pub async fn release(self) {
        let _ = self.connection.close().await;
    }
}

//! The user directory: who exists, under which handle and name.

use std::collections::HashMap;

use natter_domain::user::UserEvent;
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Projection;

/// Projects account events into `user_directory_v1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserDirectory;

/// A registration, with the profile changes of the same batch folded in.
struct NewRow {
    handle: String,
    display_name: String,
    about: String,
    created_at: OffsetDateTime,
    sequence: i64,
}

/// The last value of each changed field of one user in a batch.
#[derive(Default)]
struct Change {
    display_name: Option<String>,
    about: Option<String>,
    sequence: i64,
}

impl Projection for UserDirectory {
    const NAME: &'static str = "user_directory";
    const VERSION: i32 = 1;

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), sqlx::Error> {
        // Fold the batch in memory first, so that it costs two statements however
        // large it is. Per-aggregate order is stream order, so a registration always
        // precedes the changes of its user.
        let mut inserts: Vec<(Uuid, NewRow)> = Vec::new();
        let mut inserted: HashMap<Uuid, usize> = HashMap::new();
        let mut changes: HashMap<Uuid, Change> = HashMap::new();
        for stored in events {
            let envelope = &stored.envelope;
            if envelope.aggregate_type != "user" {
                continue;
            }
            let sequence = i64::try_from(stored.sequence).unwrap_or(i64::MAX);
            let event: UserEvent = match natter_schema::decode(
                &envelope.event_type,
                envelope.schema_version,
                envelope.payload.clone(),
            ) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(sequence = stored.sequence, %error, "user event not readable; skipped");
                    continue;
                }
            };
            match event {
                UserEvent::UserRegistered(registered) => {
                    inserted.insert(registered.user_id, inserts.len());
                    inserts.push((
                        registered.user_id,
                        NewRow {
                            handle: registered.handle.into(),
                            display_name: registered.display_name.into(),
                            about: registered.about.into(),
                            created_at: registered.registered_at,
                            sequence,
                        },
                    ));
                }
                UserEvent::ProfileChanged(changed) => {
                    if let Some(&index) = inserted.get(&changed.user_id) {
                        let row = &mut inserts[index].1;
                        if let Some(name) = changed.display_name {
                            row.display_name = name.into();
                        }
                        if let Some(about) = changed.about {
                            row.about = about.into();
                        }
                        row.sequence = sequence;
                    } else {
                        let change = changes.entry(changed.user_id).or_default();
                        if let Some(name) = changed.display_name {
                            change.display_name = Some(name.into());
                        }
                        if let Some(about) = changed.about {
                            change.about = Some(about.into());
                        }
                        change.sequence = sequence;
                    }
                }
            }
        }
        if !inserts.is_empty() {
            let (ids, rows): (Vec<Uuid>, Vec<NewRow>) = inserts.into_iter().unzip();
            sqlx::query(
                "INSERT INTO user_directory_v1 (user_id, handle, display_name, about, created_at, last_sequence)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[])
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(&ids)
            .bind(rows.iter().map(|r| r.handle.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.display_name.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.about.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.sequence).collect::<Vec<_>>())
            .execute(&mut *connection)
            .await?;
        }
        if !changes.is_empty() {
            let (ids, changes): (Vec<Uuid>, Vec<Change>) = changes.into_iter().unzip();
            // `last_sequence < seq` makes a replayed change a no-op.
            sqlx::query(
                "UPDATE user_directory_v1 AS d
                 SET display_name = COALESCE(c.display_name, d.display_name),
                     about = COALESCE(c.about, d.about),
                     last_sequence = c.seq
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS c(user_id, display_name, about, seq)
                 WHERE d.user_id = c.user_id AND d.last_sequence < c.seq",
            )
            .bind(&ids)
            .bind(changes.iter().map(|c| c.display_name.clone()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.about.clone()).collect::<Vec<_>>())
            .bind(changes.iter().map(|c| c.sequence).collect::<Vec<_>>())
            .execute(&mut *connection)
            .await?;
        }
        Ok(())
    }

    async fn reset(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query("TRUNCATE user_directory_v1")
            .execute(connection)
            .await?;
        Ok(())
    }
}

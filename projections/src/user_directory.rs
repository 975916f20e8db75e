//! The user directory: who exists, under which handle and name.

use std::collections::HashMap;

use natter_domain::user::UserEvent;
use natter_eventlog::StoredEvent;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use natter_domain::Aggregate;
use natter_domain::user::User;

use crate::{Decoded, Projection};

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

/// New rows as the column arrays that `UNNEST` takes.
struct InsertColumns {
    ids: Vec<Uuid>,
    handles: Vec<String>,
    names: Vec<String>,
    abouts: Vec<String>,
    created: Vec<OffsetDateTime>,
    sequences: Vec<i64>,
}

impl InsertColumns {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            ids: Vec::with_capacity(capacity),
            handles: Vec::with_capacity(capacity),
            names: Vec::with_capacity(capacity),
            abouts: Vec::with_capacity(capacity),
            created: Vec::with_capacity(capacity),
            sequences: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, id: Uuid, row: NewRow) {
        self.ids.push(id);
        self.handles.push(row.handle);
        self.names.push(row.display_name);
        self.abouts.push(row.about);
        self.created.push(row.created_at);
        self.sequences.push(row.sequence);
    }
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

    type Event = UserEvent;

    fn decode(&self, stored: &StoredEvent) -> Option<UserEvent> {
        let envelope = &stored.envelope;
        if envelope.aggregate_type != User::KIND {
            return None;
        }
        natter_schema::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .map_err(|error| {
            tracing::error!(sequence = stored.sequence, %error, "user event not readable; skipped");
        })
        .ok()
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<UserEvent>],
    ) -> Result<(), sqlx::Error> {
        // Fold the batch in memory first, so that it costs two statements however
        // large it is. Per-aggregate order is stream order, so a registration always
        // precedes the changes of its user.
        let mut inserts: Vec<(Uuid, NewRow)> = Vec::new();
        let mut inserted: HashMap<Uuid, usize> = HashMap::new();
        let mut changes: HashMap<Uuid, Change> = HashMap::new();
        for decoded in events {
            let sequence = i64::try_from(decoded.sequence).unwrap_or(i64::MAX);
            match decoded.event.clone() {
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
            let mut columns = InsertColumns::with_capacity(inserts.len());
            for (id, row) in inserts {
                columns.push(id, row);
            }
            sqlx::query(
                "INSERT INTO user_directory_v1 (user_id, handle, display_name, about, created_at, last_sequence)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[])
                     AS n(user_id, handle, display_name, about, created_at, last_sequence)
                 WHERE NOT EXISTS (SELECT 1 FROM user_directory_v1 AS d WHERE d.user_id = n.user_id)",
            )
            .bind(columns.ids)
            .bind(columns.handles)
            .bind(columns.names)
            .bind(columns.abouts)
            .bind(columns.created)
            .bind(columns.sequences)
            .execute(&mut *connection)
            .await?;
        }
        if !changes.is_empty() {
            let mut ids = Vec::with_capacity(changes.len());
            let mut names = Vec::with_capacity(changes.len());
            let mut abouts = Vec::with_capacity(changes.len());
            let mut sequences = Vec::with_capacity(changes.len());
            for (id, change) in changes {
                ids.push(id);
                names.push(change.display_name);
                abouts.push(change.about);
                sequences.push(change.sequence);
            }
            // `last_sequence < seq` makes a replayed change a no-op.
            sqlx::query(
                "UPDATE user_directory_v1 AS d
                 SET display_name = COALESCE(c.display_name, d.display_name),
                     about = COALESCE(c.about, d.about),
                     last_sequence = c.seq
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS c(user_id, display_name, about, seq)
                 WHERE d.user_id = c.user_id AND d.last_sequence < c.seq",
            )
            .bind(ids)
            .bind(names)
            .bind(abouts)
            .bind(sequences)
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

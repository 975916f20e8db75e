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
    phone: Option<String>,
    created_at: OffsetDateTime,
    sequence: i64,
}

/// New rows as the column arrays that `UNNEST` takes.
struct InsertColumns {
    ids: Vec<Uuid>,
    handles: Vec<String>,
    names: Vec<String>,
    abouts: Vec<String>,
    phones: Vec<Option<String>>,
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
            phones: Vec::with_capacity(capacity),
            created: Vec::with_capacity(capacity),
            sequences: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, id: Uuid, row: NewRow) {
        self.ids.push(id);
        self.handles.push(row.handle);
        self.names.push(row.display_name);
        self.abouts.push(row.about);
        self.phones.push(row.phone);
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
    const TABLES: &'static [&'static str] = &["user_directory_v1", "user_blocks_v1"];
    const KINDS: &'static [&'static str] = &["user"];

    type Event = UserEvent;

    fn decode(
        &self,
        stored: &StoredEvent,
    ) -> Result<Option<UserEvent>, natter_schema::SchemaError> {
        let envelope = &stored.envelope;
        if envelope.aggregate_type != User::KIND {
            return Ok(None);
        }
        natter_schema::decode(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .map(Some)
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        events: &[Decoded<UserEvent>],
    ) -> Result<(), sqlx::Error> {
        // Registrations and profile changes (nearly all events) are folded in memory and
        // written with one statement each per run; the rare others go one by one, after
        // what came before them is written, so that stream order holds.
        let mut pending = Pending::default();
        for decoded in events {
            let sequence = i64::try_from(decoded.sequence).unwrap_or(i64::MAX);
            match &decoded.event {
                UserEvent::UserRegistered(registered) => pending.register(registered, sequence),
                UserEvent::ProfileChanged(changed) => pending.change(changed, sequence),
                UserEvent::PasswordChanged(_) | UserEvent::SignedOutEverywhere(_) => {}
                other => {
                    pending.flush(connection).await?;
                    apply_one(connection, other, sequence).await?;
                }
            }
        }
        pending.flush(connection).await
    }
}

/// Registrations and profile changes not yet written.
#[derive(Default)]
struct Pending {
    inserts: Vec<(Uuid, NewRow)>,
    inserted: HashMap<Uuid, usize>,
    changes: HashMap<Uuid, Change>,
}

impl Pending {
    fn register(&mut self, registered: &natter_domain::user::UserRegistered, sequence: i64) {
        self.inserted.insert(registered.user_id, self.inserts.len());
        self.inserts.push((
            registered.user_id,
            NewRow {
                handle: registered.handle.as_str().to_owned(),
                display_name: registered.display_name.as_str().to_owned(),
                about: registered.about.as_str().to_owned(),
                phone: registered.phone.as_ref().map(|p| p.as_str().to_owned()),
                created_at: registered.registered_at,
                sequence,
            },
        ));
    }

    fn change(&mut self, changed: &natter_domain::user::ProfileChanged, sequence: i64) {
        let name = changed.display_name.as_ref().map(|n| n.as_str().to_owned());
        let about = changed.about.as_ref().map(|a| a.as_str().to_owned());
        if let Some(&index) = self.inserted.get(&changed.user_id) {
            let row = &mut self.inserts[index].1;
            if let Some(name) = name {
                row.display_name = name;
            }
            if let Some(about) = about {
                row.about = about;
            }
            row.sequence = sequence;
        } else {
            let change = self.changes.entry(changed.user_id).or_default();
            if name.is_some() {
                change.display_name = name;
            }
            if about.is_some() {
                change.about = about;
            }
            change.sequence = sequence;
        }
    }

    async fn flush(&mut self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.inserted.clear();
        if !self.inserts.is_empty() {
            let mut columns = InsertColumns::with_capacity(self.inserts.len());
            for (id, row) in self.inserts.drain(..) {
                columns.push(id, row);
            }
            sqlx::query(
                "INSERT INTO user_directory_v1 (user_id, handle, display_name, about, phone, created_at, last_sequence)
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[])
                     AS n(user_id, handle, display_name, about, phone, created_at, last_sequence)
                 WHERE NOT EXISTS (SELECT 1 FROM user_directory_v1 AS d WHERE d.user_id = n.user_id)",
            )
            .bind(columns.ids)
            .bind(columns.handles)
            .bind(columns.names)
            .bind(columns.abouts)
            .bind(columns.phones)
            .bind(columns.created)
            .bind(columns.sequences)
            .execute(&mut *connection)
            .await?;
        }
        if !self.changes.is_empty() {
            let mut ids = Vec::with_capacity(self.changes.len());
            let mut names = Vec::with_capacity(self.changes.len());
            let mut abouts = Vec::with_capacity(self.changes.len());
            let mut sequences = Vec::with_capacity(self.changes.len());
            for (id, change) in self.changes.drain() {
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
}

/// The events that are rare enough to write one by one.
async fn apply_one(
    connection: &mut PgConnection,
    event: &UserEvent,
    sequence: i64,
) -> Result<(), sqlx::Error> {
    match event {
        UserEvent::PrivacyChanged(changed) => {
            let privacy = changed.privacy;
            sqlx::query(
                "UPDATE user_directory_v1
                 SET last_seen_visibility = $2, photo_visibility = $3, about_visibility = $4,
                     read_receipts = $5, last_sequence = $6
                 WHERE user_id = $1 AND last_sequence < $6",
            )
            .bind(changed.user_id)
            .bind(privacy.last_seen.as_str())
            .bind(privacy.profile_photo.as_str())
            .bind(privacy.about.as_str())
            .bind(privacy.read_receipts)
            .bind(sequence)
            .execute(&mut *connection)
            .await?;
        }
        UserEvent::UserBlocked(blocked) => {
            sqlx::query(
                "INSERT INTO user_blocks_v1 (user_id, blocked_user_id, blocked_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(blocked.user_id)
            .bind(blocked.blocked_user_id)
            .bind(blocked.blocked_at)
            .execute(&mut *connection)
            .await?;
        }
        UserEvent::UserUnblocked(unblocked) => {
            sqlx::query("DELETE FROM user_blocks_v1 WHERE user_id = $1 AND blocked_user_id = $2")
                .bind(unblocked.user_id)
                .bind(unblocked.blocked_user_id)
                .execute(&mut *connection)
                .await?;
        }
        // The person's profile leaves the read models; their events stay in the log.
        UserEvent::AccountDeleted(deleted) => {
            sqlx::query("DELETE FROM user_directory_v1 WHERE user_id = $1")
                .bind(deleted.user_id)
                .execute(&mut *connection)
                .await?;
            sqlx::query("DELETE FROM user_blocks_v1 WHERE user_id = $1 OR blocked_user_id = $1")
                .bind(deleted.user_id)
                .execute(&mut *connection)
                .await?;
        }
        UserEvent::PhotoChanged(changed) => {
            sqlx::query(
                "UPDATE user_directory_v1 SET photo_media_id = $2, last_sequence = $3
                 WHERE user_id = $1 AND last_sequence < $3",
            )
            .bind(changed.user_id)
            .bind(changed.media_id)
            .bind(sequence)
            .execute(&mut *connection)
            .await?;
        }
        // Only ever later: a replay or a late copy changes nothing.
        UserEvent::LastSeenRecorded(seen) => {
            sqlx::query(
                "UPDATE user_directory_v1 SET last_seen_at = $2
                 WHERE user_id = $1 AND (last_seen_at IS NULL OR last_seen_at < $2)",
            )
            .bind(seen.user_id)
            .bind(seen.at)
            .execute(&mut *connection)
            .await?;
        }
        UserEvent::UserRegistered(_)
        | UserEvent::ProfileChanged(_)
        | UserEvent::PasswordChanged(_)
        | UserEvent::SignedOutEverywhere(_) => {}
    }
    Ok(())
}

//! Queries of the read models for their readers (the API and the gateway), beside the
//! projections that write them: each names its tables through the projection's own
//! version (`table::<P>`), so a new version of a read model changes its readers here, in
//! one place, and a reader never names a table by hand.

use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Chats, Projection, UserDirectory};

/// Table `name` of projection `P` at its current version: `<name>_v<VERSION>`.
pub fn table<P: Projection>(name: &str) -> String {
    format!("{name}_v{}", P::VERSION)
}

/// One membership of a user, as the chats read model holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub chat_id: Uuid,
    pub joined_sequence: u64,
    pub left_sequence: Option<u64>,
}

/// Every chat `user` is or was a member of, and the chats projection's checkpoint they
/// are exact at, read in one snapshot.
pub async fn memberships(pool: &PgPool, user: Uuid) -> Result<(u64, Vec<Membership>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let checkpoint: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE name = $1 AND version = $2",
    )
    .bind(Chats::NAME)
    .bind(Chats::VERSION)
    .fetch_optional(&mut *tx)
    .await?;
    let rows: Vec<(Uuid, i64, Option<i64>)> = sqlx::query_as(&format!(
        "SELECT chat_id, joined_sequence, left_sequence FROM {} WHERE user_id = $1",
        table::<Chats>("chat_members")
    ))
    .bind(user)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let sequence = |value: i64| u64::try_from(value).unwrap_or(0);
    let rows = rows
        .into_iter()
        .map(|(chat_id, joined, left)| Membership {
            chat_id,
            joined_sequence: sequence(joined),
            left_sequence: left.map(sequence),
        })
        .collect();
    Ok((checkpoint.map_or(0, sequence), rows))
}

/// Whether `viewer` may see `target`'s presence, and the recorded last seen: `None` if
/// the target does not exist or hides it from the viewer. Their privacy setting
/// decides (`contacts`: people they share a direct chat with), and a block either way
/// hides it.
pub async fn visible_last_seen(
    pool: &PgPool,
    viewer: Uuid,
    target: Uuid,
) -> Result<Option<Option<OffsetDateTime>>, sqlx::Error> {
    let (directory, blocks) = (
        table::<UserDirectory>("user_directory"),
        table::<UserDirectory>("user_blocks"),
    );
    let (members, chats) = (table::<Chats>("chat_members"), table::<Chats>("chats"));
    let row = sqlx::query(&format!(
        "SELECT d.last_seen_visibility, d.last_seen_at,
                EXISTS (SELECT 1 FROM {blocks} b
                        WHERE (b.user_id = d.user_id AND b.blocked_user_id = $1)
                           OR (b.user_id = $1 AND b.blocked_user_id = d.user_id)) AS blocked,
                EXISTS (SELECT 1 FROM {members} mine
                        JOIN {members} theirs ON theirs.chat_id = mine.chat_id
                        JOIN {chats} c ON c.chat_id = mine.chat_id
                        WHERE c.kind = 'direct' AND mine.user_id = $1
                          AND theirs.user_id = d.user_id) AS contact
         FROM {directory} d WHERE d.user_id = $2"
    ))
    .bind(viewer)
    .bind(target)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let visibility: String = row.try_get("last_seen_visibility")?;
    let blocked: bool = row.try_get("blocked")?;
    let contact: bool = row.try_get("contact")?;
    let shown = viewer == target
        || (!blocked
            && (visibility == natter_domain::user::Visibility::Everyone.as_str()
                || (visibility == natter_domain::user::Visibility::Contacts.as_str() && contact)));
    if !shown {
        return Ok(None);
    }
    Ok(Some(row.try_get("last_seen_at")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_by_their_projections_version() {
        assert_eq!(table::<Chats>("chat_members"), "chat_members_v1");
        assert!(Chats::TABLES.contains(&table::<Chats>("chat_members").as_str()));
        assert!(UserDirectory::TABLES.contains(&table::<UserDirectory>("user_blocks").as_str()));
    }
}

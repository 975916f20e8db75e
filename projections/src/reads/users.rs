//! What the user directory says of users: one's own account, others' profiles as a
//! viewer may see them, one's blocks, and who may see a last seen.

use std::sync::LazyLock;

use natter_domain::user::Visibility;
use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::table;
use crate::{Chats, UserDirectory};

/// A user's own account: their profile and privacy settings, all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub about: String,
    pub phone: Option<String>,
    pub created_at: OffsetDateTime,
    /// Who may see each: `everyone`, `contacts` or `nobody`.
    pub last_seen_visibility: String,
    pub photo_visibility: String,
    pub about_visibility: String,
    pub read_receipts: bool,
    pub photo_media_id: Option<Uuid>,
}

static ACCOUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT user_id, handle, display_name, about, phone, created_at, last_seen_visibility,
                photo_visibility, about_visibility, read_receipts, photo_media_id
         FROM {} WHERE user_id = $1",
        table::<UserDirectory>("user_directory")
    )
});

/// `user`'s own account; `None` if there is none (or it was deleted).
pub async fn account(pool: &PgPool, user: Uuid) -> Result<Option<Account>, sqlx::Error> {
    let row = sqlx::query(&ACCOUNT)
        .bind(user)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(Account {
            user_id: row.try_get("user_id")?,
            handle: row.try_get("handle")?,
            display_name: row.try_get("display_name")?,
            about: row.try_get("about")?,
            phone: row.try_get("phone")?,
            created_at: row.try_get("created_at")?,
            last_seen_visibility: row.try_get("last_seen_visibility")?,
            photo_visibility: row.try_get("photo_visibility")?,
            about_visibility: row.try_get("about_visibility")?,
            read_receipts: row.try_get("read_receipts")?,
            photo_media_id: row.try_get("photo_media_id")?,
        })
    })
    .transpose()
}

/// A user someone blocked, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub user_id: Uuid,
    pub blocked_at: OffsetDateTime,
}

static BLOCKS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT blocked_user_id, blocked_at FROM {} WHERE user_id = $1 ORDER BY blocked_at, blocked_user_id",
        table::<UserDirectory>("user_blocks")
    )
});

/// The users `user` has blocked, oldest block first.
pub async fn blocks(pool: &PgPool, user: Uuid) -> Result<Vec<Block>, sqlx::Error> {
    let rows = sqlx::query(&BLOCKS).bind(user).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(Block {
                user_id: row.try_get(0)?,
                blocked_at: row.try_get(1)?,
            })
        })
        .collect()
}

/// Another user as a viewer may see them: `about` and the photo are left out where
/// their privacy settings or a block say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub about: Option<String>,
    pub photo_media_id: Option<Uuid>,
}

/// The columns of a profile, `$1` the viewer; each query adds its own condition.
fn public_columns() -> String {
    let (directory, blocks) = (
        table::<UserDirectory>("user_directory"),
        table::<UserDirectory>("user_blocks"),
    );
    format!(
        "SELECT d.user_id, d.handle, d.display_name, d.about, d.about_visibility,
        d.photo_media_id, d.photo_visibility,
        EXISTS (SELECT 1 FROM {blocks} b WHERE b.user_id = d.user_id AND b.blocked_user_id = $1) AS blocks_viewer
     FROM {directory} d"
    )
}

static PROFILE: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE d.user_id = $2", public_columns()));
static PROFILE_BY_HANDLE: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE d.handle = $2", public_columns()));
static PROFILES_BY_PREFIX: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE (d.handle LIKE $2 OR lower(d.display_name) LIKE $2) AND d.handle > $3
         ORDER BY d.handle LIMIT $4",
        public_columns()
    )
});

fn profile_of(row: &sqlx::postgres::PgRow, viewer: Uuid) -> Result<Profile, sqlx::Error> {
    let user_id: Uuid = row.try_get("user_id")?;
    let blocks_viewer: bool = row.try_get("blocks_viewer")?;
    let shown = |visibility: &str| -> Result<bool, sqlx::Error> {
        let visibility: String = row.try_get(visibility)?;
        Ok(user_id == viewer || (visibility == Visibility::Everyone.as_str() && !blocks_viewer))
    };
    Ok(Profile {
        user_id,
        handle: row.try_get("handle")?,
        display_name: row.try_get("display_name")?,
        about: if shown("about_visibility")? {
            Some(row.try_get("about")?)
        } else {
            None
        },
        photo_media_id: if shown("photo_visibility")? {
            row.try_get("photo_media_id")?
        } else {
            None
        },
    })
}

/// User `user_id` as `viewer` may see them; `None` if there is no such user.
pub async fn profile(
    pool: &PgPool,
    viewer: Uuid,
    user_id: Uuid,
) -> Result<Option<Profile>, sqlx::Error> {
    let row = sqlx::query(&PROFILE)
        .bind(viewer)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    row.map(|row| profile_of(&row, viewer)).transpose()
}

/// The user with `handle` (lowercase) as `viewer` may see them; `None` if there is
/// none.
pub async fn profile_by_handle(
    pool: &PgPool,
    viewer: Uuid,
    handle: &str,
) -> Result<Option<Profile>, sqlx::Error> {
    let row = sqlx::query(&PROFILE_BY_HANDLE)
        .bind(viewer)
        .bind(handle)
        .fetch_optional(pool)
        .await?;
    row.map(|row| profile_of(&row, viewer)).transpose()
}

/// Up to `count` users whose handle or lowercased display name starts with `prefix`
/// (lowercase; taken literally, `%` and `_` too), with a handle after `after`, in handle
/// order, as `viewer` may see them.
pub async fn profiles_by_prefix(
    pool: &PgPool,
    viewer: Uuid,
    prefix: &str,
    after: &str,
    count: u32,
) -> Result<Vec<Profile>, sqlx::Error> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query(&PROFILES_BY_PREFIX)
        .bind(viewer)
        .bind(&pattern)
        .bind(after)
        .bind(i64::from(count))
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| profile_of(row, viewer)).collect()
}

static LAST_SEEN: LazyLock<String> = LazyLock::new(|| {
    let (directory, blocks) = (
        table::<UserDirectory>("user_directory"),
        table::<UserDirectory>("user_blocks"),
    );
    let (members, chats) = (table::<Chats>("chat_members"), table::<Chats>("chats"));
    format!(
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
    )
});

/// Whether `viewer` may see `target`'s presence, and the recorded last seen: `None` if
/// the target does not exist or hides it from the viewer. Their privacy setting
/// decides (`contacts`: people they share a direct chat with), and a block either way
/// hides it.
pub async fn visible_last_seen(
    pool: &PgPool,
    viewer: Uuid,
    target: Uuid,
) -> Result<Option<Option<OffsetDateTime>>, sqlx::Error> {
    let row = sqlx::query(&LAST_SEEN)
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
            && (visibility == Visibility::Everyone.as_str()
                || (visibility == Visibility::Contacts.as_str() && contact)));
    if !shown {
        return Ok(None);
    }
    Ok(Some(row.try_get("last_seen_at")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_directory_and_chats_tables() {
        for sql in [
            &ACCOUNT,
            &BLOCKS,
            &PROFILE,
            &PROFILE_BY_HANDLE,
            &PROFILES_BY_PREFIX,
            &LAST_SEEN,
        ] {
            assert!(!LazyLock::force(sql).is_empty());
        }
    }
}

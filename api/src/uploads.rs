//! Resumable uploads, the service beneath the tus routes (`routes/uploads.rs`): the
//! uploads and their parts, receiving a part, completing an upload, and the sweeps.
//!
//! - Each `PATCH` is spooled, then stored as a part blob under
//!   `uploads/<upload>/<offset>-<nonce>`; a request that breaks off keeps what arrived.
//!   The request that reaches the length joins the parts into the spool.
//! - The upload's progress lives in `media_uploads` and `media_upload_parts`, plain tables
//!   and not read models: nothing in the log depends on them until the item is recorded,
//!   and an unfinished upload is no user action worth an event.
//! - A part is listed before its blob is stored and counted only after, with a
//!   compare-and-set on the offset, so concurrent `PATCH`es at one offset cannot both land
//!   and a crash leaves no blob unlisted. Within one process a second `PATCH` for an
//!   upload being received is refused at once (423 `upload_busy`, `MediaService::receiving`).
//! - Completion holds a lease (`completing_until`) and runs in a task of its own, so a
//!   client that goes away does not cut it short; one that failed on the server's side is
//!   retried by the sweeper, or by the next `HEAD` or `GET` of the upload (tus clients
//!   take the full offset for success).
//! - Uploads expire after 24 hours; the sweeper deletes them and their parts. At most 20
//!   unfinished uploads per user (creations take turns under an advisory lock) and 10,000
//!   parts per upload.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use futures::StreamExt as _;
use natter_media::Kind;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApiError;
use crate::media::{MediaService, SpoolWriter, spool_body};

/// How long an upload may take, from its creation.
const UPLOAD_LIFETIME: time::Duration = time::Duration::hours(24);
/// Unfinished uploads one user may hold at once.
pub(crate) const OPEN_UPLOADS_PER_USER: i64 = 20;
/// Parts one upload may have: a client sending tiny `PATCH`es is refused rather than
/// listed without end.
const PARTS_PER_UPLOAD: i64 = 10_000;
/// How long one completion may hold an upload before another may take it over.
const COMPLETION_LEASE_SECS: f64 = 600.0;

/// An upload's row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Upload {
    pub upload_id: Uuid,
    pub owner: Uuid,
    pub kind: String,
    pub length: i64,
    pub received: i64,
    pub expires_at: OffsetDateTime,
    pub media_id: Option<Uuid>,
    pub file_name: Option<String>,
}

/// The columns of an [`Upload`], from its table.
const UPLOAD_COLUMNS: &str = "SELECT upload_id, owner, kind, length, received, expires_at,
        media_id, file_name
     FROM media_uploads";

impl Upload {
    /// The bytes the upload will have.
    pub(crate) fn length(&self) -> u64 {
        u64::try_from(self.length).unwrap_or(0)
    }

    /// The bytes received: where the next part starts.
    pub(crate) fn offset(&self) -> u64 {
        u64::try_from(self.received).unwrap_or(0)
    }
}

/// `owner`'s upload, if it has not expired.
pub(crate) async fn find(pool: &PgPool, owner: Uuid, upload_id: Uuid) -> Result<Upload, ApiError> {
    let upload: Option<Upload> = sqlx::query_as(&format!(
        "{UPLOAD_COLUMNS} WHERE upload_id = $1 AND owner = $2"
    ))
    .bind(upload_id)
    .bind(owner)
    .fetch_optional(pool)
    .await
    .map_err(ApiError::internal)?;
    let upload = upload.ok_or_else(ApiError::not_found)?;
    if upload.expires_at <= OffsetDateTime::now_utc() {
        return Err(ApiError::new(
            StatusCode::GONE,
            "upload_expired",
            "the upload expired; start a new one",
        ));
    }
    Ok(upload)
}

/// Starts an upload of `length` bytes of `kind` for `owner`, unless they hold
/// [`OPEN_UPLOADS_PER_USER`] unfinished ones already (429 `too_many_uploads`).
pub(crate) async fn create(
    pool: &PgPool,
    owner: Uuid,
    kind: Kind,
    length: u64,
    file_name: Option<String>,
) -> Result<Upload, ApiError> {
    let upload = Upload {
        upload_id: Uuid::now_v7(),
        owner,
        kind: kind.as_str().to_owned(),
        length: i64::try_from(length).map_err(ApiError::internal)?,
        received: 0,
        expires_at: OffsetDateTime::now_utc() + UPLOAD_LIFETIME,
        media_id: None,
        file_name,
    };
    // The owner's creations take turns, so that concurrent ones cannot pass the limit
    // together.
    let mut tx = pool.begin().await.map_err(ApiError::internal)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(owner)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    let created = sqlx::query(
        "INSERT INTO media_uploads (upload_id, owner, kind, length, expires_at, file_name)
         SELECT $1, $2, $3, $4, $5, $7
         WHERE (SELECT count(*) FROM media_uploads
                WHERE owner = $2 AND media_id IS NULL AND expires_at > now()) < $6",
    )
    .bind(upload.upload_id)
    .bind(owner)
    .bind(&upload.kind)
    .bind(upload.length)
    .bind(upload.expires_at)
    .bind(OPEN_UPLOADS_PER_USER)
    .bind(&upload.file_name)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    if created.rows_affected() == 0 {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_uploads",
            format!(
                "at most {OPEN_UPLOADS_PER_USER} uploads may be unfinished at once; finish or \
                 delete one"
            ),
        ));
    }
    Ok(upload)
}

/// Takes `body` as the upload's next part, at its offset, and completes the upload when
/// the part brings it to its length. The upload as it now stands; and the error that
/// ended the body early, if one did: what arrived before it is kept, and bytes that
/// reached the length complete the upload even then.
pub(crate) async fn append(
    pool: &PgPool,
    media: &Arc<MediaService>,
    mut upload: Upload,
    body: Body,
) -> Result<(Upload, Option<ApiError>), ApiError> {
    let (received, broke_off) = receive(pool, media, &upload, body).await?;
    upload.received += i64::try_from(received).map_err(ApiError::internal)?;
    if upload.media_id.is_none() && upload.offset() == upload.length() {
        upload.media_id = complete_detached(pool, media, &upload).await?;
    }
    Ok((upload, broke_off))
}

pub(crate) fn beyond_length(room: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "beyond_upload_length",
        format!("the upload has room for {room} more bytes"),
    )
}

pub(crate) fn offset_mismatch(received: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "offset_mismatch",
        format!("the upload has {received} bytes; send from there"),
    )
}

/// Stores the body as the upload's next part, at its offset. Returns the bytes taken,
/// and the error that ended the body early, if one did: what arrived before it is kept.
async fn receive(
    pool: &PgPool,
    media: &MediaService,
    upload: &Upload,
    body: Body,
) -> Result<(u64, Option<ApiError>), ApiError> {
    let room = upload.length() - upload.offset();
    if room == 0 || upload.media_id.is_some() {
        // A complete upload takes no more bytes; an empty request is a retry.
        spool_body(&media.spool, body, 0, || beyond_length(0)).await?;
        return Ok((0, None));
    }
    let parts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM media_upload_parts WHERE upload_id = $1")
            .bind(upload.upload_id)
            .fetch_one(pool)
            .await
            .map_err(ApiError::internal)?;
    if parts >= PARTS_PER_UPLOAD {
        return Err(ApiError::bad_request(
            "too_many_parts",
            format!(
                "an upload may arrive in at most {PARTS_PER_UPLOAD} requests; send larger ones"
            ),
        ));
    }
    let (part, broke_off) = spool_body(&media.spool, body, room, || beyond_length(room)).await?;
    let broke_off = broke_off.map(|error| {
        ApiError::bad_request(
            "invalid_body",
            format!("the request broke off; ask for the offset and resume: {error}"),
        )
    });
    if part.size == 0 {
        return Ok((0, broke_off));
    }
    let key = format!(
        "uploads/{}/{:020}-{}",
        upload.upload_id,
        upload.offset(),
        Uuid::new_v4().simple()
    );
    // Listed before it is stored, so that no blob is ever left unlisted.
    let listed = sqlx::query(
        "INSERT INTO media_upload_parts (key, upload_id, \"offset\") VALUES ($1, $2, $3)",
    )
    .bind(&key)
    .bind(upload.upload_id)
    .bind(upload.received)
    .execute(pool)
    .await;
    match listed {
        Ok(_) => {}
        // The upload was deleted meanwhile.
        Err(sqlx::Error::Database(error)) if error.is_foreign_key_violation() => {
            return Err(ApiError::not_found());
        }
        Err(error) => return Err(ApiError::internal(error)),
    }
    media
        .store
        .put_file(&key, &part.path, "application/octet-stream")
        .await
        .map_err(ApiError::internal)?;
    let length = i64::try_from(part.size).map_err(ApiError::internal)?;
    let mut tx = pool.begin().await.map_err(ApiError::internal)?;
    let moved = sqlx::query(
        "UPDATE media_uploads SET received = received + $3
         WHERE upload_id = $1 AND received = $2 AND media_id IS NULL",
    )
    .bind(upload.upload_id)
    .bind(upload.received)
    .bind(length)
    .execute(&mut *tx)
    .await
    .map_err(ApiError::internal)?;
    if moved.rows_affected() == 0 {
        // Another request for the same offset was first, or the upload was deleted or
        // completed meanwhile: this part is not the upload's.
        drop(tx);
        forget_parts(pool, media, &[key]).await?;
        let now: Option<i64> =
            sqlx::query_scalar("SELECT received FROM media_uploads WHERE upload_id = $1")
                .bind(upload.upload_id)
                .fetch_optional(pool)
                .await
                .map_err(ApiError::internal)?;
        return Err(
            match now.and_then(|received| u64::try_from(received).ok()) {
                Some(received) => offset_mismatch(received),
                None => ApiError::not_found(),
            },
        );
    }
    sqlx::query("UPDATE media_upload_parts SET length = $2, received = true WHERE key = $1")
        .bind(&key)
        .bind(length)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok((part.size, broke_off))
}

/// An upload with all its bytes and no item is completed again, in the background: a
/// client asking about it after a failed completion (tus clients take the full offset
/// for success) gets its item a moment later.
pub(crate) fn complete_in_background(pool: &PgPool, media: &Arc<MediaService>, upload: &Upload) {
    if upload.media_id.is_none() && upload.offset() == upload.length() {
        let (pool, media, upload) = (pool.clone(), Arc::clone(media), upload.clone());
        tokio::spawn(async move {
            if let Err(error) = complete(&pool, &media, &upload).await {
                tracing::warn!(upload_id = %upload.upload_id, error = error.code(), "completing an upload failed");
            }
        });
    }
}

/// Completes the upload in a task of its own, so that a client that goes away does not
/// cut a completion short, and waits for it. The item's id, or `None` if another is
/// completing the upload already.
async fn complete_detached(
    pool: &PgPool,
    media: &Arc<MediaService>,
    upload: &Upload,
) -> Result<Option<Uuid>, ApiError> {
    let (pool, media, upload) = (pool.clone(), Arc::clone(media), upload.clone());
    tokio::spawn(async move { complete(&pool, &media, &upload).await })
        .await
        .map_err(ApiError::internal)?
}

/// Takes the completion lease, joins the parts, then stores and records the item as a
/// single-request upload would. Bytes that cannot be stored as the kind end the upload
/// with their error; a failure of the server's keeps it, to be completed again (by the
/// sweeper, or the next request about it). `None` if another holds the lease.
async fn complete(
    pool: &PgPool,
    media: &MediaService,
    upload: &Upload,
) -> Result<Option<Uuid>, ApiError> {
    let leased = sqlx::query(
        "UPDATE media_uploads SET completing_until = now() + make_interval(secs => $2)
         WHERE upload_id = $1 AND media_id IS NULL AND received = length
           AND (completing_until IS NULL OR completing_until < now())",
    )
    .bind(upload.upload_id)
    .bind(COMPLETION_LEASE_SECS)
    .execute(pool)
    .await
    .map_err(ApiError::internal)?;
    if leased.rows_affected() == 0 {
        return Ok(None);
    }
    let completed = join_and_store(pool, media, upload).await;
    match &completed {
        Ok(media_id) => {
            sqlx::query(
                "UPDATE media_uploads SET media_id = $2, completing_until = NULL
                 WHERE upload_id = $1",
            )
            .bind(upload.upload_id)
            .bind(media_id)
            .execute(pool)
            .await
            .map_err(ApiError::internal)?;
            forget_all_parts(pool, media, upload.upload_id).await?;
        }
        Err(error) if error.status().is_client_error() => {
            delete(pool, media, upload.upload_id).await?;
        }
        Err(_) => {
            sqlx::query("UPDATE media_uploads SET completing_until = NULL WHERE upload_id = $1")
                .bind(upload.upload_id)
                .execute(pool)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    completed.map(Some)
}

/// Joins the received parts into the spool and stores the item.
async fn join_and_store(
    pool: &PgPool,
    media: &MediaService,
    upload: &Upload,
) -> Result<Uuid, ApiError> {
    let parts: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM media_upload_parts
         WHERE upload_id = $1 AND received ORDER BY \"offset\"",
    )
    .bind(upload.upload_id)
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    let mut writer = SpoolWriter::create(&media.spool).await?;
    for key in &parts {
        let mut blob = media
            .store
            .get(key, None)
            .await
            .map_err(ApiError::internal)?
            .body;
        while let Some(chunk) = blob.next().await {
            writer.write(&chunk.map_err(ApiError::internal)?).await?;
        }
    }
    let spooled = writer.finish().await?;
    if spooled.size != upload.length() {
        return Err(ApiError::internal(format!(
            "upload {} joined to {} bytes of {}",
            upload.upload_id,
            spooled.size,
            upload.length()
        )));
    }
    let kind = Kind::parse(&upload.kind).ok_or_else(|| ApiError::internal("unknown kind"))?;
    let file_name = upload.file_name.clone();
    let (_, item) =
        crate::media::store_upload(media, upload.owner, kind, file_name, spooled).await?;
    Ok(item.media_id)
}

/// Completes uploads that have all their bytes but no item and no completion under way:
/// those whose completion failed on the server's side or was cut off. Returns how many
/// it tried.
pub async fn complete_stalled(pool: &PgPool, media: &Arc<MediaService>) -> Result<u64, ApiError> {
    let stalled: Vec<Upload> = sqlx::query_as(&format!(
        "{UPLOAD_COLUMNS}
         WHERE media_id IS NULL AND received = length AND expires_at > now()
           AND (completing_until IS NULL OR completing_until < now())
         LIMIT 100"
    ))
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    for upload in &stalled {
        if let Err(error) = complete_detached(pool, media, upload).await {
            tracing::warn!(
                upload_id = %upload.upload_id,
                error = error.code(),
                "completing a stalled upload failed"
            );
        }
    }
    Ok(stalled.len() as u64)
}

/// Deletes the parts' blobs, then their rows.
async fn forget_parts(
    pool: &PgPool,
    media: &MediaService,
    keys: &[String],
) -> Result<(), ApiError> {
    for key in keys {
        media.store.delete(key).await.map_err(ApiError::internal)?;
    }
    sqlx::query("DELETE FROM media_upload_parts WHERE key = ANY($1)")
        .bind(keys)
        .execute(pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

async fn forget_all_parts(
    pool: &PgPool,
    media: &MediaService,
    upload_id: Uuid,
) -> Result<(), ApiError> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM media_upload_parts WHERE upload_id = $1")
            .bind(upload_id)
            .fetch_all(pool)
            .await
            .map_err(ApiError::internal)?;
    forget_parts(pool, media, &keys).await
}

pub(crate) async fn delete(
    pool: &PgPool,
    media: &MediaService,
    upload_id: Uuid,
) -> Result<(), ApiError> {
    forget_all_parts(pool, media, upload_id).await?;
    sqlx::query("DELETE FROM media_uploads WHERE upload_id = $1")
        .bind(upload_id)
        .execute(pool)
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

/// Deletes expired uploads, finished or not, with their parts. Returns how many.
pub async fn delete_expired(pool: &PgPool, media: &MediaService) -> Result<u64, ApiError> {
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "SELECT upload_id FROM media_uploads WHERE expires_at <= now()
         ORDER BY expires_at LIMIT 1000",
    )
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    for upload_id in &expired {
        delete(pool, media, *upload_id).await?;
    }
    Ok(expired.len() as u64)
}

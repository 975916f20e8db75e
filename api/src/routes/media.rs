//! Media: uploads streamed to a temporary file under a per-kind size limit, typed by
//! their bytes, images decoded under limits and re-encoded without metadata, stored in
//! the blob store and recorded in the log; downloads with ranges, for their owner.
//!
//! - An upload is spooled to a file while its SHA-256 is computed and its size checked
//!   against its kind's limit; then typed by its bytes, processed, stored under
//!   `media/<owner>/<uuid>` (each recording its own keys, so that deleting a collected
//!   recording's bytes never touches those of the same bytes uploaded again) and recorded
//!   as `MediaUploaded` on the `media` aggregate. Its id is derived from the owner and the
//!   hash, so the same bytes from the same user are one aggregate, recorded once; they
//!   keep the first file name.
//! - One request carries at most 16 MiB (above: 413 `resumable_upload_required`); larger
//!   files go through `/v1/media/uploads` (tus, `uploads.rs`).
//! - Documents are served with `Content-Disposition: attachment`, others `inline`, under
//!   the item's name (RFC 6266: an ASCII fallback and the UTF-8 name).
//! - Downloads are for the owner, for members of a chat where a message they could see
//!   (sent while they were members, not deleted for everyone) shares the item, for members
//!   of a group whose avatar it is, and for anyone a user's profile photo is shown to
//!   (`profile_photo` privacy, blocks). Others get 404.
//! - Attaching an item (to a message, as a group's avatar or a profile photo) first
//!   records `MediaShared` on the item's aggregate, which checks that it is live and the
//!   caller's. A collection decided on read models that do not show the new reference yet
//!   then either fails its concurrency check on the aggregate, or sees a share less than
//!   10 minutes old and leaves the item (`SHARE_RESERVES`); a send that lost to a
//!   collection gets 422 `unknown_media`.
//!
//! Unreferenced uploads are collected in two steps (`sweep`), all state in the log and
//! `media_v1`, so a restart loses nothing. Every `NATTER_MEDIA_SWEEP_SECS` one instance
//! (an advisory lock) waits for the read models to reach the log's end (else it sweeps
//! next time), then:
//! 1. items collected more than 5 s ago are looked at again: one that something now
//!    refers to (a message from a send that found it live a moment before its
//!    collection) is restored, `MediaUploaded` again with its bytes untouched; the others
//!    get `MediaPurged`, which names the keys, and then those keys are deleted;
//! 2. items older than `NATTER_MEDIA_KEEP_UNREFERENCED_SECS` (a day) that no message,
//!    group avatar or profile photo refers to get `MediaCollected`: from then on they are
//!    neither served nor attachable.
//!
//! Restore and purge are commands on the item's aggregate, so they cannot both happen.
//! The same bytes uploaded again restore a collected item, or record a new one with new
//! keys once purged.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;
use natter_commands::media::{MediaError, MediaRecords};
use natter_domain::media::MediaUploaded;
use natter_media::{BlobError, BlobStore, ByteRange, Format, ImageError, ImageLimits, Kind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::routes::metadata;
use crate::{ApiError, ApiState};

/// What media needs: where bytes go, the log's record of them, and the limits.
#[derive(Debug, Clone)]
pub struct MediaService {
    pub store: BlobStore,
    pub records: MediaRecords,
    /// Where uploads are spooled while they arrive.
    pub spool: PathBuf,
    pub limits: MediaLimits,
    /// How long an upload may stay unreferenced before it is collected.
    pub keep_unreferenced: std::time::Duration,
    /// How often the collector looks.
    pub sweep_every: std::time::Duration,
    /// Resumable uploads this process is receiving bytes for.
    pub receiving: crate::routes::uploads::Receiving,
}

/// The largest upload of each kind, in bytes, and what an image may cost to decode.
#[derive(Debug, Clone, Copy)]
pub struct MediaLimits {
    pub image: u64,
    pub voice: u64,
    pub video: u64,
    pub document: u64,
    /// The largest upload in one request; larger ones are resumable
    /// (`/v1/media/uploads`).
    pub single: u64,
    pub decode: ImageLimits,
}

impl Default for MediaLimits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            image: 16 * MIB,
            voice: 16 * MIB,
            video: 64 * MIB,
            document: 100 * MIB,
            single: 16 * MIB,
            decode: ImageLimits::default(),
        }
    }
}

impl MediaService {
    /// `owner`'s item with this id, if it is live and theirs, with its share to what will
    /// refer to it (a message in or the avatar of `chat_id`; without one, their profile)
    /// recorded: from then on the collector keeps it.
    pub async fn attach(
        &self,
        id: Uuid,
        owner: Uuid,
        chat_id: Option<Uuid>,
    ) -> Result<Option<MediaUploaded>, ApiError> {
        self.records
            .share(id, owner, chat_id, metadata(Some(owner)))
            .await
            .map_err(ApiError::internal)
    }
}

impl MediaLimits {
    pub(crate) fn of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Image => self.image,
            Kind::Voice => self.voice,
            Kind::Video => self.video,
            Kind::Document => self.document,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `image` (JPEG, PNG, WebP, GIF), `voice` (Ogg, MP3, AAC, MP4 audio), `video` (MP4,
    /// WebM, Ogg) or `document` (PDF, Office).
    pub kind: String,
    /// The file's name, shown to those it is shared with and used for downloads (at
    /// most 255 bytes, no path).
    pub name: Option<String>,
}

/// A stored media item.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"media_id": "0190f3a1-7b2c-4d3e-8f40-5a6b7c8d9e0f", "kind": "image", "content_type": "image/jpeg", "size": 48213, "width": 1280, "height": 960, "placeholder": "data:image/jpeg;base64,...", "sequence": 1042}))]
pub struct MediaItem {
    pub media_id: Uuid,
    pub kind: String,
    /// Taken from the bytes.
    pub content_type: String,
    /// Bytes as uploaded.
    pub size: u64,
    /// Bytes served (an image is re-encoded without its metadata).
    pub stored_size: u64,
    /// Images, and videos (MP4, WebM) where the file says.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Voice and video (MP4, WebM, Ogg, MP3, AAC), where the file says.
    pub duration_ms: Option<u64>,
    /// Documents (PDF), where cheap to count.
    pub pages: Option<u32>,
    /// A tiny blurred preview as a `data:` URL (images).
    pub placeholder: Option<String>,
    /// The file's name as uploaded, if one was given.
    pub file_name: Option<String>,
    pub has_thumbnail: bool,
    /// The stream sequence of the upload's event, as a consistency token, when this
    /// request recorded it; 0 otherwise.
    pub sequence: u64,
}

impl MediaItem {
    pub(crate) fn of(item: MediaUploaded, sequence: u64) -> Self {
        Self {
            media_id: item.media_id,
            kind: item.kind,
            content_type: item.content_type,
            size: item.size,
            stored_size: item.stored_size,
            width: item.width,
            height: item.height,
            duration_ms: item.duration_ms,
            pages: item.pages,
            placeholder: item.placeholder,
            file_name: item.file_name,
            has_thumbnail: item.thumbnail_key.is_some(),
            sequence,
        }
    }
}

/// Uploads a media item: the request body is the file's bytes, streamed. Its type is
/// read from the bytes; the same bytes uploaded again by the same user are the same
/// item (200 instead of 201).
#[utoipa::path(
    post, path = "/v1/media", tag = "media", security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = inline(super::Binary), content_type = "application/octet-stream", description = "The file's bytes"),
    responses(
        (status = 201, description = "Stored", body = MediaItem),
        (status = 200, description = "The same bytes were stored before", body = MediaItem),
        (status = 413, description = "Larger than the kind allows (`upload_too_large`), or than one request carries (`resumable_upload_required`: use `/v1/media/uploads`)"),
        (status = 415, description = "Not a format this kind takes, or bytes that contradict the kind"),
        (status = 422, description = "An image that cannot be decoded, or too large to decode"),
    )
)]
pub async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let media = &state.media;
    let kind = parse_kind(&query.kind)?;
    let file_name = query.name.as_deref().map(parse_file_name).transpose()?;
    let limit = media.limits.of(kind);
    let declared = declared_length(&headers);
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(kind, limit));
    }
    if declared.is_some_and(|length| length > media.limits.single) {
        return Err(resumable_required(media.limits.single));
    }
    let spooled = spool(media, body, kind, limit.min(media.limits.single)).await?;
    let (status, item) = store_upload(media, caller.user_id, kind, file_name, spooled).await?;
    Ok((status, axum::Json(item)).into_response())
}

/// Types the spooled bytes, stores them (an image decoded and re-encoded) and records
/// the item: 201, or 200 with the item recorded before if `owner` uploaded these bytes
/// (under the name it was first given).
pub(crate) async fn store_upload(
    media: &MediaService,
    owner: Uuid,
    kind: Kind,
    file_name: Option<String>,
    spooled: Spooled,
) -> Result<(StatusCode, MediaItem), ApiError> {
    let format = natter_media::sniff(&spooled.head).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_format",
            format!(
                "the bytes are not a format Natter takes as {}",
                kind.as_str()
            ),
        )
    })?;
    if !format.fits(kind) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_mismatch",
            format!(
                "the bytes are {}, not {}",
                format.content_type(),
                kind.as_str()
            ),
        ));
    }
    let media_id = media_id(owner, &spooled.sha256);
    let known = media
        .records
        .state(media_id)
        .await
        .map_err(ApiError::internal)?;
    if let Some(item) = known.live() {
        return Ok((StatusCode::OK, MediaItem::of(item.clone(), 0)));
    }
    // Collected, but its bytes not yet deleted: brought back as it was.
    if known.collected && !known.purged {
        let restored = media
            .records
            .restore(media_id, metadata(Some(owner)))
            .await
            .map_err(ApiError::internal)?;
        if let Some(item) = restored {
            return Ok((StatusCode::CREATED, MediaItem::of(item, 0)));
        }
    }
    // Each recording has keys of its own, so that deleting the bytes of a collected one
    // never touches those of the same bytes uploaded again. (Short: some S3 servers
    // keep a key's metadata in a file named after it.)
    let hash = hex(&spooled.sha256);
    let key = format!("media/{owner}/{}", Uuid::now_v7().simple());
    let mut item = MediaUploaded {
        media_id,
        owner,
        kind: kind.as_str().to_owned(),
        content_type: format.content_type().to_owned(),
        size: spooled.size,
        sha256: hash,
        width: None,
        height: None,
        duration_ms: None,
        pages: None,
        key: key.clone(),
        stored_size: spooled.size,
        thumbnail_key: None,
        placeholder: None,
        file_name,
        uploaded_at: time::OffsetDateTime::now_utc(),
    };
    if kind == Kind::Image {
        store_image(media, &spooled.path, format, &mut item).await?;
    } else {
        let path = spooled.path.clone();
        let inspected = tokio::task::spawn_blocking(move || natter_media::inspect(&path, format))
            .await
            .map_err(ApiError::internal)?;
        item.duration_ms = inspected.duration_ms;
        item.pages = inspected.pages;
        item.width = inspected.width;
        item.height = inspected.height;
        media
            .store
            .put_file(&key, &spooled.path, format.content_type())
            .await
            .map_err(ApiError::internal)?;
    }
    let recorded = media
        .records
        .record(item, metadata(Some(owner)))
        .await
        .map_err(|error| match error {
            MediaError::Rejected(rejected) => ApiError::internal(rejected),
            MediaError::Interrupted(interrupted) => interrupted.into(),
            MediaError::Internal(reason) => ApiError::internal(reason),
        })?;
    let status = if recorded.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, MediaItem::of(recorded.item, recorded.sequence)))
}

/// Whether something refers to the item `m.media_id`: a message not deleted for
/// everyone, a group avatar or a profile photo.
const REFERENCED: &str = "(EXISTS (SELECT 1 FROM messages_v1 x
                 WHERE x.attachment IS NOT NULL AND x.attachment ->> 'media_id' = m.media_id::text)
         OR EXISTS (SELECT 1 FROM chats_v1 c WHERE c.avatar_media_id = m.media_id)
         OR EXISTS (SELECT 1 FROM user_directory_v1 d WHERE d.photo_media_id = m.media_id))";

/// How long a collected item stays restorable before its bytes are deleted: time for a
/// send that found the item live just before its collection to finish appending.
pub const COLLECT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the collector waits for the read models to reach the log's end before it
/// gives the sweep up until the next.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The advisory lock that makes one collector at a time sweep, of all instances.
const SWEEP_LOCK: i64 = 0x6e61_7474_6572_6d63; // "natter" "mc"

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Collections recorded: from then on the items are neither served nor attachable.
    pub collected: u64,
    /// Collections undone: something referred to the item after all.
    pub restored: u64,
    /// Items whose bytes were deleted.
    pub purged: u64,
}

/// One sweep of the collector, once the read models have reached the log's end (else
/// nothing, until the next): items collected more than `grace` ago are restored if
/// something now refers to them and purged if not ([`finish_collections`]); then items
/// uploaded more than `older_than` ago that nothing refers to are collected
/// ([`mark_unreferenced`]). One instance sweeps at a time.
pub async fn sweep(
    media: &MediaService,
    pool: &sqlx::PgPool,
    log: &natter_eventlog::EventLog,
    older_than: std::time::Duration,
    grace: std::time::Duration,
) -> Result<Swept, ApiError> {
    let mut connection = pool.acquire().await.map_err(ApiError::internal)?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SWEEP_LOCK)
        .fetch_one(&mut *connection)
        .await
        .map_err(ApiError::internal)?;
    if !locked {
        return Ok(Swept::default());
    }
    let swept = async {
        if !settle(pool, log).await? {
            return Ok(Swept::default());
        }
        let (restored, purged) = finish_collections(media, pool, grace).await?;
        let collected = mark_unreferenced(media, pool, older_than).await?;
        Ok(Swept {
            collected,
            restored,
            purged,
        })
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SWEEP_LOCK)
        .execute(&mut *connection)
        .await;
    swept
}

/// Records the collection of every item uploaded more than `older_than` ago that the
/// read models show nothing referring to. From then on an item is neither served nor
/// attachable; its bytes stay until [`finish_collections`]. Returns how many.
pub async fn mark_unreferenced(
    media: &MediaService,
    pool: &sqlx::PgPool,
    older_than: std::time::Duration,
) -> Result<u64, ApiError> {
    let older_than = time::Duration::try_from(older_than).map_err(ApiError::internal)?;
    let candidates: Vec<Uuid> = sqlx::query_scalar(&format!(
        "SELECT m.media_id FROM media_v1 m
         WHERE NOT m.collected AND m.uploaded_at < $1 AND NOT {REFERENCED}
         ORDER BY m.uploaded_at LIMIT 1000"
    ))
    .bind(time::OffsetDateTime::now_utc() - older_than)
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    let mut collected = 0;
    for media_id in candidates {
        match media.records.collect(media_id, metadata(None)).await {
            Ok(done) => collected += u64::from(done),
            // One item's failure (a concurrent upload, say) is not the others'.
            Err(error) => tracing::warn!(%media_id, %error, "collecting an item failed"),
        }
    }
    Ok(collected)
}

/// Ends the collections recorded more than `grace` ago, as the read models now stand
/// (the caller has let them reach the log's end): an item something refers to after
/// all (a message sent as it was collected, by a send that found it live a moment
/// before) is restored; the others' bytes are deleted, the purge recorded first. An
/// item restored, uploaded again or purged by then is left as it is. Returns how many
/// were restored and purged.
pub async fn finish_collections(
    media: &MediaService,
    pool: &sqlx::PgPool,
    grace: std::time::Duration,
) -> Result<(u64, u64), ApiError> {
    let grace = time::Duration::try_from(grace).map_err(ApiError::internal)?;
    let collected: Vec<(Uuid, bool)> = sqlx::query_as(&format!(
        "SELECT m.media_id, {REFERENCED} FROM media_v1 m
         WHERE m.collected AND NOT m.purged AND m.collected_at < $1
         ORDER BY m.collected_at LIMIT 1000"
    ))
    .bind(time::OffsetDateTime::now_utc() - grace)
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    let (mut restored, mut purged) = (0, 0);
    for (media_id, referenced) in collected {
        if referenced {
            let item = media.records.restore(media_id, metadata(None)).await;
            restored += u64::from(item.map_err(ApiError::internal)?.is_some());
            continue;
        }
        let keys = media.records.purge(media_id, metadata(None)).await;
        for key in keys.map_err(ApiError::internal)?.unwrap_or_default() {
            media.store.delete(&key).await.map_err(ApiError::internal)?;
        }
        purged += 1;
    }
    Ok((restored, purged))
}

/// Waits until the read models that refer to media have reached the log's end; false
/// if they do not within [`SETTLE_TIMEOUT`].
async fn settle(pool: &sqlx::PgPool, log: &natter_eventlog::EventLog) -> Result<bool, ApiError> {
    let end = log.last_sequence().await.map_err(ApiError::internal)?;
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    for (name, version) in [
        crate::routes::chats::CHATS,
        crate::routes::accounts::DIRECTORY,
        (
            <natter_projections::Media as natter_projections::Projection>::NAME,
            <natter_projections::Media as natter_projections::Projection>::VERSION,
        ),
    ] {
        loop {
            let reached = natter_projections::checkpoint(pool, name, version)
                .await
                .map_err(ApiError::internal)?;
            if reached >= end {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    Ok(true)
}

/// Every `sweep_every` until `stop` completes: sweeps unreferenced uploads, completes
/// stalled resumable uploads and deletes expired ones. Failures are logged and retried
/// at the next sweep.
pub async fn collect_unreferenced_forever(
    media: &std::sync::Arc<MediaService>,
    pool: &sqlx::PgPool,
    log: &natter_eventlog::EventLog,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(media.sweep_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        match sweep(media, pool, log, media.keep_unreferenced, COLLECT_GRACE).await {
            Ok(swept) if swept == Swept::default() => {}
            Ok(swept) => tracing::info!(
                collected = swept.collected,
                restored = swept.restored,
                purged = swept.purged,
                "swept unreferenced uploads"
            ),
            Err(error) => {
                tracing::warn!(error = error.code(), "sweeping unreferenced uploads failed")
            }
        }
        if let Err(error) = crate::routes::uploads::complete_stalled(pool, media).await {
            tracing::warn!(
                error = error.code(),
                "completing stalled resumable uploads failed"
            );
        }
        match crate::routes::uploads::delete_expired(pool, media).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted expired resumable uploads"),
            Err(error) => tracing::warn!(
                error = error.code(),
                "deleting expired resumable uploads failed"
            ),
        }
    }
}

/// An upload on disk, with what was learnt on the way; the file goes with it.
pub(crate) struct Spooled {
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    sha256: [u8; 32],
    head: Vec<u8>,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes chunks to a new file of the spool, hashing them and keeping the first bytes
/// for sniffing.
pub(crate) struct SpoolWriter {
    spooled: Spooled,
    writer: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
}

impl SpoolWriter {
    pub(crate) async fn create(spool: &std::path::Path) -> Result<Self, ApiError> {
        tokio::fs::create_dir_all(spool)
            .await
            .map_err(ApiError::internal)?;
        let path = spool.join(format!("{}.upload", Uuid::now_v7()));
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(ApiError::internal)?;
        Ok(Self {
            spooled: Spooled {
                path,
                size: 0,
                sha256: [0; 32],
                head: Vec::with_capacity(natter_media::sniff::SNIFF_LEN),
            },
            writer: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
        })
    }

    /// The bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.spooled.size
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        let spooled = &mut self.spooled;
        spooled.size += chunk.len() as u64;
        let wanted = natter_media::sniff::SNIFF_LEN.saturating_sub(spooled.head.len());
        spooled
            .head
            .extend_from_slice(&chunk[..wanted.min(chunk.len())]);
        self.hasher.update(chunk);
        self.writer
            .write_all(chunk)
            .await
            .map_err(ApiError::internal)
    }

    pub(crate) async fn finish(mut self) -> Result<Spooled, ApiError> {
        self.writer.flush().await.map_err(ApiError::internal)?;
        let mut spooled = self.spooled;
        spooled.sha256 = self.hasher.finalize().into();
        Ok(spooled)
    }
}

/// Writes `body` to a new file of the spool, refusing it with `too_large` as soon as it
/// passes `limit` bytes. Returns what arrived, and the error that broke the body off
/// early, if one did.
pub(crate) async fn spool_body(
    spool: &std::path::Path,
    body: Body,
    limit: u64,
    too_large: impl FnOnce() -> ApiError,
) -> Result<(Spooled, Option<axum::Error>), ApiError> {
    let mut writer = SpoolWriter::create(spool).await?;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return Ok((writer.finish().await?, Some(error))),
        };
        if writer.size() + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        writer.write(&chunk).await?;
    }
    Ok((writer.finish().await?, None))
}

/// Writes a single-request upload to the spool, and stops at `limit` bytes.
async fn spool(
    media: &MediaService,
    body: Body,
    kind: Kind,
    limit: u64,
) -> Result<Spooled, ApiError> {
    let over = || {
        if limit < media.limits.of(kind) {
            resumable_required(limit)
        } else {
            too_large(kind, limit)
        }
    };
    let (spooled, broke_off) = spool_body(&media.spool, body, limit, over).await?;
    if let Some(error) = broke_off {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("the upload broke off: {error}"),
        ));
    }
    if spooled.size == 0 {
        return Err(ApiError::bad_request(
            "empty_upload",
            "the upload has no bytes",
        ));
    }
    Ok(spooled)
}

/// Image decodes in this process at one time. Each may allocate up to its limit
/// (`ImageLimits::max_alloc`, 256 MiB by default), so four bound the worst case near
/// 1 GiB however many uploads arrive together; the others wait their turn.
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Decodes the image under the limits, and stores it re-encoded and its thumbnail.
async fn store_image(
    media: &MediaService,
    path: &std::path::Path,
    format: Format,
    item: &mut MediaUploaded,
) -> Result<(), ApiError> {
    let _decoding = DECODES.acquire().await.map_err(ApiError::internal)?;
    let bytes = tokio::fs::read(path).await.map_err(ApiError::internal)?;
    let limits = media.limits.decode;
    let processed =
        tokio::task::spawn_blocking(move || natter_media::image::process(&bytes, format, limits))
            .await
            .map_err(ApiError::internal)?
            .map_err(|error| match error {
                ImageError::TooLarge(detail) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "image_too_large",
                    format!("the image is too large to decode: {detail}"),
                ),
                ImageError::Undecodable(detail) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "undecodable_image",
                    format!("the image cannot be decoded: {detail}"),
                ),
                ImageError::Encode(detail) => ApiError::internal(detail),
            })?;
    let thumbnail_key = format!("{}.thumb.jpg", item.key);
    item.stored_size = processed.bytes.len() as u64;
    media
        .store
        .put_bytes(
            &item.key,
            Bytes::from(processed.bytes),
            format.content_type(),
        )
        .await
        .map_err(ApiError::internal)?;
    media
        .store
        .put_bytes(
            &thumbnail_key,
            Bytes::from(processed.thumbnail),
            "image/jpeg",
        )
        .await
        .map_err(ApiError::internal)?;
    item.width = Some(processed.width);
    item.height = Some(processed.height);
    item.thumbnail_key = Some(thumbnail_key);
    item.placeholder = Some(processed.placeholder);
    Ok(())
}

/// A file name as given: 1 to 255 bytes, no control characters, no path, and no
/// invisible formatting characters (a bidirectional override would show
/// `invoice\u{202E}fdp.exe` as `invoiceexe.pdf` to those it is shared with).
pub(crate) fn parse_file_name(name: &str) -> Result<String, ApiError> {
    let invisible = |c: char| {
        matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
    };
    let name = name.trim();
    let fine = (1..=255).contains(&name.len())
        && !name
            .chars()
            .any(|c| c.is_control() || invisible(c) || c == '/' || c == '\\')
        && name != "."
        && name != "..";
    if fine {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_file_name",
            "a file name is 1 to 255 bytes, without control characters or slashes",
        ))
    }
}

/// The body's length as its `Content-Length` declares it, if it does: a body too large
/// is refused before a byte of it is read.
pub(crate) fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
}

pub(crate) fn parse_kind(kind: &str) -> Result<Kind, ApiError> {
    Kind::parse(kind).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_kind",
            "kind is one of image, voice, video, document",
        )
    })
}

/// An upload larger than one request may carry: it goes through `/v1/media/uploads`.
fn resumable_required(single: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "resumable_upload_required",
        format!(
            "one request carries at most {single} bytes; upload larger files through \
             /v1/media/uploads (tus 1.0)"
        ),
    )
}

pub(crate) fn too_large(kind: Kind, limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
        format!("a {} may be at most {limit} bytes", kind.as_str()),
    )
}

/// The id of `owner`'s item with these bytes: the same bytes from the same owner are the
/// same item. Not guessable without the bytes.
fn media_id(owner: Uuid, sha256: &[u8; 32]) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"natter media id\0")
        .chain_update(owner.as_bytes())
        .chain_update(sha256)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The item, if the caller may see it: its owner, and the members of a chat where a
/// message shared it, if they could see that message (sent while they were members,
/// not deleted for everyone). Anyone else is told it does not exist.
async fn visible(
    state: &ApiState,
    caller: Caller,
    media_id: Uuid,
) -> Result<MediaUploaded, ApiError> {
    let item = state
        .media
        .records
        .item(media_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_found)?;
    if item.owner == caller.user_id || shared_with(state, caller.user_id, media_id).await? {
        Ok(item)
    } else {
        Err(ApiError::not_found())
    }
}

/// Whether a message `user` could see in one of their chats shares the item, or it is
/// the avatar of a group they are in, or the profile photo of someone who shows it to
/// them (as `GET /v1/users/{id}` does).
async fn shared_with(state: &ApiState, user: Uuid, media_id: Uuid) -> Result<bool, ApiError> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM messages_v1 m
             JOIN chat_members_v1 cm ON cm.chat_id = m.chat_id AND cm.user_id = $2
             WHERE m.attachment IS NOT NULL AND m.attachment ->> 'media_id' = $1::text
               AND NOT m.deleted AND m.sequence >= cm.joined_sequence
               AND (cm.left_sequence IS NULL OR m.sequence < cm.left_sequence))
         OR EXISTS (
             SELECT 1 FROM chats_v1 c
             JOIN chat_members_v1 cm ON cm.chat_id = c.chat_id AND cm.user_id = $2
             WHERE c.avatar_media_id = $1::uuid AND cm.left_at IS NULL)
         OR EXISTS (
             SELECT 1 FROM user_directory_v1 d
             WHERE d.photo_media_id = $1::uuid AND d.photo_visibility = 'everyone'
               AND NOT EXISTS (SELECT 1 FROM user_blocks_v1 b
                               WHERE b.user_id = d.user_id AND b.blocked_user_id = $2))",
    )
    .bind(media_id.to_string())
    .bind(user)
    .fetch_one(&state.pool)
    .await
    .map_err(ApiError::internal)
}

/// A media item's details.
#[utoipa::path(
    get, path = "/v1/media/{media_id}", tag = "media", operation_id = "media_details", security(("bearer" = [])),
    params(("media_id" = Uuid, Path, description = "The item")),
    responses(
        (status = 200, body = MediaItem),
        (status = 404, description = "No such item, or not the caller's to see"),
    )
)]
pub async fn details(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(media_id): ApiPath<Uuid>,
) -> Result<axum::Json<MediaItem>, ApiError> {
    let item = visible(&state, caller, media_id).await?;
    Ok(axum::Json(MediaItem::of(item, 0)))
}

/// A media item's bytes, whole or a single range (`Range: bytes=…`).
#[utoipa::path(
    get, path = "/v1/media/{media_id}/content", tag = "media", security(("bearer" = [])),
    params(("media_id" = Uuid, Path, description = "The item")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream"),
        (status = 404, description = "No such item, or not the caller's to see"),
        (status = 416, description = "A range outside the item"),
    )
)]
pub async fn content(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(media_id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let item = visible(&state, caller, media_id).await?;
    let part = requested_range(&headers, item.stored_size)?.map(|range| (range, item.stored_size));
    let mut response = serve(&state.media.store, &item.key, &item.content_type, part).await?;
    let disposition = content_disposition(&item.kind, item.file_name.as_deref());
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Documents are downloaded, pictures and sound shown; under their name, if they have
/// one (RFC 6266: an ASCII fallback, and the name itself in UTF-8).
fn content_disposition(kind: &str, file_name: Option<&str>) -> String {
    let disposition = if kind == Kind::Document.as_str() {
        "attachment"
    } else {
        "inline"
    };
    let Some(name) = file_name else {
        return disposition.to_owned();
    };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// How long a presigned download URL works.
const PRESIGNED_LIFETIME: std::time::Duration = std::time::Duration::from_secs(300);

/// A short-lived URL that downloads the item straight from the blob store.
#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadUrl {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

/// A URL that downloads the item from the S3 store for five minutes, with no other
/// credentials (for clients that fetch media from a CDN or the store directly). A store
/// on the filesystem has none: use `/content`.
#[utoipa::path(
    get, path = "/v1/media/{media_id}/url", tag = "media", security(("bearer" = [])),
    params(("media_id" = Uuid, Path, description = "The item")),
    responses(
        (status = 200, body = DownloadUrl),
        (status = 404, description = "No such item, or not the caller's to see"),
        (status = 409, description = "The blob store makes no such URLs (a filesystem store)"),
    )
)]
pub async fn download_url(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(media_id): ApiPath<Uuid>,
) -> Result<axum::Json<DownloadUrl>, ApiError> {
    let item = visible(&state, caller, media_id).await?;
    let expires_at = time::OffsetDateTime::now_utc() + PRESIGNED_LIFETIME;
    let url = state
        .media
        .store
        .presigned_get(
            &item.key,
            PRESIGNED_LIFETIME,
            Some(&content_disposition(&item.kind, item.file_name.as_deref())),
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_direct_url",
                "this server keeps media on its filesystem; download through /content",
            )
        })?;
    Ok(axum::Json(DownloadUrl { url, expires_at }))
}

/// An image's thumbnail, a JPEG.
#[utoipa::path(
    get, path = "/v1/media/{media_id}/thumbnail", tag = "media", security(("bearer" = [])),
    params(("media_id" = Uuid, Path, description = "The item")),
    responses(
        (status = 200, description = "The thumbnail", content_type = "image/jpeg"),
        (status = 404, description = "No such item or no thumbnail, or not the caller's to see"),
    )
)]
pub async fn thumbnail(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(media_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let item = visible(&state, caller, media_id).await?;
    let key = item.thumbnail_key.ok_or_else(ApiError::not_found)?;
    serve(&state.media.store, &key, "image/jpeg", None).await
}

/// The single range of the `size` bytes that `headers` ask for, if they ask for one.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<ByteRange>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    parse_range(value, size).map(Some).ok_or_else(|| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalid_range",
            format!(
                "one range of bytes within 0-{} is served",
                size.saturating_sub(1)
            ),
        )
    })
}

/// Streams `key` from the store: whole, or `part` (a range of a blob of a known size).
async fn serve(
    store: &BlobStore,
    key: &str,
    content_type: &str,
    part: Option<(ByteRange, u64)>,
) -> Result<Response, ApiError> {
    let range = part.map(|(range, _)| range);
    let blob = store.get(key, range).await.map_err(|error| match error {
        BlobError::NotFound => ApiError::not_found(),
        other => ApiError::internal(other),
    })?;
    let mut response = Response::new(Body::from_stream(blob.body));
    let response_headers = response.headers_mut();
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_TYPE, content_type);
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(blob.length));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    if let Some((range, size)) = part {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {}-{}/{size}", range.start, range.end);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    Ok(response)
}

/// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n` within `size` bytes.
fn parse_range(value: &HeaderValue, size: u64) -> Option<ByteRange> {
    let spec = value.to_str().ok()?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (start, end) = match (first.trim(), last.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().ok()?;
            if suffix == 0 {
                return None;
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (first, "") => (first.parse().ok()?, size - 1),
        (first, last) => (first.parse().ok()?, last.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_go_into_content_disposition_safely() {
        assert_eq!(content_disposition("image", None), "inline");
        assert_eq!(
            content_disposition("document", Some("Q3 report.pdf")),
            "attachment; filename=\"Q3 report.pdf\"; filename*=UTF-8''Q3%20report.pdf"
        );
        assert_eq!(
            content_disposition("document", Some("Prüfung \"final\".pdf")),
            "attachment; filename=\"Pr_fung _final_.pdf\"; \
             filename*=UTF-8''Pr%C3%BCfung%20%22final%22.pdf"
        );
        for bad in [
            "",
            "a/b",
            "..",
            "a\\b",
            "new\nline",
            "invoice\u{202E}fdp.exe",
            &"x".repeat(256),
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_file_name(" notes.txt ").unwrap(), "notes.txt");
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let range = |text: &str| parse_range(&HeaderValue::from_str(text).unwrap(), 100);
        assert_eq!(range("bytes=0-9"), Some(ByteRange { start: 0, end: 9 }));
        assert_eq!(range("bytes=90-"), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(range("bytes=-10"), Some(ByteRange { start: 90, end: 99 }));
        assert_eq!(
            range("bytes=95-200"),
            Some(ByteRange { start: 95, end: 99 })
        );
        for bad in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert_eq!(range(bad), None, "{bad}");
        }
    }
}

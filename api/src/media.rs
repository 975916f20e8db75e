//! The media service: storing, spooling and limits. An upload (from `POST /v1/media` or
//! a completed tus upload, `routes/uploads.rs`) is spooled, typed, processed, stored in
//! the blob store and recorded in the log here; the routes (`routes/media.rs`) are thin
//! HTTP around it.
//!
//! - An upload is spooled to a file while its SHA-256 is computed and its size checked
//!   against its kind's limit; then typed by its bytes, processed, stored under
//!   `media/<owner>/<uuid>` (each recording its own keys, so that deleting a collected
//!   recording's bytes never touches those of the same bytes uploaded again) and recorded
//!   as `MediaUploaded` on the `media` aggregate. Its id is derived from the owner and the
//!   hash, so the same bytes from the same user are one aggregate, recorded once; they
//!   keep the first file name.
//! - One request carries at most 16 MiB (above: 413 `resumable_upload_required`); larger
//!   files go through `/v1/media/uploads` (tus, `routes/uploads.rs`).
//! - Attaching an item (to a message, as a group's avatar or a profile photo) first
//!   records `MediaShared` on the item's aggregate, which checks that it is live and the
//!   caller's. A collection decided on read models that do not show the new reference yet
//!   then either fails its concurrency check on the aggregate, or sees a share less than
//!   10 minutes old and leaves the item (`SHARE_RESERVES`); a send that lost to a
//!   collection gets 422 `unknown_media`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use futures::StreamExt as _;
use natter_commands::media::{MediaError, MediaRecords};
use natter_commands::tokens::hex;
use natter_domain::media::MediaUploaded;
use natter_media::{BlobStore, Format, ImageError, ImageLimits, Kind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt as _;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::routes::metadata;

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
    pub receiving: Receiving,
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
pub(crate) async fn spool(
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
pub(crate) fn resumable_required(single: u64) -> ApiError {
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

/// The uploads this process is receiving a `PATCH` for: a second one for the same upload
/// is refused at once rather than spooled only to lose at the offset check. (Across
/// processes the offset check alone decides.)
#[derive(Debug, Clone, Default)]
pub struct Receiving(Arc<Mutex<HashSet<Uuid>>>);

/// An upload being received; released when dropped, also when the request is.
pub(crate) struct ReceivingGuard {
    set: Receiving,
    upload_id: Uuid,
}

impl Receiving {
    pub(crate) fn claim(&self, upload_id: Uuid) -> Option<ReceivingGuard> {
        let mut set = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.insert(upload_id).then(|| ReceivingGuard {
            set: self.clone(),
            upload_id,
        })
    }
}

impl Drop for ReceivingGuard {
    fn drop(&mut self) {
        let mut set = self
            .set
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.remove(&self.upload_id);
    }
}

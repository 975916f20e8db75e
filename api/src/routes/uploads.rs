//! Resumable uploads, as tus 1.0 describes them (core, creation, expiration,
//! termination): an upload is created with its length, its bytes arrive in `PATCH`es at
//! the offset the server holds, and a broken connection loses only what was not yet
//! received. Each `PATCH`'s bytes become a part in the blob store, so any instance of the
//! API may take the next one; the last part completes the upload, which then goes through
//! the same typing, processing and recording as a single-request upload.
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
//!   upload being received is refused at once (423 `upload_busy`).
//! - Completion holds a lease (`completing_until`) and runs in a task of its own, so a
//!   client that goes away does not cut it short; one that failed on the server's side is
//!   retried by the sweeper, or by the next `HEAD` or `GET` of the upload (tus clients
//!   take the full offset for success).
//! - Uploads expire after 24 hours; the sweeper deletes them and their parts. At most 20
//!   unfinished uploads per user (creations take turns under an advisory lock) and 10,000
//!   parts per upload.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::StreamExt as _;
use natter_media::Kind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::media::{
    MediaItem, MediaService, SpoolWriter, declared_length, parse_file_name, parse_kind, spool_body,
    too_large,
};
use crate::{ApiError, ApiState};

pub const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,expiration,termination";
/// The content type tus gives a `PATCH`'s bytes.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// How long an upload may take, from its creation.
const UPLOAD_LIFETIME: time::Duration = time::Duration::hours(24);
/// Unfinished uploads one user may hold at once.
const OPEN_UPLOADS_PER_USER: i64 = 20;
/// Parts one upload may have: a client sending tiny `PATCH`es is refused rather than
/// listed without end.
const PARTS_PER_UPLOAD: i64 = 10_000;

static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
/// The item a completed upload became.
static MEDIA_ID: HeaderName = HeaderName::from_static("natter-media-id");

/// How long one completion may hold an upload before another may take it over.
const COMPLETION_LEASE_SECS: f64 = 600.0;

/// An upload, as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadStatus {
    pub upload_id: Uuid,
    pub kind: String,
    /// The bytes the upload will have.
    pub length: u64,
    /// The bytes received: the offset the next `PATCH` starts at.
    pub offset: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The item, once the upload is complete.
    pub media: Option<MediaItem>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Upload {
    upload_id: Uuid,
    owner: Uuid,
    kind: String,
    length: i64,
    received: i64,
    expires_at: OffsetDateTime,
    media_id: Option<Uuid>,
    file_name: Option<String>,
}

/// The columns of an [`Upload`], from its table.
const UPLOAD_COLUMNS: &str = "SELECT upload_id, owner, kind, length, received, expires_at,
        media_id, file_name
     FROM media_uploads";

impl Upload {
    fn length(&self) -> u64 {
        u64::try_from(self.length).unwrap_or(0)
    }

    fn offset(&self) -> u64 {
        u64::try_from(self.received).unwrap_or(0)
    }

    /// The headers every answer about this upload carries.
    fn headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(UPLOAD_OFFSET.clone(), HeaderValue::from(self.offset()));
        headers.insert(UPLOAD_LENGTH.clone(), HeaderValue::from(self.length()));
        if let Ok(expires) = HeaderValue::from_str(&http_date(self.expires_at)) {
            headers.insert(UPLOAD_EXPIRES.clone(), expires);
        }
        if let Some(media_id) = self.media_id
            && let Ok(value) = HeaderValue::from_str(&media_id.to_string())
        {
            headers.insert(MEDIA_ID.clone(), value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Adds `Tus-Resumable` to every answer of the upload routes, and `Tus-Version` to a
/// 412, as tus asks.
pub async fn tus_resumable(mut response: Response) -> Response {
    if response.status() == StatusCode::PRECONDITION_FAILED {
        response
            .headers_mut()
            .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    }
    response
        .headers_mut()
        .insert(TUS_RESUMABLE.clone(), HeaderValue::from_static(TUS_VERSION));
    response
}

/// A request that names a tus version names 1.0.0 (one that names none is taken as
/// such, for plain HTTP clients).
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(&TUS_RESUMABLE) {
        Some(version) if version != TUS_VERSION => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "unsupported_tus_version",
            format!("this server speaks tus {TUS_VERSION} (Tus-Version)"),
        )),
        _ => Ok(()),
    }
}

fn number_header(
    headers: &HeaderMap,
    name: &HeaderName,
    code: &'static str,
) -> Result<u64, ApiError> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::bad_request(code, format!("{name} is needed, a number of bytes")))
}

/// The value of `key` in a tus `Upload-Metadata` header (`key base64,key base64`).
fn metadata_value(headers: &HeaderMap, key: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(&UPLOAD_METADATA) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_upload_metadata",
            "Upload-Metadata is pairs of a key and a base64 value, separated by commas",
        )
    };
    let value = value.to_str().map_err(|_| invalid())?;
    for pair in value.split(',') {
        let mut words = pair.trim().splitn(2, ' ');
        if words.next() != Some(key) {
            continue;
        }
        let Some(encoded) = words.next() else {
            return Ok(Some(String::new()));
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid())?;
        return String::from_utf8(decoded).map(Some).map_err(|_| invalid());
    }
    Ok(None)
}

/// An HTTP date (RFC 9110, IMF-fixdate).
fn http_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let weekday = &at.weekday().to_string()[..3];
    let month = &at.month().to_string()[..3];
    format!(
        "{weekday}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

async fn load(state: &ApiState, caller: Caller, upload_id: Uuid) -> Result<Upload, ApiError> {
    let upload: Option<Upload> = sqlx::query_as(&format!(
        "{UPLOAD_COLUMNS} WHERE upload_id = $1 AND owner = $2"
    ))
    .bind(upload_id)
    .bind(caller.user_id)
    .fetch_optional(&state.pool)
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

/// What this server's uploads support (tus discovery; no token needed).
#[utoipa::path(
    options, path = "/v1/media/uploads", tag = "media",
    responses((status = 204, description = "`Tus-Version`, `Tus-Extension` and `Tus-Max-Size` say what is supported")),
)]
pub async fn discover(State(state): State<ApiState>) -> Response {
    let limits = state.media.limits;
    let largest = [limits.image, limits.voice, limits.video, limits.document]
        .into_iter()
        .max()
        .unwrap_or(0);
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    headers.insert("tus-max-size", HeaderValue::from(largest));
    response
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// `image`, `voice`, `video` or `document`; may instead be given as `kind` in
    /// `Upload-Metadata`.
    pub kind: Option<String>,
    /// The file's name; may instead be given as `filename` in `Upload-Metadata`.
    pub name: Option<String>,
}

/// Starts a resumable upload (tus creation): `Upload-Length` gives its bytes, and the
/// kind is the `kind` query parameter or the `kind` entry of `Upload-Metadata`. The
/// answer's `Location` is where its bytes go.
#[utoipa::path(
    post, path = "/v1/media/uploads", tag = "media", security(("bearer" = [])),
    params(
        CreateQuery,
        ("Upload-Length" = u64, Header, maximum = 104_857_600, description = "The upload's size in bytes, at most the kind's limit (images and voice notes 16 MiB, videos 64 MiB, documents 100 MiB; `Tus-Max-Size` gives the largest)"),
        ("Upload-Metadata" = Option<String>, Header, description = "tus metadata: `kind` and its value in base64"),
    ),
    responses(
        (status = 201, description = "Created; `Location` is the upload", body = UploadStatus),
        (status = 400, description = "No length, no kind, or malformed metadata"),
        (status = 413, description = "Larger than the kind allows"),
        (status = 429, description = "Too many unfinished uploads"),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    if headers.contains_key("upload-defer-length") {
        return Err(ApiError::bad_request(
            "invalid_upload_length",
            "an upload's length is given when it is created",
        ));
    }
    let length = number_header(&headers, &UPLOAD_LENGTH, "invalid_upload_length")?;
    let kind = match query.kind {
        Some(kind) => kind,
        None => metadata_value(&headers, "kind")?.ok_or_else(|| {
            ApiError::bad_request(
                "invalid_kind",
                "the kind is needed: image, voice, video or document",
            )
        })?,
    };
    let kind = parse_kind(&kind)?;
    let file_name = match query.name {
        Some(name) => Some(name),
        None => metadata_value(&headers, "filename")?,
    };
    let file_name = file_name.as_deref().map(parse_file_name).transpose()?;
    let limit = state.media.limits.of(kind);
    if length > limit {
        return Err(too_large(kind, limit));
    }
    if length == 0 {
        return Err(ApiError::bad_request(
            "empty_upload",
            "the upload has no bytes",
        ));
    }
    let upload_id = Uuid::now_v7();
    let expires_at = OffsetDateTime::now_utc() + UPLOAD_LIFETIME;
    // The caller's creations take turns, so that concurrent ones cannot pass the limit
    // together.
    let mut tx = state.pool.begin().await.map_err(ApiError::internal)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
        .bind(caller.user_id)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    let created = sqlx::query(
        "INSERT INTO media_uploads (upload_id, owner, kind, length, expires_at, file_name)
         SELECT $1, $2, $3, $4, $5, $7
         WHERE (SELECT count(*) FROM media_uploads
                WHERE owner = $2 AND media_id IS NULL AND expires_at > now()) < $6",
    )
    .bind(upload_id)
    .bind(caller.user_id)
    .bind(kind.as_str())
    .bind(i64::try_from(length).map_err(ApiError::internal)?)
    .bind(expires_at)
    .bind(OPEN_UPLOADS_PER_USER)
    .bind(&file_name)
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
    let upload = Upload {
        upload_id,
        owner: caller.user_id,
        kind: kind.as_str().to_owned(),
        length: i64::try_from(length).map_err(ApiError::internal)?,
        received: 0,
        expires_at,
        media_id: None,
        file_name,
    };
    let mut response = (StatusCode::CREATED, axum::Json(status(&upload, None))).into_response();
    upload.headers(&mut response);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/media/uploads/{upload_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn status(upload: &Upload, media: Option<MediaItem>) -> UploadStatus {
    UploadStatus {
        upload_id: upload.upload_id,
        kind: upload.kind.clone(),
        length: upload.length(),
        offset: upload.offset(),
        expires_at: upload.expires_at,
        media,
    }
}

/// The upload's offset, for resuming (tus `HEAD`).
#[utoipa::path(
    head, path = "/v1/media/uploads/{upload_id}", tag = "media", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path, description = "The upload")),
    responses(
        (status = 200, description = "`Upload-Offset` is the bytes received; `Natter-Media-Id` names the item once complete"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 410, description = "The upload expired"),
    )
)]
pub async fn offset(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(upload_id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let upload = load(&state, caller, upload_id).await?;
    complete_in_background(&state, &upload);
    let mut response = StatusCode::OK.into_response();
    upload.headers(&mut response);
    Ok(response)
}

/// The upload's progress, and its item once complete.
#[utoipa::path(
    get, path = "/v1/media/uploads/{upload_id}", tag = "media", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path, description = "The upload")),
    responses(
        (status = 200, body = UploadStatus),
        (status = 404, description = "No such upload of the caller's"),
        (status = 410, description = "The upload expired"),
    )
)]
pub async fn progress(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(upload_id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let upload = load(&state, caller, upload_id).await?;
    complete_in_background(&state, &upload);
    let media = match upload.media_id {
        Some(media_id) => state
            .media
            .records
            .item(media_id)
            .await
            .map_err(ApiError::internal)?
            .map(|item| MediaItem::of(item, 0)),
        None => None,
    };
    let mut response = axum::Json(status(&upload, media)).into_response();
    upload.headers(&mut response);
    Ok(response)
}

/// Sends bytes at `Upload-Offset`, which must be the bytes received so far. If the
/// connection breaks, what arrived is kept: ask for the offset and go on from there. The
/// request that brings the upload to its length completes it: it answers once the item
/// is stored and recorded, naming it in `Natter-Media-Id`. An empty request at the full
/// length completes an upload whose completion failed on the server's side.
#[utoipa::path(
    patch, path = "/v1/media/uploads/{upload_id}", tag = "media", security(("bearer" = [])),
    params(
        ("upload_id" = Uuid, Path, description = "The upload"),
        ("Upload-Offset" = u64, Header, description = "The bytes received so far, where these bytes go"),
    ),
    request_body(content = inline(super::Binary), content_type = "application/offset+octet-stream", description = "The next bytes"),
    responses(
        (status = 204, description = "Received; `Upload-Offset` is the new offset, and `Natter-Media-Id` the item once complete"),
        (status = 400, description = "No `Upload-Offset` (`invalid_upload_offset`); an upload already in 10,000 parts (`too_many_parts`); or the request broke off (`invalid_body`: what arrived is kept)"),
        (status = 404, description = "No such upload of the caller's"),
        (status = 409, description = "`Upload-Offset` is not the bytes received (`offset_mismatch`)"),
        (status = 410, description = "The upload expired"),
        (status = 413, description = "More bytes than the upload has room for (`beyond_upload_length`), declared or sent; nothing of this request is kept"),
        (status = 415, description = "Not `application/offset+octet-stream`; or, on completion, bytes not of the kind"),
        (status = 422, description = "On completion: an image that cannot be decoded, or too large to decode"),
        (status = 423, description = "Another request is sending bytes for this upload (`upload_busy`)"),
    )
)]
pub async fn append(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(upload_id): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let offset_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM));
    if !offset_stream {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_content_type",
            format!("an upload's bytes are sent as {OFFSET_OCTET_STREAM}"),
        ));
    }
    let offset = number_header(&headers, &UPLOAD_OFFSET, "invalid_upload_offset")?;
    let mut upload = load(&state, caller, upload_id).await?;
    if offset != upload.offset() {
        return Err(offset_mismatch(upload.offset()));
    }
    let room = upload.length() - upload.offset();
    if declared_length(&headers).is_some_and(|length| length > room) {
        return Err(beyond_length(room));
    }
    let _receiving = state.media.receiving.claim(upload_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::LOCKED,
            "upload_busy",
            "another request is sending bytes for this upload; wait for it, then ask for \
             the offset",
        )
    })?;
    let (received, broke_off) = receive(&state, &upload, body).await?;
    upload.received += i64::try_from(received).map_err(ApiError::internal)?;
    // Bytes that reached the length complete the upload, even if the request then broke.
    if upload.media_id.is_none() && upload.offset() == upload.length() {
        upload.media_id = complete_detached(&state.pool, &state.media, &upload).await?;
    }
    if let Some(error) = broke_off {
        return Err(error);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    upload.headers(&mut response);
    Ok(response)
}

pub(crate) fn beyond_length(room: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "beyond_upload_length",
        format!("the upload has room for {room} more bytes"),
    )
}

fn offset_mismatch(received: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "offset_mismatch",
        format!("the upload has {received} bytes; send from there"),
    )
}

/// Stores the body as the upload's next part, at its offset. Returns the bytes taken,
/// and the error that ended the body early, if one did: what arrived before it is kept.
async fn receive(
    state: &ApiState,
    upload: &Upload,
    body: Body,
) -> Result<(u64, Option<ApiError>), ApiError> {
    let media = &state.media;
    let room = upload.length() - upload.offset();
    if room == 0 || upload.media_id.is_some() {
        // A complete upload takes no more bytes; an empty request is a retry.
        spool_body(&media.spool, body, 0, || beyond_length(0)).await?;
        return Ok((0, None));
    }
    let parts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM media_upload_parts WHERE upload_id = $1")
            .bind(upload.upload_id)
            .fetch_one(&state.pool)
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
    .execute(&state.pool)
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
    let mut tx = state.pool.begin().await.map_err(ApiError::internal)?;
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
        forget_parts(&state.pool, media, &[key]).await?;
        let now: Option<i64> =
            sqlx::query_scalar("SELECT received FROM media_uploads WHERE upload_id = $1")
                .bind(upload.upload_id)
                .fetch_optional(&state.pool)
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
fn complete_in_background(state: &ApiState, upload: &Upload) {
    if upload.media_id.is_none() && upload.offset() == upload.length() {
        let (pool, media, upload) = (state.pool.clone(), Arc::clone(&state.media), upload.clone());
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
    pool: &sqlx::PgPool,
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
    pool: &sqlx::PgPool,
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
            delete_upload(pool, media, upload.upload_id).await?;
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
    pool: &sqlx::PgPool,
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
pub async fn complete_stalled(
    pool: &sqlx::PgPool,
    media: &Arc<MediaService>,
) -> Result<u64, ApiError> {
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
    pool: &sqlx::PgPool,
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
    pool: &sqlx::PgPool,
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

/// Abandons an upload and deletes what it received (tus termination).
#[utoipa::path(
    delete, path = "/v1/media/uploads/{upload_id}", tag = "media", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path, description = "The upload")),
    responses(
        (status = 204, description = "Deleted; a completed upload's item stays"),
        (status = 404, description = "No such upload of the caller's"),
    )
)]
pub async fn terminate(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(upload_id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    check_version(&headers)?;
    let upload = load(&state, caller, upload_id).await?;
    delete_upload(&state.pool, &state.media, upload.upload_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_upload(
    pool: &sqlx::PgPool,
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
pub async fn delete_expired(pool: &sqlx::PgPool, media: &MediaService) -> Result<u64, ApiError> {
    let expired: Vec<Uuid> = sqlx::query_scalar(
        "SELECT upload_id FROM media_uploads WHERE expires_at <= now()
         ORDER BY expires_at LIMIT 1000",
    )
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    for upload_id in &expired {
        delete_upload(pool, media, *upload_id).await?;
    }
    Ok(expired.len() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_are_http_dates() {
        let at = OffsetDateTime::from_unix_timestamp(1_795_733_421).unwrap();
        assert_eq!(http_date(at), "Thu, 26 Nov 2026 22:50:21 GMT");
    }

    #[test]
    fn metadata_is_read_as_tus_writes_it() {
        let mut headers = HeaderMap::new();
        headers.insert(
            UPLOAD_METADATA.clone(),
            HeaderValue::from_static("filename d29ybGQucGRm,kind ZG9jdW1lbnQ=,is_confidential"),
        );
        assert_eq!(
            metadata_value(&headers, "kind").unwrap().as_deref(),
            Some("document")
        );
        assert_eq!(
            metadata_value(&headers, "is_confidential")
                .unwrap()
                .as_deref(),
            Some("")
        );
        assert_eq!(metadata_value(&headers, "missing").unwrap(), None);
        headers.insert(
            UPLOAD_METADATA.clone(),
            HeaderValue::from_static("kind !!!"),
        );
        assert!(metadata_value(&headers, "kind").is_err());
    }
}

//! Resumable uploads, as tus 1.0 describes them (core, creation, expiration,
//! termination): an upload is created with its length, its bytes arrive in `PATCH`es at
//! the offset the server holds, and a broken connection loses only what was not yet
//! received. Each `PATCH`'s bytes become a part in the blob store, so any instance of the
//! API may take the next one; the last part completes the upload, which then goes through
//! the same typing, processing and recording as a single-request upload.
//!
//! How uploads are received, completed and swept: `crate::uploads`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::media::{MediaItem, declared_length, parse_file_name, parse_kind, too_large};
use crate::uploads::{self, Upload, beyond_length, offset_mismatch};
use crate::{ApiError, ApiState};

pub const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,expiration,termination";
/// The content type tus gives a `PATCH`'s bytes.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
/// The item a completed upload became.
static MEDIA_ID: HeaderName = HeaderName::from_static("natter-media-id");

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

/// The headers every answer about an upload carries.
fn upload_headers(upload: &Upload, response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(UPLOAD_OFFSET.clone(), HeaderValue::from(upload.offset()));
    headers.insert(UPLOAD_LENGTH.clone(), HeaderValue::from(upload.length()));
    if let Ok(expires) = HeaderValue::from_str(&http_date(upload.expires_at)) {
        headers.insert(UPLOAD_EXPIRES.clone(), expires);
    }
    if let Some(media_id) = upload.media_id
        && let Ok(value) = HeaderValue::from_str(&media_id.to_string())
    {
        headers.insert(MEDIA_ID.clone(), value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
    let upload = uploads::create(&state.pool, caller.user_id, kind, length, file_name).await?;
    let mut response = (StatusCode::CREATED, axum::Json(status(&upload, None))).into_response();
    upload_headers(&upload, &mut response);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/media/uploads/{}", upload.upload_id))
    {
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
    let upload = uploads::find(&state.pool, caller.user_id, upload_id).await?;
    uploads::complete_in_background(&state.pool, &state.media, &upload);
    let mut response = StatusCode::OK.into_response();
    upload_headers(&upload, &mut response);
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
    let upload = uploads::find(&state.pool, caller.user_id, upload_id).await?;
    uploads::complete_in_background(&state.pool, &state.media, &upload);
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
    upload_headers(&upload, &mut response);
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
    let upload = uploads::find(&state.pool, caller.user_id, upload_id).await?;
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
    let (upload, broke_off) = uploads::append(&state.pool, &state.media, upload, body).await?;
    if let Some(error) = broke_off {
        return Err(error);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    upload_headers(&upload, &mut response);
    Ok(response)
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
    let upload = uploads::find(&state.pool, caller.user_id, upload_id).await?;
    uploads::delete(&state.pool, &state.media, upload.upload_id).await?;
    Ok(StatusCode::NO_CONTENT)
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

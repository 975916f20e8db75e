//! Media over HTTP: uploads in one request (the service, `crate::media`, stores them),
//! and downloads with ranges, presigned URLs and thumbnails.
//!
//! - Documents are served with `Content-Disposition: attachment`, others `inline`, under
//!   the item's name (RFC 6266: an ASCII fallback and the UTF-8 name).
//! - Downloads are for the owner, for members of a chat where a message they could see
//!   (sent while they were members, not deleted for everyone) shares the item, for members
//!   of a group whose avatar it is, and for anyone a user's profile photo is shown to
//!   (`profile_photo` privacy, blocks). Others get 404.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use natter_domain::media::MediaUploaded;
use natter_media::{BlobError, BlobStore, ByteRange, Kind};
use natter_projections::reads;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::extract::{ApiPath, ApiQuery, Caller};
use crate::media::{
    MediaItem, declared_length, parse_file_name, parse_kind, resumable_required, spool,
    store_upload, too_large,
};
use crate::{ApiError, ApiState};

/// What media needs: where bytes go, the log's record of them, and the limits.
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
    if item.owner == caller.user_id
        || reads::media::shared_with(&state.pool, caller.user_id, media_id)
            .await
            .map_err(ApiError::internal)?
    {
        Ok(item)
    } else {
        Err(ApiError::not_found())
    }
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

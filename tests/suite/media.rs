//! Media through the REST API, on both blob stores: the filesystem, and S3 as served by
//! s3s-fs on loopback, which checks every request's signature (scripts/s3.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Cursor;

use common::http::{Api, User};
use common::{TempDir, TestEnv};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use natter::settings::{BlobBackend, MediaSettings, Role, ServeArgs};
use natter_media::{BlobStore, S3Config};
use reqwest::{StatusCode, header};
use serde_json::Value;

fn s3_endpoint() -> String {
    std::env::var("NATTER_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4335".into())
}

fn s3_keys() -> (String, String) {
    (
        std::env::var("NATTER_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "natter-test".into()),
        std::env::var("NATTER_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|_| "natter-test-secret-key".into()),
    )
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Fs,
    S3,
}

/// A running app whose media go to `backend`, and a client: an [`Api`] with the media
/// settings it was started with.
struct Media {
    api: Api,
    settings: MediaSettings,
    _dir: Option<TempDir>,
}

impl std::ops::Deref for Media {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Media {
    async fn start(env: &TestEnv, backend: Backend) -> Self {
        Self::start_keeping(env, backend, 86_400).await
    }

    /// With unreferenced uploads collected after `keep_secs`, swept every second.
    async fn start_keeping(env: &TestEnv, backend: Backend, keep_secs: u64) -> Self {
        let dir = TempDir(std::env::temp_dir().join(format!("natter-media-{}", env.prefix)));
        let (access, secret) = s3_keys();
        let mut media = match backend {
            Backend::Fs => MediaSettings {
                blob_store: BlobBackend::Fs,
                media_dir: dir.0.join("store"),
                media_spool: Some(dir.0.join("spool")),
                ..MediaSettings::default()
            },
            Backend::S3 => MediaSettings {
                blob_store: BlobBackend::S3,
                media_spool: Some(dir.0.join("spool")),
                s3_endpoint: Some(s3_endpoint()),
                s3_bucket: format!("natter-{}", &env.prefix[..20]),
                s3_access_key: Some(natter::settings::Secret::new(access)),
                s3_secret_key: Some(natter::settings::Secret::new(secret)),
                ..MediaSettings::default()
            },
        };
        media.media_keep_unreferenced_secs = keep_secs;
        media.media_sweep_secs = 1;
        let app = env
            .spawn_app_serving(ServeArgs {
                push: Default::default(),
                auto_rebuild: true,
                web_dir: None,
                media: media.clone(),
                listen: "127.0.0.1:0".parse().unwrap(),
                roles: vec![Role::Api, Role::Projector],
                auth: natter::settings::AuthSettings {
                    register_per_address: 1_000,
                    login_per_address: 1_000,
                    ..Default::default()
                },
                gateway: Default::default(),
            })
            .await;
        Self {
            api: Api {
                app,
                http: reqwest::Client::new(),
            },
            settings: media,
            _dir: Some(dir),
        }
    }

    async fn get(&self, user: &User, path: &str, range: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.app.url(path)).bearer_auth(&user.token);
        if let Some(range) = range {
            request = request.header(header::RANGE, range);
        }
        request.send().await.unwrap()
    }
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn picture(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x * 3) as u8, (y * 5) as u8, 128])
    }))
}

/// A JPEG with an EXIF segment carrying a GPS position, as phones write them.
fn jpeg_with_gps() -> Vec<u8> {
    let plain = encoded(&picture(120, 80), ImageFormat::Jpeg);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude 52.5200 N GPSLongitude 13.4050 E";
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    segment.extend_from_slice(payload);
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&segment);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

/// A 120x80 JPEG whose EXIF says to turn it a quarter clockwise to show it, as phones
/// held upright write them.
fn jpeg_turned() -> Vec<u8> {
    let plain = encoded(&picture(120, 80), ImageFormat::Jpeg);
    // One IFD entry: Orientation (0x0112), a SHORT, 6.
    let payload = b"Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut jpeg = plain[..2].to_vec();
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    jpeg.extend_from_slice(payload);
    jpeg.extend_from_slice(&plain[2..]);
    jpeg
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG that claims `width` x `height` RGBA pixels in a few dozen bytes: a
/// decompression bomb, if a decoder believed it.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        chunk.extend_from_slice(&body);
        chunk.extend_from_slice(&crc32(&body).to_be_bytes());
        chunk
    };
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        for color in [[255, 0, 0, 255], [0, 0, 255, 255]] {
            let frame = RgbaImage::from_pixel(40, 30, image::Rgba(color));
            encoder
                .encode_frame(Frame::from_parts(
                    frame,
                    0,
                    0,
                    Delay::from_numer_denom_ms(100, 1),
                ))
                .unwrap();
        }
    }
    out
}

/// Each image format is decoded, re-encoded without metadata, measured and thumbnailed;
/// the same bytes again are the same item.
async fn images(backend: Backend) {
    let env = TestEnv::new().await;
    let media = Media::start(&env, backend).await;
    let ann = media.user("ann").await;
    let cases = [
        ("jpeg", jpeg_with_gps(), "image/jpeg", (120, 80)),
        (
            "png",
            encoded(&picture(64, 48), ImageFormat::Png),
            "image/png",
            (64, 48),
        ),
        (
            "webp",
            encoded(&picture(30, 20), ImageFormat::WebP),
            "image/webp",
            (30, 20),
        ),
        ("gif", animated_gif(), "image/gif", (40, 30)),
    ];
    for (name, bytes, content_type, (width, height)) in cases {
        let (status, item) = media.upload(&ann, "image", bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {item}");
        assert_eq!(item["content_type"], content_type, "{name}");
        assert_eq!(
            (item["width"].as_u64(), item["height"].as_u64()),
            (Some(width.into()), Some(height.into())),
            "{name}"
        );
        assert!(
            item["placeholder"]
                .as_str()
                .unwrap()
                .starts_with("data:image/jpeg;base64,")
        );
        let id = item["media_id"].as_str().unwrap();

        let served = media
            .get(&ann, &format!("/v1/media/{id}/content"), None)
            .await;
        assert_eq!(served.status(), StatusCode::OK);
        assert_eq!(served.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(served.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let body = served.bytes().await.unwrap();
        assert_eq!(body.len() as u64, item["stored_size"].as_u64().unwrap());
        let decoded = image::load_from_memory(&body).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (width, height),
            "{name}"
        );
        assert!(
            !body.windows(4).any(|w| w == b"Exif") && !body.windows(3).any(|w| w == b"GPS"),
            "{name}: metadata stripped"
        );

        let thumbnail = media
            .get(&ann, &format!("/v1/media/{id}/thumbnail"), None)
            .await;
        assert_eq!(thumbnail.status(), StatusCode::OK);
        let thumbnail = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
        assert!(thumbnail.width() <= 320 && thumbnail.height() <= 320);
        if name == "gif" {
            let pixel = thumbnail.to_rgb8().get_pixel(20, 15).0;
            assert!(
                pixel[0] > 200 && pixel[2] < 60,
                "the first frame: {pixel:?}"
            );
        }

        let (again, same) = media.upload(&ann, "image", bytes).await;
        assert_eq!(again, StatusCode::OK, "{name}: stored once");
        assert_eq!(same["media_id"], item["media_id"]);
        if name == "jpeg" {
            let plain = image::load_from_memory(&jpeg_with_gps()[..]).unwrap();
            assert!(decoded == plain, "a JPEG loses no quality to the stripping");
        }
    }

    // A photo taken upright is stored upright, without the EXIF that turned it.
    let (status, item) = media.upload(&ann, "image", jpeg_turned()).await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    assert_eq!(
        (item["width"].as_u64(), item["height"].as_u64()),
        (Some(80), Some(120))
    );
    let id = item["media_id"].as_str().unwrap();
    let served = media
        .get(&ann, &format!("/v1/media/{id}/content"), None)
        .await;
    let body = served.bytes().await.unwrap();
    assert!(!body.windows(4).any(|w| w == b"Exif"));
    let decoded = image::load_from_memory(&body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (80, 120));
}

#[tokio::test]
async fn images_are_decoded_stripped_measured_and_thumbnailed_on_the_filesystem() {
    images(Backend::Fs).await;
}

#[tokio::test]
async fn images_are_decoded_stripped_measured_and_thumbnailed_on_s3() {
    images(Backend::S3).await;
}

/// Formats other than images are typed by their bytes and stored as they are, and served
/// whole or by range, to their owner only.
async fn files_and_ranges(backend: Backend) {
    let env = TestEnv::new().await;
    let media = Media::start(&env, backend).await;
    let ann = media.user("ann").await;
    let bob = media.user("bob").await;
    let pad = |head: &[u8]| {
        let mut bytes = head.to_vec();
        bytes.extend((0..4_000u32).map(|i| (i % 251) as u8));
        bytes
    };
    let cases: [(&str, Vec<u8>, &str); 8] = [
        ("voice", pad(b"OggS\0\x02"), "audio/ogg"),
        ("voice", pad(b"ID3\x04\0\0"), "audio/mpeg"),
        ("voice", pad(b"\xFF\xF1\x50\x80"), "audio/aac"),
        ("video", pad(b"\0\0\0\x20ftypisom"), "video/mp4"),
        ("video", pad(b"\x1A\x45\xDF\xA3"), "video/webm"),
        ("document", pad(b"%PDF-1.7\n"), "application/pdf"),
        ("document", pad(b"PK\x03\x04\x14\0"), "application/zip"),
        (
            "document",
            pad(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1"),
            "application/x-ole-storage",
        ),
    ];
    for (kind, bytes, content_type) in cases {
        let (status, item) = media.upload(&ann, kind, bytes.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{content_type}: {item}");
        assert_eq!(item["content_type"], content_type);
        assert_eq!(item["size"].as_u64(), Some(bytes.len() as u64));
        let id = item["media_id"].as_str().unwrap();
        let path = format!("/v1/media/{id}/content");
        let whole = media.get(&ann, &path, None).await;
        assert_eq!(whole.headers()[header::CONTENT_TYPE], content_type);
        assert_eq!(whole.bytes().await.unwrap(), bytes);

        let part = media.get(&ann, &path, Some("bytes=10-19")).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.headers()[header::CONTENT_RANGE],
            format!("bytes 10-19/{}", bytes.len()).as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), bytes[10..20]);
        let tail = media.get(&ann, &path, Some("bytes=-5")).await;
        assert_eq!(tail.bytes().await.unwrap(), bytes[bytes.len() - 5..]);
        let outside = media.get(&ann, &path, Some("bytes=99999-")).await;
        assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);

        // Someone else, or nobody, cannot tell it exists.
        for path in [path.clone(), format!("/v1/media/{id}")] {
            assert_eq!(
                media.get(&bob, &path, None).await.status(),
                StatusCode::NOT_FOUND
            );
        }
        // A presigned URL works with no token, for S3; a filesystem store has none.
        let url = media.get(&ann, &format!("/v1/media/{id}/url"), None).await;
        match backend {
            Backend::S3 => {
                let url: Value = url.json().await.unwrap();
                let direct = media
                    .http
                    .get(url["url"].as_str().unwrap())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(direct.status(), StatusCode::OK);
                assert_eq!(direct.bytes().await.unwrap(), bytes);
            }
            Backend::Fs => assert_eq!(url.status(), StatusCode::CONFLICT),
        }
        let anonymous = media.http.get(media.app.url(&path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let thumbnail = media
            .get(&ann, &format!("/v1/media/{id}/thumbnail"), None)
            .await;
        assert_eq!(thumbnail.status(), StatusCode::NOT_FOUND);
    }
    // Where cheap, a document's pages and a video's duration are read from the file.
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >> endobj\n\
                2 0 obj << /Type /Page >> endobj 3 0 obj << /Type /Page >> endobj\n%%EOF"
        .to_vec();
    let named = media
        .http
        .post(media.app.url("/v1/media"))
        .query(&[("kind", "document"), ("name", "Prüfung 2026.pdf")])
        .bearer_auth(&ann.token)
        .body(pdf)
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), StatusCode::CREATED);
    let item: Value = named.json().await.unwrap();
    assert_eq!(item["pages"], 2, "{item}");
    assert_eq!(item["file_name"], "Prüfung 2026.pdf");
    let download = media
        .get(
            &ann,
            &format!("/v1/media/{}/content", item["media_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        download.headers()[header::CONTENT_DISPOSITION],
        "attachment; filename=\"Pr_fung 2026.pdf\"; filename*=UTF-8''Pr%C3%BCfung%202026.pdf",
        "a document is a download, under its name"
    );
    let (status, problem) = media
        .call(
            reqwest::Method::POST,
            "/v1/media?kind=document&name=..%2Fetc%2Fpasswd",
            &ann,
            None,
        )
        .await;
    assert_problem(
        &(status, problem),
        StatusCode::BAD_REQUEST,
        "invalid_file_name",
    );
    let mut mvhd = vec![0u8; 20];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&(600u32 * 42).to_be_bytes());
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    mp4.extend_from_slice(&36u32.to_be_bytes());
    mp4.extend_from_slice(b"moov");
    mp4.extend_from_slice(&28u32.to_be_bytes());
    mp4.extend_from_slice(b"mvhd");
    mp4.extend_from_slice(&mvhd);
    let (_, item) = media.upload(&ann, "video", mp4).await;
    assert_eq!(item["duration_ms"], 42_000, "{item}");
    // A WebM's duration and frame size, from its Info and Tracks.
    let ebml = |id: &[u8], body: &[u8]| {
        let mut element = id.to_vec();
        element.push(0x80 | u8::try_from(body.len()).unwrap());
        element.extend_from_slice(body);
        element
    };
    let mut webm = ebml(&[0x1A, 0x45, 0xDF, 0xA3], &ebml(&[0x42, 0x82], b"webm"));
    webm.extend_from_slice(&[
        0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    let info = [
        ebml(&[0x2A, 0xD7, 0xB1], &[0x0F, 0x42, 0x40]),
        ebml(&[0x44, 0x89], &4_500f64.to_be_bytes()),
    ]
    .concat();
    webm.extend(ebml(&[0x15, 0x49, 0xA9, 0x66], &info));
    let video = [ebml(&[0xB0], &[0x02, 0x80]), ebml(&[0xBA], &[0x01, 0x68])].concat();
    let track = ebml(&[0xAE], &ebml(&[0xE0], &video));
    webm.extend(ebml(&[0x16, 0x54, 0xAE, 0x6B], &track));
    webm.extend(ebml(&[0x1F, 0x43, 0xB6, 0x75], &[0xE7, 0x81, 0x00]));
    let (_, item) = media.upload(&ann, "video", webm).await;
    assert_eq!(
        (&item["duration_ms"], &item["width"], &item["height"]),
        (&Value::from(4_500), &Value::from(640), &Value::from(360)),
        "{item}"
    );
    // An AAC voice note's duration, from its ADTS frames: 100 of 1024 samples at 44.1 kHz.
    let frame_length: u32 = 107;
    let mut adts = Vec::new();
    for _ in 0..100 {
        adts.extend_from_slice(&[
            0xFF,
            0xF1,
            0x50,
            0x80 | u8::try_from(frame_length >> 11).unwrap(),
            u8::try_from((frame_length >> 3) & 0xFF).unwrap(),
            u8::try_from((frame_length & 0x7) << 5).unwrap() | 0x1F,
            0xFC,
        ]);
        adts.extend(std::iter::repeat_n(0x21, 100));
    }
    let (_, item) = media.upload(&ann, "voice", adts).await;
    assert_eq!(item["duration_ms"], 100 * 1024 * 1000 / 44_100, "{item}");
    // The same bytes from another user are another item.
    let (status, theirs) = media.upload(&bob, "document", pad(b"%PDF-1.7\n")).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
}

#[tokio::test]
async fn files_are_typed_by_their_bytes_and_served_by_range_to_their_owner_on_the_filesystem() {
    files_and_ranges(Backend::Fs).await;
}

#[tokio::test]
async fn files_are_typed_by_their_bytes_and_served_by_range_to_their_owner_on_s3() {
    files_and_ranges(Backend::S3).await;
}

#[tokio::test]
async fn bad_uploads_get_clear_errors() {
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let ann = media.user("ann").await;
    let png = encoded(&picture(8, 8), ImageFormat::Png);
    // Bytes that contradict the kind, bytes of no known format, a kind that is not one.
    assert_problem(
        &media.upload(&ann, "document", png.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content_mismatch",
    );
    assert_problem(
        &media.upload(&ann, "voice", png.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content_mismatch",
    );
    assert_problem(
        &media
            .upload(
                &ann,
                "image",
                b"<html><script>alert(1)</script></html>".to_vec(),
            )
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_format",
    );
    assert_problem(
        &media.upload(&ann, "sticker", png.clone()).await,
        StatusCode::BAD_REQUEST,
        "invalid_kind",
    );
    assert_problem(
        &media.upload(&ann, "image", Vec::new()).await,
        StatusCode::BAD_REQUEST,
        "empty_upload",
    );
    // Decompression bombs: too wide, and within the sides but too many bytes to decode.
    assert_problem(
        &media
            .upload(&ann, "image", png_claiming(30_000, 30_000))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "image_too_large",
    );
    assert_problem(
        &media
            .upload(&ann, "image", png_claiming(11_000, 11_000))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "image_too_large",
    );
    // A truncated image.
    assert_problem(
        &media
            .upload(&ann, "image", png[..png.len() / 2].to_vec())
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "undecodable_image",
    );

    // Over the kind's limit: refused from the declared length, or while streaming.
    let mut big = png.clone();
    big.resize(16 * 1024 * 1024 + 1, 0);
    assert_problem(
        &media.upload(&ann, "image", big.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload_too_large",
    );
    // A body of no declared length that passes the limit and then never ends: only a
    // server that counts as it streams can answer, and it must.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1024 * 1024).map(|c| Ok(c.to_vec())).collect();
    let endless =
        futures::StreamExt::chain(futures::stream::iter(chunks), futures::stream::pending());
    let streamed = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        media
            .http
            .post(media.app.url("/v1/media?kind=image"))
            .bearer_auth(&ann.token)
            .body(reqwest::Body::wrap_stream(endless))
            .send(),
    )
    .await
    .expect("the server answers while the body still streams")
    .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was left in the spool.
    let spool = std::env::temp_dir()
        .join(format!("natter-media-{}", env.prefix))
        .join("spool");
    assert_eq!(std::fs::read_dir(spool).unwrap().count(), 0);
}

#[tokio::test]
async fn the_s3_store_signs_its_requests_and_a_wrong_key_is_refused() {
    let (access, secret) = s3_keys();
    let config = |secret: String| S3Config {
        endpoint: Some(s3_endpoint()),
        region: "us-east-1".into(),
        bucket: format!("natter-signing-{}", uuid::Uuid::now_v7().simple()),
        access_key: access.clone(),
        secret_key: secret,
    };
    let wrong = BlobStore::s3(config("not-the-secret".into())).await;
    assert!(
        wrong.is_err(),
        "a request signed with a wrong key is refused"
    );
    let store = BlobStore::s3(config(secret)).await.unwrap();
    store
        .put_bytes(
            "media/a/b",
            bytes::Bytes::from_static(b"hello"),
            "text/plain",
        )
        .await
        .unwrap();
    let blob = store
        .get(
            "media/a/b",
            Some(natter_media::ByteRange { start: 1, end: 3 }),
        )
        .await
        .unwrap();
    assert_eq!(blob.length, 3);
    assert!(matches!(
        store.get("media/a/missing", None).await,
        Err(natter_media::BlobError::NotFound)
    ));
    assert!(matches!(
        store.get("../escape", None).await,
        Err(natter_media::BlobError::BadKey(_))
    ));
}

/// Sends `request` (a JSON message) to `chat` as `from`; the status and answer.
async fn send(media: &Media, chat: &str, from: &User, request: Value) -> (StatusCode, Value) {
    media
        .call(
            reqwest::Method::POST,
            &format!("/v1/chats/{chat}/messages"),
            from,
            Some(request),
        )
        .await
}

async fn status_of(media: &Media, user: &User, id: &str) -> StatusCode {
    media
        .get(user, &format!("/v1/media/{id}/content"), None)
        .await
        .status()
}

/// The last message of `chat` in `user`'s chat list, as of `at`.
async fn last_message(media: &Media, user: &User, chat: &str, at: u64) -> Value {
    let (_, list) = media
        .call(
            reqwest::Method::GET,
            &format!("/v1/chats?min_sequence={at}"),
            user,
            None,
        )
        .await;
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["chat_id"] == chat)
        .unwrap()["last_message"]
        .clone()
}

/// The chat list says what a last message carries, so that a photo sent without a
/// caption shows as a photo; also when it looks back past a message the member deleted
/// for themselves, and not once the message is deleted for everyone.
#[tokio::test]
async fn the_chat_list_says_what_the_last_message_carries() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let [ann, bob] = [media.user("ann").await, media.user("bob").await];
    let chat = media.group(&[&ann, &bob]).await;
    let (_, item) = media
        .upload(&ann, "image", encoded(&picture(32, 32), ImageFormat::Png))
        .await;
    let photo = json!({"type": "media", "media_id": item["media_id"]});
    let (_, sent) = send(
        &media,
        &chat,
        &ann,
        json!({"client_id": "p", "attachment": photo}),
    )
    .await;
    let at = sent["sequence"].as_u64().unwrap();
    let shown = last_message(&media, &bob, &chat, at).await;
    assert_eq!(
        (shown["attachment"].as_str(), shown["preview"].as_str()),
        (Some("image"), Some("")),
        "{shown}"
    );

    let (_, sent) = send(&media, &chat, &ann, json!({"client_id": "l", "body": "here", "attachment": {"type": "location", "latitude": 1.0, "longitude": 2.0}})).await;
    let place = sent["sequence"].as_u64().unwrap();
    let (_, sent) = send(&media, &chat, &ann, json!({"client_id": "c", "attachment": {"type": "contact", "name": "Dora", "phone": "+49 30 1234567"}})).await;
    let card = sent["sequence"].as_u64().unwrap();
    assert_eq!(
        last_message(&media, &bob, &chat, card).await["attachment"],
        "contact"
    );

    let (_, hidden) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{card}?scope=me"),
            &bob,
            None,
        )
        .await;
    let shown = last_message(&media, &bob, &chat, hidden["sequence"].as_u64().unwrap()).await;
    assert_eq!(shown["sequence"], place, "{shown}");
    assert_eq!(
        (shown["attachment"].as_str(), shown["preview"].as_str()),
        (Some("location"), Some("here"))
    );

    let (_, deleted) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{card}"),
            &ann,
            None,
        )
        .await;
    let shown = last_message(&media, &ann, &chat, deleted["sequence"].as_u64().unwrap()).await;
    assert_eq!(shown["deleted"], true, "{shown}");
    assert!(shown.get("attachment").is_none(), "{shown}");
    let (_, sent) = send(
        &media,
        &chat,
        &bob,
        json!({"client_id": "t", "body": "text"}),
    )
    .await;
    let shown = last_message(&media, &ann, &chat, sent["sequence"].as_u64().unwrap()).await;
    assert!(shown.get("attachment").is_none(), "{shown}");
}

#[tokio::test]
async fn media_shared_in_a_chat_is_served_to_its_members_while_the_message_stands() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let [ann, bob, eve, cat] = [
        media.user("ann").await,
        media.user("bob").await,
        media.user("eve").await,
        media.user("cat").await,
    ];
    let chat = media.group(&[&ann, &bob, &eve]).await;
    let (_, item) = media
        .upload(&ann, "image", encoded(&picture(32, 32), ImageFormat::Png))
        .await;
    let id = item["media_id"].as_str().unwrap().to_owned();
    assert_eq!(
        status_of(&media, &bob, &id).await,
        StatusCode::NOT_FOUND,
        "not shared yet"
    );

    // Only one's own uploads can be attached.
    let (status, problem) = send(
        &media,
        &chat,
        &bob,
        json!({"client_id": "b1", "attachment": {"type": "media", "media_id": id}}),
    )
    .await;
    assert_problem(
        &(status, problem),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_media",
    );
    let (status, sent) = send(
        &media,
        &chat,
        &ann,
        json!({"client_id": "a1", "body": "look", "attachment": {"type": "media", "media_id": id}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let shared = sent["sequence"].as_u64().unwrap();
    let (_, page) = media
        .call(
            reqwest::Method::GET,
            &format!("/v1/chats/{chat}/messages?min_sequence={shared}"),
            &bob,
            None,
        )
        .await;
    let message = &page["items"][0];
    assert_eq!(message["body"], "look");
    assert_eq!(message["attachment"]["type"], "media");
    assert_eq!(message["attachment"]["media_id"], id.as_str());
    assert_eq!(message["attachment"]["content_type"], "image/png");
    for member in [&bob, &eve] {
        assert_eq!(status_of(&media, member, &id).await, StatusCode::OK);
    }
    assert_eq!(
        status_of(&media, &cat, &id).await,
        StatusCode::NOT_FOUND,
        "not a member"
    );

    // A place and a contact card, and ones that are not.
    let (status, _) = send(&media, &chat, &bob, json!({"client_id": "b2", "attachment": {"type": "location", "latitude": 52.52, "longitude": 13.405, "name": "Alexanderplatz"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, card) = send(&media, &chat, &bob, json!({"client_id": "b3", "attachment": {"type": "contact", "name": "Dora", "phone": "+49 30 1234567"}})).await;
    assert_eq!(status, StatusCode::CREATED);
    for bad in [
        json!({"type": "location", "latitude": 91.0, "longitude": 0.0}),
        json!({"type": "contact", "name": "No way to reach"}),
        json!({"type": "contact", "name": "Bad", "phone": "call me"}),
    ] {
        let (status, problem) = send(
            &media,
            &chat,
            &bob,
            json!({"client_id": "bad", "attachment": bad}),
        )
        .await;
        assert_problem(
            &(status, problem),
            StatusCode::BAD_REQUEST,
            "invalid_attachment",
        );
    }
    let (_, page) = media
        .call(
            reqwest::Method::GET,
            &format!(
                "/v1/chats/{chat}/messages?limit=2&min_sequence={}",
                card["sequence"]
            ),
            &ann,
            None,
        )
        .await;
    let place = &page["items"][0]["attachment"];
    assert_eq!(
        (
            place["latitude_e7"].as_i64(),
            place["longitude_e7"].as_i64()
        ),
        (Some(525_200_000), Some(134_050_000)),
        "{page}"
    );
    assert_eq!(page["items"][1]["attachment"]["phone"], "+49 30 1234567");

    // A forward shares the item with the chat it goes to.
    let (_, direct) = media
        .call(
            reqwest::Method::POST,
            "/v1/chats/direct",
            &bob,
            Some(json!({"user_id": cat.id})),
        )
        .await;
    let direct = direct["chat_id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &media,
        &direct,
        &bob,
        json!({"client_id": "f1", "forward": {"chat_id": chat, "sequence": shared}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    common::eventually(
        std::time::Duration::from_secs(10),
        "the forward is projected",
        || async { status_of(&media, &cat, &id).await == StatusCode::OK },
    )
    .await;

    // Deleted for everyone, the message no longer shares it: eve, in that chat only,
    // loses it; cat keeps the forward's.
    let (status, _) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{shared}"),
            &ann,
            None,
        )
        .await;
    assert!(status.is_success());
    common::eventually(
        std::time::Duration::from_secs(10),
        "the deletion is projected",
        || async { status_of(&media, &eve, &id).await == StatusCode::NOT_FOUND },
    )
    .await;
    assert_eq!(status_of(&media, &cat, &id).await, StatusCode::OK);
    assert_eq!(
        status_of(&media, &ann, &id).await,
        StatusCode::OK,
        "the owner keeps it"
    );
}

#[tokio::test]
async fn a_group_avatar_is_an_image_its_editor_uploaded_and_members_may_download_it() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let [ann, bob, cat] = [
        media.user("ann").await,
        media.user("bob").await,
        media.user("cat").await,
    ];
    let chat = media.group(&[&ann, &bob]).await;
    let (_, image) = media
        .upload(&ann, "image", encoded(&picture(48, 48), ImageFormat::Png))
        .await;
    let (_, document) = media
        .upload(&ann, "document", b"%PDF-1.4\n%%EOF".to_vec())
        .await;
    let (_, theirs) = media
        .upload(&cat, "image", encoded(&picture(20, 20), ImageFormat::Png))
        .await;
    let path = format!("/v1/chats/{chat}");
    let edit = |media_id: &Value| {
        media.call(
            reqwest::Method::PATCH,
            &path,
            &ann,
            Some(json!({"avatar_media_id": media_id})),
        )
    };
    for refused in [
        &document["media_id"],
        &theirs["media_id"],
        &json!(uuid::Uuid::now_v7()),
    ] {
        let (status, problem) = edit(refused).await;
        assert_problem(
            &(status, problem),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_avatar",
        );
    }
    let id = image["media_id"].as_str().unwrap();
    assert_eq!(status_of(&media, &bob, id).await, StatusCode::NOT_FOUND);
    let (status, _) = edit(&image["media_id"]).await;
    assert_eq!(status, StatusCode::OK);
    common::eventually(
        std::time::Duration::from_secs(10),
        "the avatar is projected",
        || async { status_of(&media, &bob, id).await == StatusCode::OK },
    )
    .await;
    assert_eq!(status_of(&media, &cat, id).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_profile_photo_is_an_image_of_ones_own_shown_as_privacy_allows() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let [ann, bob] = [media.user("ann").await, media.user("bob").await];
    let (_, image) = media
        .upload(&ann, "image", encoded(&picture(40, 30), ImageFormat::Jpeg))
        .await;
    let (_, document) = media
        .upload(&ann, "document", b"%PDF-1.4 photo\n%%EOF".to_vec())
        .await;
    let (_, theirs) = media
        .upload(&bob, "image", encoded(&picture(20, 20), ImageFormat::Png))
        .await;
    let id = image["media_id"].as_str().unwrap();
    for refused in [&document["media_id"], &theirs["media_id"]] {
        let (status, problem) = media
            .call(
                reqwest::Method::PUT,
                "/v1/users/me/photo",
                &ann,
                Some(json!({"media_id": refused})),
            )
            .await;
        assert_problem(
            &(status, problem),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_photo",
        );
    }
    assert_eq!(status_of(&media, &bob, id).await, StatusCode::NOT_FOUND);
    let (status, set) = media
        .call(
            reqwest::Method::PUT,
            "/v1/users/me/photo",
            &ann,
            Some(json!({"media_id": id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let seen = format!("?min_sequence={}", set["sequence"]);
    let (_, me) = media
        .call(
            reqwest::Method::GET,
            &format!("/v1/users/me{seen}"),
            &ann,
            None,
        )
        .await;
    assert_eq!(me["photo_media_id"], id);
    let profile = format!("/v1/users/{}{seen}", ann.id);
    let (_, public) = media.call(reqwest::Method::GET, &profile, &bob, None).await;
    assert_eq!(public["photo_media_id"], id, "{public}");
    let thumbnail = media
        .get(&bob, &format!("/v1/media/{id}/thumbnail"), None)
        .await;
    assert_eq!(thumbnail.status(), StatusCode::OK);

    // Hidden by the privacy setting: neither named nor served.
    let (status, hidden) = media
        .call(
            reqwest::Method::PUT,
            "/v1/users/me/privacy",
            &ann,
            Some(json!({"profile_photo": "nobody"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hidden}");
    let profile = format!("/v1/users/{}?min_sequence={}", ann.id, hidden["sequence"]);
    let (_, public) = media.call(reqwest::Method::GET, &profile, &bob, None).await;
    assert_eq!(public["photo_media_id"], Value::Null, "{public}");
    assert_eq!(status_of(&media, &bob, id).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of(&media, &ann, id).await, StatusCode::OK);

    // Removed.
    let (status, removed) = media
        .call(reqwest::Method::DELETE, "/v1/users/me/photo", &ann, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = media
        .call(
            reqwest::Method::GET,
            &format!("/v1/users/me?min_sequence={}", removed["sequence"]),
            &ann,
            None,
        )
        .await;
    assert_eq!(me["photo_media_id"], Value::Null);
}

#[tokio::test]
async fn an_upload_nothing_refers_to_is_collected_and_its_bytes_deleted() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start_keeping(&env, Backend::Fs, 3).await;
    let ann = media.user("ann").await;
    let bob = media.user("bob").await;
    let chat = media.group(&[&ann, &bob]).await;
    // Each item is referred to as soon as it is uploaded, well within the 3 s kept.
    let (_, kept) = media
        .upload(&ann, "document", b"%PDF-1.4 kept\n%%EOF".to_vec())
        .await;
    let kept = kept["media_id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &media,
        &chat,
        &ann,
        json!({"client_id": "k", "attachment": {"type": "media", "media_id": kept}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, photo) = media
        .upload(&ann, "image", encoded(&picture(32, 32), ImageFormat::Png))
        .await;
    let photo = photo["media_id"].as_str().unwrap().to_owned();
    let (status, _) = media
        .call(
            reqwest::Method::PUT,
            "/v1/users/me/photo",
            &ann,
            Some(json!({"media_id": photo})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let lonely_bytes = encoded(&picture(24, 24), ImageFormat::Png);
    let (_, lonely) = media.upload(&ann, "image", lonely_bytes.clone()).await;
    let lonely = lonely["media_id"].as_str().unwrap().to_owned();
    let store = std::env::temp_dir()
        .join(format!("natter-media-{}", env.prefix))
        .join("store")
        .join("media")
        .join(&ann.id);
    let files = || walk(&store).len();
    assert_eq!(files(), 5, "two images, their thumbnails and a document");

    common::eventually(
        std::time::Duration::from_secs(15),
        "the lonely upload is collected",
        || async { status_of(&media, &ann, &lonely).await == StatusCode::NOT_FOUND },
    )
    .await;
    common::eventually(
        std::time::Duration::from_secs(20),
        "its bytes and thumbnail are deleted, after the collector's grace",
        || async { files() == 3 },
    )
    .await;
    assert_eq!(status_of(&media, &ann, &kept).await, StatusCode::OK);
    assert_eq!(
        status_of(&media, &bob, &photo).await,
        StatusCode::OK,
        "a profile photo, so kept"
    );
    assert_eq!(
        status_of(&media, &bob, &kept).await,
        StatusCode::OK,
        "shared, so kept"
    );
    let (status, problem) = send(
        &media,
        &chat,
        &ann,
        json!({"client_id": "late", "attachment": {"type": "media", "media_id": lonely}}),
    )
    .await;
    assert_problem(
        &(status, problem),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_media",
    );

    // The same bytes again are the same item, back.
    let (status, again) = media.upload(&ann, "image", lonely_bytes).await;
    assert_eq!(
        (status, again["media_id"].as_str()),
        (StatusCode::CREATED, Some(lonely.as_str()))
    );
    assert_eq!(status_of(&media, &ann, &lonely).await, StatusCode::OK);
}

/// An MP4 of about `size` bytes lasting `seconds`, its movie header after its data.
fn long_mp4(size: usize, seconds: u32) -> Vec<u8> {
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    let data = size - mp4.len() - 8 - 36;
    mp4.extend_from_slice(&u32::try_from(data + 8).unwrap().to_be_bytes());
    mp4.extend_from_slice(b"mdat");
    mp4.extend((0..data).map(|i| (i % 253) as u8));
    let mut mvhd = vec![0u8; 20];
    mvhd[12..16].copy_from_slice(&600u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&(600 * seconds).to_be_bytes());
    mp4.extend_from_slice(&36u32.to_be_bytes());
    mp4.extend_from_slice(b"moov");
    mp4.extend_from_slice(&28u32.to_be_bytes());
    mp4.extend_from_slice(b"mvhd");
    mp4.extend_from_slice(&mvhd);
    mp4
}

impl Media {
    /// A tus request to `path`, as `user`.
    fn tus(&self, method: reqwest::Method, path: &str, user: &User) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.app.url(path))
            .bearer_auth(&user.token)
            .header("Tus-Resumable", "1.0.0")
    }

    /// Starts an upload of `length` bytes; its path.
    async fn create_upload(&self, user: &User, kind: &str, length: usize) -> String {
        let kind = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, kind);
        let created = self
            .tus(reqwest::Method::POST, "/v1/media/uploads", user)
            .header("Upload-Length", length)
            .header(
                "Upload-Metadata",
                format!("filename Y2xpcC5tcDQ=,kind {kind}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(created.headers()["tus-resumable"], "1.0.0");
        assert_eq!(created.headers()["upload-offset"], "0");
        created.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned()
    }

    async fn patch(
        &self,
        user: &User,
        path: &str,
        offset: usize,
        bytes: &[u8],
    ) -> reqwest::Response {
        self.tus(reqwest::Method::PATCH, path, user)
            .header("Upload-Offset", offset)
            .header(header::CONTENT_TYPE, "application/offset+octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// The upload's offset as `HEAD` tells it, or its status if it has none.
    async fn upload_offset(&self, user: &User, path: &str) -> Result<usize, StatusCode> {
        let head = self
            .tus(reqwest::Method::HEAD, path, user)
            .send()
            .await
            .unwrap();
        match head.status() {
            StatusCode::OK => Ok(head.headers()["upload-offset"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()),
            other => Err(other),
        }
    }
}

/// A response's status and body (null if it has none).
async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Asserts that `answer` is the problem `code`, with `status`.
#[track_caller]
fn assert_problem((got, problem): &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(
        (*got, problem["code"].as_str()),
        (status, Some(code)),
        "{problem}"
    );
}

async fn resumable_uploads(backend: Backend) {
    const MIB: usize = 1024 * 1024;
    let env = TestEnv::new().await;
    let media = Media::start(&env, backend).await;
    let ann = media.user("ann").await;
    let bob = media.user("bob").await;

    let options = media
        .http
        .request(reqwest::Method::OPTIONS, media.app.url("/v1/media/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), StatusCode::NO_CONTENT);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    assert_eq!(
        options.headers()["tus-extension"],
        "creation,expiration,termination"
    );

    // A video larger than one request may carry must go the resumable way.
    let video = long_mp4(17 * MIB + 12_345, 42);
    let (status, problem) = media.upload(&ann, "video", video.clone()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("resumable_upload_required")
        )
    );
    let path = media.create_upload(&ann, "video", video.len()).await;
    assert_eq!(
        media.upload_offset(&bob, &path).await,
        Err(StatusCode::NOT_FOUND),
        "another user's upload"
    );
    let first = media.patch(&ann, &path, 0, &video[..4 * MIB]).await;
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        first.headers()["upload-offset"],
        (4 * MIB).to_string().as_str()
    );
    // Bytes for the wrong offset, bytes of the wrong type.
    assert_problem(
        &answer(media.patch(&ann, &path, 0, &video[..MIB]).await).await,
        StatusCode::CONFLICT,
        "offset_mismatch",
    );
    let untyped = media
        .tus(reqwest::Method::PATCH, &path, &ann)
        .header("Upload-Offset", 4 * MIB)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(video[4 * MIB..5 * MIB].to_vec())
        .send()
        .await
        .unwrap();
    assert_problem(
        &answer(untyped).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_content_type",
    );

    // A request that breaks off after a mebibyte: what arrived is kept.
    let sent = video[4 * MIB..5 * MIB].to_vec();
    let broken = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>(sent)]),
        futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Err(std::io::Error::other("the train went into a tunnel"))
        }),
    );
    let _ = media
        .tus(reqwest::Method::PATCH, &path, &ann)
        .header("Upload-Offset", 4 * MIB)
        .header(header::CONTENT_TYPE, "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(broken))
        .send()
        .await;
    let mut offset = 4 * MIB;
    for _ in 0..100 {
        offset = media.upload_offset(&ann, &path).await.unwrap();
        if offset > 4 * MIB {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        offset > 4 * MIB && offset <= 5 * MIB,
        "the bytes before the break are kept: {offset}"
    );

    // Resumed from the server's offset, to the end.
    let mut last = None;
    while offset < video.len() {
        let end = (offset + 4 * MIB).min(video.len());
        let response = media.patch(&ann, &path, offset, &video[offset..end]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "at {offset}");
        offset = end;
        last = Some(response);
    }
    let media_id = last.unwrap().headers()["natter-media-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let status: Value = media
        .tus(reqwest::Method::GET, &path, &ann)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["offset"].as_u64(), Some(video.len() as u64));
    assert_eq!(status["media"]["media_id"], media_id.as_str());
    assert_eq!(status["media"]["content_type"], "video/mp4");
    assert_eq!(status["media"]["duration_ms"], 42_000, "{status}");
    assert_eq!(
        status["media"]["file_name"], "clip.mp4",
        "from tus metadata"
    );
    let content = media
        .get(&ann, &format!("/v1/media/{media_id}/content"), None)
        .await;
    assert_eq!(
        content.headers()[header::CONTENT_DISPOSITION],
        "inline; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"
    );
    assert!(content.bytes().await.unwrap() == video, "the bytes as sent");
    // A retry of a completed upload's last request is told so; more bytes are refused.
    let retried = media.patch(&ann, &path, video.len(), &[]).await;
    assert_eq!(retried.status(), StatusCode::NO_CONTENT);
    assert_eq!(retried.headers()["natter-media-id"], media_id.as_str());
    assert_problem(
        &answer(media.patch(&ann, &path, video.len(), b"more").await).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "beyond_upload_length",
    );
    // Nobody else may look at, add to or delete it.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = media.tus(method, &path, &bob).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        media.patch(&bob, &path, video.len(), &[]).await.status(),
        StatusCode::NOT_FOUND
    );

    // Two requests for the same offset at once: the second is refused while the first
    // streams, and only the first's bytes count.
    let pair = media.create_upload(&ann, "document", 2 * MIB).await;
    let half = vec![7u8; MIB];
    let slow_half = half.clone();
    let slow = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>(slow_half[..MIB / 2].to_vec())]),
        futures::stream::once(async move {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            Ok(slow_half[MIB / 2..].to_vec())
        }),
    );
    let first = media
        .tus(reqwest::Method::PATCH, &pair, &ann)
        .header("Upload-Offset", 0)
        .header(header::CONTENT_TYPE, "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(slow))
        .send();
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        media.patch(&ann, &pair, 0, &half).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(&answer(second).await, StatusCode::LOCKED, "upload_busy");
    assert_eq!(media.upload_offset(&ann, &pair).await, Ok(MIB));
    let gone = media
        .tus(reqwest::Method::DELETE, &pair, &ann)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);

    // Bytes that are not the kind end the upload with the reason.
    let png = encoded(&picture(64, 64), ImageFormat::Png);
    let wrong = media.create_upload(&ann, "document", png.len()).await;
    assert_problem(
        &answer(media.patch(&ann, &wrong, 0, &png).await).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content_mismatch",
    );
    assert_eq!(
        media.upload_offset(&ann, &wrong).await,
        Err(StatusCode::NOT_FOUND)
    );
    // More bytes than the upload's length.
    let short = media.create_upload(&ann, "image", 10).await;
    assert_problem(
        &answer(media.patch(&ann, &short, 0, &png).await).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "beyond_upload_length",
    );
    // An abandoned upload is deleted with what it received.
    assert_eq!(
        media.patch(&ann, &short, 0, &png[..5]).await.status(),
        StatusCode::NO_CONTENT
    );
    let deleted = media
        .tus(reqwest::Method::DELETE, &short, &ann)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        media.upload_offset(&ann, &short).await,
        Err(StatusCode::NOT_FOUND)
    );
    if let Backend::Fs = backend {
        let parts = std::env::temp_dir()
            .join(format!("natter-media-{}", env.prefix))
            .join("store/uploads");
        let left: Vec<_> = walk(&parts);
        assert!(left.is_empty(), "parts left behind: {left:?}");
    }

    // Each kind's limit holds for resumable uploads too: up to it, and not a byte more.
    for (kind, limit) in [
        ("image", 16 * MIB),
        ("voice", 16 * MIB),
        ("video", 64 * MIB),
        ("document", 100 * MIB),
    ] {
        let at_limit = media.create_upload(&ann, kind, limit).await;
        let gone = media
            .tus(reqwest::Method::DELETE, &at_limit, &ann)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
        let over = media
            .tus(reqwest::Method::POST, "/v1/media/uploads", &ann)
            .query(&[("kind", kind)])
            .header("Upload-Length", limit + 1)
            .send()
            .await
            .unwrap();
        let (status, problem) = answer(over).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("upload_too_large")),
            "{kind}"
        );
    }

    // Creations that cannot be.
    let create = |length: Option<&str>, kind: Option<&str>, version: &str| {
        let mut request = media
            .http
            .post(media.app.url("/v1/media/uploads"))
            .bearer_auth(&ann.token)
            .header("Tus-Resumable", version);
        if let Some(length) = length {
            request = request.header("Upload-Length", length);
        }
        if let Some(kind) = kind {
            request = request.query(&[("kind", kind)]);
        }
        request.send()
    };
    for (length, kind, version, want) in [
        (
            None,
            Some("video"),
            "1.0.0",
            (StatusCode::BAD_REQUEST, "invalid_upload_length"),
        ),
        (
            Some("-1"),
            Some("video"),
            "1.0.0",
            (StatusCode::BAD_REQUEST, "invalid_upload_length"),
        ),
        (
            Some("0"),
            Some("video"),
            "1.0.0",
            (StatusCode::BAD_REQUEST, "empty_upload"),
        ),
        (
            Some("100"),
            None,
            "1.0.0",
            (StatusCode::BAD_REQUEST, "invalid_kind"),
        ),
        (
            Some("100"),
            Some("sticker"),
            "1.0.0",
            (StatusCode::BAD_REQUEST, "invalid_kind"),
        ),
        (
            Some("67108865"),
            Some("video"),
            "1.0.0",
            (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large"),
        ),
        (
            Some("100"),
            Some("video"),
            "0.2.2",
            (StatusCode::PRECONDITION_FAILED, "unsupported_tus_version"),
        ),
    ] {
        let response = create(length, kind, version).await.unwrap();
        let (status, problem) = answer(response).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (want.0, Some(want.1)),
            "{length:?} {kind:?}"
        );
    }

    // A user holds at most 20 unfinished uploads.
    for _ in 0..20 {
        media.create_upload(&ann, "document", 1_000).await;
    }
    let one_more = media
        .tus(
            reqwest::Method::POST,
            "/v1/media/uploads?kind=document",
            &ann,
        )
        .header("Upload-Length", 1_000)
        .send()
        .await
        .unwrap();
    assert_problem(
        &answer(one_more).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_uploads",
    );
}

/// The files under `dir`, if it exists.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[tokio::test]
async fn large_uploads_resume_where_they_broke_off_on_the_filesystem() {
    resumable_uploads(Backend::Fs).await;
}

#[tokio::test]
async fn large_uploads_resume_where_they_broke_off_on_s3() {
    resumable_uploads(Backend::S3).await;
}

#[tokio::test]
async fn media_a_message_refers_to_as_it_is_collected_is_restored_not_lost() {
    use natter_api::collector::{Swept, mark_unreferenced, sweep};
    use natter_domain::chat::{Attachment, ClientId, MessageBody};
    let env = TestEnv::new().await;
    // Its own sweeper keeps everything for an hour: this test runs the collector itself.
    let media = Media::start_keeping(&env, Backend::Fs, 3_600).await;
    let [ann, bob] = [media.user("ann").await, media.user("bob").await];
    let chat = media.group(&[&ann, &bob]).await;
    let raced_bytes = encoded(&picture(30, 20), ImageFormat::Png);
    let (_, raced) = media.upload(&ann, "image", raced_bytes).await;
    let (_, lonely) = media
        .upload(&ann, "document", b"%PDF-1.4 lonely\n%%EOF".to_vec())
        .await;
    let raced_id: uuid::Uuid = raced["media_id"].as_str().unwrap().parse().unwrap();
    let lonely_id: uuid::Uuid = lonely["media_id"].as_str().unwrap().parse().unwrap();
    // An image sent and then deleted: nothing refers to it any more, but its share keeps
    // it from collection for a while.
    let (_, reserved) = media
        .upload(&ann, "image", encoded(&picture(12, 12), ImageFormat::Png))
        .await;
    let reserved = reserved["media_id"].as_str().unwrap().to_owned();
    let (status, sent) = send(
        &media,
        &chat,
        &ann,
        serde_json::json!({"client_id": "r", "attachment": {"type": "media", "media_id": reserved}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let (status, _) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{}", sent["sequence"]),
            &ann,
            None,
        )
        .await;
    assert!(status.is_success());
    common::eventually(
        std::time::Duration::from_secs(10),
        "the uploads and the deletion are projected",
        || async {
            let counts: (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM media_v1),
                        (SELECT count(*) FROM messages_v1 WHERE attachment IS NOT NULL)",
            )
            .fetch_one(&env.pool)
            .await
            .unwrap();
            counts == (3, 0)
        },
    )
    .await;
    let metrics = natter_commands::CommandMetrics::default();
    let service = natter::app::media_service(&media.settings, &env.log, &metrics)
        .await
        .unwrap();
    let marked = mark_unreferenced(&service, &env.pool, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(marked, 2, "the shared image is kept");
    assert_eq!(status_of(&media, &ann, &reserved).await, StatusCode::OK);
    assert_eq!(
        status_of(&media, &ann, &raced_id.to_string()).await,
        StatusCode::NOT_FOUND,
        "collected: no longer served"
    );

    // A send that found the image live a moment before its collection appends now (the
    // API would refuse it from here on, so it goes through the command layer).
    let messages = natter_commands::messages::Messages::new(env.log.clone(), metrics.clone());
    messages
        .send(
            chat.parse().unwrap(),
            ann.id.parse().unwrap(),
            natter_commands::messages::NewMessage {
                client_id: ClientId::parse("raced").unwrap(),
                body: MessageBody::caption("").unwrap(),
                reply_to: None,
                mentions: Vec::new(),
                forwarded: 0,
                attachment: Some(Attachment::Media {
                    media_id: raced_id,
                    kind: "image".into(),
                    content_type: "image/png".into(),
                }),
            },
            natter_schema::Metadata::new(ann.id.parse().ok(), uuid::Uuid::now_v7()),
        )
        .await
        .unwrap();
    // The next sweep, with no grace, finds the read models at the log's end and the
    // image referred to.
    let hour = std::time::Duration::from_secs(3_600);
    let swept = sweep(
        &service,
        &env.pool,
        &env.log,
        hour,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(
        swept,
        Swept {
            collected: 0,
            restored: 1,
            purged: 1
        },
        "the image restored, the document nothing refers to purged"
    );
    assert_eq!(
        status_of(&media, &bob, &raced_id.to_string()).await,
        StatusCode::OK,
        "restored, and served to the chat's members"
    );
    let content = media
        .get(&bob, &format!("/v1/media/{raced_id}/content"), None)
        .await;
    assert_eq!(content.status(), StatusCode::OK);
    assert_eq!(
        status_of(&media, &ann, &lonely_id.to_string()).await,
        StatusCode::NOT_FOUND
    );
    let stored = std::env::temp_dir()
        .join(format!("natter-media-{}", env.prefix))
        .join("store/media")
        .join(&ann.id);
    assert_eq!(
        walk(&stored).len(),
        4,
        "both images and their thumbnails remain"
    );
}

/// A page of `chat` as `user` asks for it with `query`.
async fn page_of(media: &Media, chat: &str, user: &User, query: &str) -> (StatusCode, Value) {
    let path = format!("/v1/chats/{chat}/messages?{query}");
    media.call(reqwest::Method::GET, &path, user, None).await
}

#[tokio::test]
async fn a_chats_gallery_pages_its_photos_and_videos_documents_and_links() {
    use serde_json::json;
    let env = TestEnv::new().await;
    let media = Media::start(&env, Backend::Fs).await;
    let [ann, bob, cat] = [
        media.user("ann").await,
        media.user("bob").await,
        media.user("cat").await,
    ];
    let chat = media.group(&[&ann, &bob]).await;
    let mut photos = Vec::new();
    for n in 0..3 {
        let (_, item) = media
            .upload(&ann, "image", encoded(&picture(16, 16), ImageFormat::Png))
            .await;
        let (status, sent) = send(&media, &chat, &ann, json!({"client_id": format!("p{n}"), "attachment": {"type": "media", "media_id": item["media_id"]}})).await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        photos.push(sent["sequence"].as_u64().unwrap());
    }
    let (_, pdf) = media
        .upload(&bob, "document", b"%PDF-1.4\n%%EOF".to_vec())
        .await;
    let (_, document) = send(&media, &chat, &bob, json!({"client_id": "d", "body": "the plan", "attachment": {"type": "media", "media_id": pdf["media_id"]}})).await;
    let (_, link) = send(
        &media,
        &chat,
        &bob,
        json!({"client_id": "l", "body": "see HTTPS://example.org/plan"}),
    )
    .await;
    let (_, last) = send(
        &media,
        &chat,
        &ann,
        json!({"client_id": "t", "body": "no address here: http:/x"}),
    )
    .await;
    let sequences = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["sequence"].as_u64().unwrap())
            .collect()
    };
    let newest = last["sequence"].as_u64().unwrap();
    let (status, page) = page_of(
        &media,
        &chat,
        &bob,
        &format!("shelf=media&limit=2&min_sequence={newest}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        sequences(&page),
        photos[1..],
        "the newest two, oldest first"
    );
    assert_eq!(page["has_more"], true);
    let (_, page) = page_of(
        &media,
        &chat,
        &bob,
        &format!("shelf=media&before={}", photos[1]),
    )
    .await;
    assert_eq!(sequences(&page), photos[..1]);
    assert_eq!(page["has_more"], false);
    let (_, page) = page_of(&media, &chat, &ann, "shelf=documents").await;
    assert_eq!(sequences(&page), [document["sequence"].as_u64().unwrap()]);
    assert_eq!(
        page["items"][0]["attachment"]["content_type"],
        "application/pdf"
    );
    let (_, page) = page_of(&media, &chat, &ann, "shelf=links").await;
    assert_eq!(sequences(&page), [link["sequence"].as_u64().unwrap()]);

    // A photo deleted for everyone leaves the shelf; one deleted for oneself leaves it
    // for that member only.
    let (status, _) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{}", photos[0]),
            &ann,
            None,
        )
        .await;
    assert!(status.is_success());
    let (status, _) = media
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/chats/{chat}/messages/{}?scope=me", photos[2]),
            &bob,
            None,
        )
        .await;
    assert!(status.is_success());
    common::eventually(
        std::time::Duration::from_secs(10),
        "the deletions are projected",
        || async {
            let (_, page) = page_of(&media, &chat, &bob, "shelf=media").await;
            sequences(&page) == photos[1..2]
        },
    )
    .await;
    let (_, page) = page_of(&media, &chat, &ann, "shelf=media").await;
    assert_eq!(sequences(&page), photos[1..]);

    // Outsiders see no shelf; an unknown shelf is a clear error.
    let (status, _) = page_of(&media, &chat, &cat, "shelf=media").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer = page_of(&media, &chat, &ann, "shelf=voice").await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "invalid_query");
}

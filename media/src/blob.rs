//! Where media bytes live: a directory (the default) or any S3-compatible service.
//! Keys are plain relative paths (`media/<owner>/<id>`, `uploads/<upload>/…`), checked
//! before use, written once and never changed; writes are whole (a temporary file renamed
//! into place, or one S3 PUT). S3 goes through aws-sdk-s3 with signed (SigV4), path-style
//! requests and a rustls client on ring (no aws-lc C build). Reads stream, whole or by
//! byte range; S3 also gives presigned GET URLs.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob under this key")]
    NotFound,
    #[error("{0:?} is not a usable blob key")]
    BadKey(String),
    #[error("filesystem: {0}")]
    Io(#[from] io::Error),
    #[error("S3: {0}")]
    S3(String),
}

/// Part of a blob: bytes `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(self) -> bool {
        false
    }
}

/// A blob, or part of one, as it streams out of the store.
pub struct Blob {
    /// The bytes this stream will yield.
    pub length: u64,
    pub body: BoxStream<'static, io::Result<Bytes>>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

/// An S3-compatible service's address and credentials.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Such as `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone)]
pub enum BlobStore {
    Fs {
        root: PathBuf,
    },
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
    },
}

impl BlobStore {
    /// A store in directory `root`, created if missing.
    pub async fn filesystem(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        Ok(Self::Fs { root })
    }

    /// A store in an S3 bucket, created if missing. Requests are signed (SigV4) with
    /// the given keys; paths are path-style, as S3-compatible services expect.
    pub async fn s3(config: S3Config) -> Result<Self, BlobError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region))
            .credentials_provider(Credentials::new(
                config.access_key,
                config.secret_key,
                None,
                None,
                "natter",
            ))
            .force_path_style(true)
            .http_client(http);
        if let Some(endpoint) = config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let client = aws_sdk_s3::Client::from_conf(builder.build());
        let bucket = config.bucket;
        if client.head_bucket().bucket(&bucket).send().await.is_err() {
            client
                .create_bucket()
                .bucket(&bucket)
                .send()
                .await
                .map_err(|e| s3_error(&e))?;
        }
        Ok(Self::S3 { client, bucket })
    }

    /// Stores the file at `path` under `key`, streaming it.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), BlobError> {
        self.put(key, Source::File(path), content_type).await
    }

    /// Stores `bytes` under `key`.
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), BlobError> {
        self.put(key, Source::Bytes(bytes), content_type).await
    }

    async fn put(
        &self,
        key: &str,
        source: Source<'_>,
        content_type: &str,
    ) -> Result<(), BlobError> {
        check_key(key)?;
        match self {
            Self::Fs { root } => {
                let target = root.join(key);
                let temporary = temporary_beside(&target);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                match source {
                    Source::File(path) => {
                        tokio::fs::copy(path, &temporary).await?;
                    }
                    Source::Bytes(bytes) => tokio::fs::write(&temporary, &bytes).await?,
                }
                tokio::fs::rename(&temporary, &target).await?;
                Ok(())
            }
            Self::S3 { client, bucket } => {
                let body = match source {
                    Source::File(path) => ByteStream::from_path(path)
                        .await
                        .map_err(|e| BlobError::S3(e.to_string()))?,
                    Source::Bytes(bytes) => ByteStream::from(bytes),
                };
                client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type(content_type)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| s3_error(&e))?;
                Ok(())
            }
        }
    }

    /// Streams the blob under `key`, or the part of it in `range` (which the caller has
    /// checked against the blob's size).
    pub async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Blob, BlobError> {
        check_key(key)?;
        match self {
            Self::Fs { root } => {
                let mut file = match tokio::fs::File::open(root.join(key)).await {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(BlobError::NotFound);
                    }
                    Err(e) => return Err(e.into()),
                };
                let size = file.metadata().await?.len();
                let range = range.unwrap_or(ByteRange {
                    start: 0,
                    end: size.saturating_sub(1),
                });
                if size == 0 {
                    return Ok(Blob {
                        length: 0,
                        body: futures::stream::empty().boxed(),
                    });
                }
                file.seek(io::SeekFrom::Start(range.start)).await?;
                let length = range.len().min(size.saturating_sub(range.start));
                Ok(Blob {
                    length,
                    body: ReaderStream::new(file.take(length)).boxed(),
                })
            }
            Self::S3 { client, bucket } => {
                let mut request = client.get_object().bucket(bucket).key(key);
                if let Some(range) = range {
                    request = request.range(format!("bytes={}-{}", range.start, range.end));
                }
                let output = request.send().await.map_err(|e| {
                    if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                        BlobError::NotFound
                    } else {
                        s3_error(&e)
                    }
                })?;
                let length = output
                    .content_length()
                    .and_then(|length| u64::try_from(length).ok())
                    .unwrap_or(0);
                let reader = output.body.into_async_read();
                Ok(Blob {
                    length,
                    body: ReaderStream::new(reader).boxed(),
                })
            }
        }
    }

    /// Deletes the blob under `key`; a missing one is no error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        check_key(key)?;
        match self {
            Self::Fs { root } => match tokio::fs::remove_file(root.join(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
            Self::S3 { client, bucket } => {
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| s3_error(&e))?;
                Ok(())
            }
        }
    }

    /// A URL that fetches the blob under `key` for `lifetime` with no other credentials,
    /// where the store can make one (S3); `None` for the filesystem. The store answers
    /// it with `disposition` as its `Content-Disposition`, if given.
    pub async fn presigned_get(
        &self,
        key: &str,
        lifetime: Duration,
        disposition: Option<&str>,
    ) -> Result<Option<String>, BlobError> {
        check_key(key)?;
        match self {
            Self::Fs { .. } => Ok(None),
            Self::S3 { client, bucket } => {
                let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(lifetime)
                    .map_err(|e| BlobError::S3(e.to_string()))?;
                let request = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_response_content_disposition(disposition.map(str::to_owned))
                    .presigned(config)
                    .await
                    .map_err(|e| s3_error(&e))?;
                Ok(Some(request.uri().to_owned()))
            }
        }
    }

    /// Which backend this is, for logs and benchmarks.
    pub fn describe(&self) -> String {
        match self {
            Self::Fs { root } => format!("filesystem at {}", root.display()),
            Self::S3 { bucket, .. } => format!("S3 bucket {bucket}"),
        }
    }
}

/// What a put writes: a file on disk, streamed, or bytes in memory.
enum Source<'a> {
    File(&'a Path),
    Bytes(Bytes),
}

fn s3_error(error: &dyn std::fmt::Display) -> BlobError {
    BlobError::S3(error.to_string())
}

/// A name beside `target` for writing before the rename into place.
fn temporary_beside(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.partial", std::process::id()));
    target.with_file_name(name)
}

/// Keys are relative paths of plain segments: nothing that could leave the store's
/// directory or mean something else to S3.
fn check_key(key: &str) -> Result<(), BlobError> {
    let plain = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if plain {
        Ok(())
    } else {
        Err(BlobError::BadKey(key.to_owned()))
    }
}

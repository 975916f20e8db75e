//! Media: the blob store media bytes live in (a directory or an S3-compatible service),
//! what an upload is by its bytes, and images made safe to serve. It depends on no other
//! Natter crate and knows nothing of HTTP, so the API, the benchmarks and background
//! workers (the collector of unreferenced uploads) share it.
//!
//! Invariants:
//! - A file's type is what its first bytes say (`sniff`), never what the client says.
//! - An image is decoded only under `ImageLimits`, checked before the decoder allocates,
//!   and served only re-encoded, without its metadata (`image`).
//! - Reading a file (`sniff`, `inspect`) takes bounded memory whatever the file claims.
//! - Blob keys are checked plain relative paths: no key reaches outside the store.

pub mod blob;
pub mod image;
pub mod inspect;
pub mod sniff;

pub use blob::{Blob, BlobError, BlobStore, ByteRange, S3Config};
pub use image::{ImageError, ImageLimits, ProcessedImage};
pub use inspect::{Inspected, inspect};
pub use sniff::{Format, Kind, sniff};

//! Media: the blob store media bytes live in (a directory or an S3-compatible service),
//! what an upload is by its bytes, and images made safe to serve.

pub mod blob;
pub mod image;
pub mod inspect;
pub mod sniff;

pub use blob::{Blob, BlobError, BlobStore, ByteRange, S3Config};
pub use image::{ImageError, ImageLimits, ProcessedImage};
pub use inspect::{Inspected, inspect};
pub use sniff::{Format, Kind, sniff};

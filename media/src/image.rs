//! Images: decoded under explicit limits (a decompression bomb is refused, not decoded),
//! re-encoded without their metadata (EXIF, GPS, comments), with a thumbnail and a small
//! blurred placeholder.
//!
//! `ImageLimits` bound the sides, the bytes the decoder allocates and the frames; the
//! decoder checks them before allocating. Every image is decoded whole. A JPEG that needs
//! no turning is then rewritten without its metadata losslessly (`jpeg::strip`); any
//! other image is turned upright as its EXIF orientation says and re-encoded in its own
//! format (JPEG, PNG, lossless WebP, GIF frame by frame). The thumbnail is a JPEG, and
//! the placeholder 16 pixels on its longest side, made from the thumbnail. JPEGs are
//! written by `jpeg-encoder` (SIMD): in `image`'s own encoder, re-encoding every upload,
//! an upload spent about two thirds of its time (issue 18).

use std::io::Cursor;

use base64::Engine as _;
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::sniff::Format;

mod jpeg;

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The longest side of the blurred placeholder.
const PLACEHOLDER_SIDE: u32 = 16;

/// What an image may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// Bytes the decoder may allocate, all frames of an animation together.
    pub max_alloc: u64,
    pub max_frames: usize,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_width: 12_000,
            max_height: 12_000,
            max_alloc: 256 * 1024 * 1024,
            max_frames: 500,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image is larger than allowed: {0}")]
    TooLarge(String),
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("encoding failed: {0}")]
    Encode(String),
}

/// An image made safe to serve.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    /// The image re-encoded in its own format, without metadata.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// A JPEG at most `THUMBNAIL_SIDE` pixels on its longer side (the first frame of an
    /// animation).
    pub thumbnail: Vec<u8>,
    /// A tiny blurred JPEG as a `data:` URL, to show while the image loads.
    pub placeholder: String,
}

/// Decodes, checks and re-encodes an image of `format`. CPU-bound: call it off the
/// async runtime.
pub fn process(
    bytes: &[u8],
    format: Format,
    limits: ImageLimits,
) -> Result<ProcessedImage, ImageError> {
    let (first, bytes) = match format {
        Format::Gif => reencode_gif(bytes, limits)?,
        Format::Jpeg | Format::Png | Format::WebP => {
            let (mut image, orientation) = decode(bytes, format, limits)?;
            let upright = orientation == Orientation::NoTransforms;
            match (upright && format == Format::Jpeg)
                .then(|| jpeg::strip(bytes))
                .flatten()
            {
                Some(stripped) => (image, stripped),
                None => {
                    image.apply_orientation(orientation);
                    let bytes = encode(&image, format)?;
                    (image, bytes)
                }
            }
        }
        other => {
            return Err(ImageError::Undecodable(format!(
                "{} is not an image",
                other.content_type()
            )));
        }
    };
    let small = first.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let thumbnail = jpeg(&small, 80)?;
    let tiny = small
        .thumbnail(PLACEHOLDER_SIDE, PLACEHOLDER_SIDE)
        .blur(1.0);
    let placeholder = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg(&tiny, 50)?)
    );
    Ok(ProcessedImage {
        bytes,
        width: first.width(),
        height: first.height(),
        thumbnail,
        placeholder,
    })
}

fn image_limits(limits: ImageLimits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc);
    image_limits
}

/// The image's pixels as stored, and how its metadata says to turn them upright.
fn decode(
    bytes: &[u8],
    format: Format,
    limits: ImageLimits,
) -> Result<(DynamicImage, Orientation), ImageError> {
    let image_format = match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::WebP => ImageFormat::WebP,
        _ => ImageFormat::Gif,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(image_limits(limits));
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // `ImageReader::decode` makes this check itself; a decoder taken out of it does not.
    if decoder.total_bytes() > limits.max_alloc {
        return Err(ImageError::TooLarge(format!(
            "{} bytes of pixels, over {}",
            decoder.total_bytes(),
            limits.max_alloc
        )));
    }
    let image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    Ok((image, orientation))
}

fn decode_error(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(limit) => ImageError::TooLarge(limit.to_string()),
        other => ImageError::Undecodable(other.to_string()),
    }
}

/// The frames of a GIF, re-encoded (which drops its comment and application
/// extensions), and its first frame. Frames and their pixels count against the limits
/// together, since each is held until all are written.
fn reencode_gif(bytes: &[u8], limits: ImageLimits) -> Result<(DynamicImage, Vec<u8>), ImageError> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(decode_error)?;
    decoder
        .set_limits(image_limits(limits))
        .map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    let frame_bytes = u64::from(width) * u64::from(height) * 4;
    let mut out = Vec::new();
    let mut first = None;
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| ImageError::Encode(e.to_string()))?;
        for (n, frame) in decoder.into_frames().enumerate() {
            if n >= limits.max_frames || frame_bytes * (n as u64 + 1) > limits.max_alloc {
                return Err(ImageError::TooLarge(format!(
                    "an animation of more than {} frames or {} bytes",
                    limits.max_frames, limits.max_alloc
                )));
            }
            let frame = frame.map_err(decode_error)?;
            if first.is_none() {
                first = Some(DynamicImage::ImageRgba8(frame.buffer().clone()));
            }
            encoder
                .encode_frame(frame)
                .map_err(|e| ImageError::Encode(e.to_string()))?;
        }
    }
    let first = first.ok_or_else(|| ImageError::Undecodable("a GIF without frames".into()))?;
    Ok((first, out))
}

fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let written = match format {
        Format::Jpeg => return jpeg(image, 90),
        Format::Png => image.write_with_encoder(PngEncoder::new(&mut out)),
        _ => image
            .to_rgba8()
            .write_with_encoder(WebPEncoder::new_lossless(&mut out)),
    };
    written.map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}

/// The image as a baseline JPEG of `quality`; any alpha is dropped.
fn jpeg(image: &DynamicImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    use jpeg_encoder::ColorType;
    let converted;
    let (pixels, color) = match image {
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), ColorType::Rgb),
        DynamicImage::ImageRgba8(rgba) => (rgba.as_raw(), ColorType::Rgba),
        DynamicImage::ImageLuma8(luma) => (luma.as_raw(), ColorType::Luma),
        other => {
            converted = other.to_rgb8();
            (converted.as_raw(), ColorType::Rgb)
        }
    };
    let side = |n: u32| {
        u16::try_from(n).map_err(|_| ImageError::TooLarge(format!("a side of {n} pixels")))
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(pixels, side(image.width())?, side(image.height())?, color)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}

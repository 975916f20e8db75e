//! MP4 (ISO base media): `moov/mvhd` for the duration, `moov/trak/tkhd` of the first video
//! track (`moov/trak/mdia/hdlr` handler `vide`) for the frame size. Only the bodies of
//! these boxes are read; every other box is skipped by its size.

use std::io;
use std::path::Path;

use super::{Inspected, Source, be_u32, be_u64, malformed};

/// Fills in the duration and frame size, wherever `moov` lies in the file.
pub(super) fn read(path: &Path, found: &mut Inspected) -> io::Result<()> {
    let mut source = Source::open(path)?;
    let length = source.length();
    while let Some((kind, body)) = box_header(&mut source, length)? {
        let end = source.position() + body;
        if &kind == b"moov" {
            return moov(&mut source, end, found);
        }
        source.seek_to(end)?;
    }
    Ok(())
}

/// Reads a box header at the source's position, in a parent that ends at `end`: its type
/// and the size of its body, which lies within the parent. `None` when fewer bytes than a
/// header are left of the parent.
fn box_header(source: &mut Source, end: u64) -> io::Result<Option<([u8; 4], u64)>> {
    let left = end.saturating_sub(source.position());
    if left < 8 {
        return Ok(None);
    }
    source.step()?;
    let mut header = [0u8; 8];
    source.read_exact(&mut header)?;
    let [s0, s1, s2, s3, k0, k1, k2, k3] = header;
    let size = u64::from(u32::from_be_bytes([s0, s1, s2, s3]));
    let body = match size {
        // The box runs to the end of its parent.
        0 => left - 8,
        1 => {
            let mut large = [0u8; 8];
            source.read_exact(&mut large)?;
            match u64::from_be_bytes(large) {
                large if (16..=left).contains(&large) => large - 16,
                _ => return Err(malformed()),
            }
        }
        size if (8..=left).contains(&size) => size - 8,
        _ => return Err(malformed()),
    };
    Ok(Some(([k0, k1, k2, k3], body)))
}

fn moov(source: &mut Source, end: u64, found: &mut Inspected) -> io::Result<()> {
    while let Some((kind, body)) = box_header(source, end)? {
        let body_end = source.position() + body;
        match &kind {
            b"mvhd" => found.duration_ms = mvhd(source, body)?,
            b"trak" if found.width.is_none() => {
                if let Some(size) = trak(source, body_end)? {
                    found.set_size(size);
                }
            }
            _ => {}
        }
        source.seek_to(body_end)?;
    }
    Ok(())
}

/// The movie's duration, in milliseconds, from the movie header's body.
fn mvhd(source: &mut Source, body: u64) -> io::Result<Option<u64>> {
    let [version, ..] = fields::<4>(source, body)?;
    // Creation and modification times, time scale, duration: all but the time scale are
    // 64 bits wide in version 1.
    let (timescale, duration) = match version {
        0 => {
            let fields = fields::<16>(source, body - 4)?;
            (be_u32(&fields, 8), be_u32(&fields, 12).map(u64::from))
        }
        1 => {
            let fields = fields::<28>(source, body - 4)?;
            (be_u32(&fields, 16), be_u64(&fields, 20))
        }
        _ => return Ok(None),
    };
    Ok(timescale
        .zip(duration)
        .filter(|&(timescale, _)| timescale > 0)
        .map(|(timescale, duration)| duration.saturating_mul(1000) / u64::from(timescale)))
}

/// The track's frame size, if it is a video track and its header gives one.
fn trak(source: &mut Source, end: u64) -> io::Result<Option<(u32, u32)>> {
    let mut size = None;
    let mut video = false;
    while let Some((kind, body)) = box_header(source, end)? {
        let body_end = source.position() + body;
        match &kind {
            b"tkhd" => size = tkhd(source, body)?,
            b"mdia" => video = mdia_is_video(source, body_end)?,
            _ => {}
        }
        source.seek_to(body_end)?;
    }
    Ok(size.filter(|_| video))
}

/// The width and height at the end of a track header (16.16 fixed point, after fields
/// of which some are wider in version 1), as shown: swapped where the header's matrix
/// turns the picture a quarter (a phone's portrait video).
fn tkhd(source: &mut Source, body: u64) -> io::Result<Option<(u32, u32)>> {
    let [version, ..] = fields::<4>(source, body)?;
    let (matrix, width, height) = match version {
        0 => {
            let fields = fields::<80>(source, body - 4)?;
            (
                be_u32(&fields, 36).zip(be_u32(&fields, 40)),
                be_u32(&fields, 72),
                be_u32(&fields, 76),
            )
        }
        1 => {
            let fields = fields::<92>(source, body - 4)?;
            (
                be_u32(&fields, 48).zip(be_u32(&fields, 52)),
                be_u32(&fields, 84),
                be_u32(&fields, 88),
            )
        }
        _ => return Ok(None),
    };
    let quarter_turn = matrix.is_some_and(|(a, b)| a == 0 && b != 0);
    Ok(width
        .zip(height)
        .map(|(width, height)| (width >> 16, height >> 16))
        .map(|(width, height)| {
            if quarter_turn {
                (height, width)
            } else {
                (width, height)
            }
        })
        .filter(|&(width, height)| width > 0 && height > 0))
}

/// Whether the media's handler is video.
fn mdia_is_video(source: &mut Source, end: u64) -> io::Result<bool> {
    while let Some((kind, body)) = box_header(source, end)? {
        let body_end = source.position() + body;
        if &kind == b"hdlr" {
            // Version and flags, pre-defined, handler type.
            let fields = fields::<12>(source, body)?;
            return Ok(matches!(fields.get(8..12), Some(b"vide")));
        }
        source.seek_to(body_end)?;
    }
    Ok(false)
}

/// The next `N` bytes, which must lie within the `left` bytes of the box body.
fn fields<const N: usize>(source: &mut Source, left: u64) -> io::Result<[u8; N]> {
    if left < N as u64 {
        return Err(malformed());
    }
    let mut fields = [0u8; N];
    source.read_exact(&mut fields)?;
    Ok(fields)
}

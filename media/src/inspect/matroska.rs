//! WebM and Matroska: EBML elements. The duration is `Segment/Info/Duration` in
//! `Segment/Info/TimecodeScale` units; the frame size is `PixelWidth` and `PixelHeight` of
//! the first `Segment/Tracks/TrackEntry/Video`. Every other element is skipped by its
//! size, and the walk ends once both `Info` and `Tracks` were read.
//!
//! A file written as it was recorded (a browser's MediaRecorder) has no `Duration`: its
//! clusters are walked instead, and the duration is where the last block starts
//! (`Cluster/Timecode` plus the block's own timecode), as far as the walk's bound of
//! elements reaches.

use std::io;
use std::path::Path;

use super::{Inspected, Source, malformed};

const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMECODE: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;

/// Nanoseconds, when `Info` does not say.
const DEFAULT_TIMECODE_SCALE: u64 = 1_000_000;

/// An element whose header was read: its body starts at the source's position.
#[derive(Debug, Clone, Copy)]
struct Element {
    id: u32,
    /// `None` for an unknown size: the element ends where something that cannot be in it
    /// starts.
    size: Option<u64>,
}

impl Element {
    fn known_size(self) -> io::Result<u64> {
        self.size.ok_or_else(malformed)
    }
}

/// Fills in the duration and frame size from the first segment.
pub(super) fn read(path: &Path, found: &mut Inspected) -> io::Result<()> {
    let mut source = Source::open(path)?;
    let length = source.length();
    // The EBML header, then the segment.
    while let Some(element) = element(&mut source, length)? {
        if element.id == SEGMENT {
            let end = match element.size {
                Some(size) => source.position() + size,
                None => length,
            };
            return segment(&mut source, end, found);
        }
        source.skip(element.known_size()?)?;
    }
    Ok(())
}

/// Reads the header of the element at the source's position, in a parent that ends at
/// `end`; its body lies within the parent. `None` at `end`.
fn element(source: &mut Source, end: u64) -> io::Result<Option<Element>> {
    if source.position() >= end {
        return Ok(None);
    }
    source.step()?;
    let id = id(source)?;
    let size = vint(source)?;
    let left = end.checked_sub(source.position()).ok_or_else(malformed)?;
    match size {
        Some(size) if size > left => Err(malformed()),
        size => Ok(Some(Element { id, size })),
    }
}

/// An element ID: one to four bytes, their count told by the first byte's leading zeros,
/// kept with its length marker as the specification writes IDs.
fn id(source: &mut Source) -> io::Result<u32> {
    let first = source.byte()?;
    let len = first.leading_zeros() + 1;
    if len > 4 {
        return Err(malformed());
    }
    let mut id = u32::from(first);
    for _ in 1..len {
        id = id << 8 | u32::from(source.byte()?);
    }
    Ok(id)
}

/// An element size: one to eight bytes, their count told by the first byte's leading
/// zeros, without its length marker. All value bits set means an unknown size: `None`.
fn vint(source: &mut Source) -> io::Result<Option<u64>> {
    let first = source.byte()?;
    let len = first.leading_zeros() + 1;
    if len > 8 {
        return Err(malformed());
    }
    let mut value = u64::from(first) & (0xFF >> len);
    for _ in 1..len {
        value = value << 8 | u64::from(source.byte()?);
    }
    let unknown = (1u64 << (7 * len)) - 1;
    Ok((value != unknown).then_some(value))
}

/// Where the walk of a recording's clusters has got: the current cluster's timecode, and
/// the latest block start seen, in timecode units.
#[derive(Debug, Default)]
struct Blocks {
    cluster: u64,
    latest: Option<u64>,
}

impl Blocks {
    /// Reads a block's header (track number, then its timecode relative to the cluster).
    fn block(&mut self, source: &mut Source, size: u64) -> io::Result<()> {
        let start = source.position();
        vint(source)?.ok_or_else(malformed)?;
        let relative = i16::from_be_bytes([source.byte()?, source.byte()?]);
        let at = self.cluster.saturating_add_signed(i64::from(relative));
        self.latest = Some(self.latest.map_or(at, |latest| latest.max(at)));
        let read = source.position() - start;
        source.skip(size.checked_sub(read).ok_or_else(malformed)?)
    }

    /// The children of a `Cluster` or `BlockGroup` of known size.
    fn children(&mut self, source: &mut Source, size: u64) -> io::Result<()> {
        let end = source.position() + size;
        while let Some(child) = element(source, end)? {
            self.child(source, child)?;
        }
        Ok(())
    }

    /// One element met while walking clusters: the parts that time blocks are read, the
    /// rest skipped.
    fn child(&mut self, source: &mut Source, child: Element) -> io::Result<()> {
        let size = child.known_size()?;
        match child.id {
            CLUSTER_TIMECODE => self.cluster = uint(source, size)?,
            SIMPLE_BLOCK | BLOCK => self.block(source, size)?,
            CLUSTER | BLOCK_GROUP => self.children(source, size)?,
            _ => source.skip(size)?,
        }
        Ok(())
    }
}

/// Reads the segment's children up to `end` until both `Info` and `Tracks` were read, and
/// on through the clusters when `Info` had no duration.
fn segment(source: &mut Source, end: u64, found: &mut Inspected) -> io::Result<()> {
    let (mut info, mut tracks) = (false, false);
    let mut scale = DEFAULT_TIMECODE_SCALE;
    let mut blocks = Blocks::default();
    let walked = loop {
        if info && tracks && found.duration_ms.is_some() {
            break Ok(());
        }
        let child = match element(source, end) {
            Ok(Some(child)) => child,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        let read = match (child.id, child.size) {
            (INFO, Some(size)) => info_duration(source, size).map(|(duration, read_scale)| {
                found.duration_ms = duration;
                scale = read_scale;
                info = true;
            }),
            (TRACKS, Some(size)) => tracks_frame_size(source, size).map(|size| {
                if let Some(size) = size {
                    found.set_size(size);
                }
                tracks = true;
            }),
            // A cluster of unknown size ends where an element that cannot be in it starts:
            // reading on through its children, each taken as the segment's, finds that.
            (CLUSTER, None) => Ok(()),
            (CLUSTER | CLUSTER_TIMECODE | SIMPLE_BLOCK | BLOCK_GROUP, Some(_)) if info => {
                blocks.child(source, child)
            }
            (_, Some(size)) => source.skip(size),
            (_, None) => Err(malformed()),
        };
        if let Err(error) = read {
            break Err(error);
        }
    };
    // A recording's duration is where its last block starts, as far as the walk got.
    if found.duration_ms.is_none()
        && let Some(latest) = blocks.latest
    {
        found.duration_ms = Some(latest.saturating_mul(scale) / 1_000_000);
    }
    walked
}

/// The duration in milliseconds, if `Info` gives one, and the timecode scale, from the
/// body of `Info`.
fn info_duration(source: &mut Source, size: u64) -> io::Result<(Option<u64>, u64)> {
    let end = source.position() + size;
    let mut scale = DEFAULT_TIMECODE_SCALE;
    let mut duration = None;
    while let Some(child) = element(source, end)? {
        let size = child.known_size()?;
        match child.id {
            TIMECODE_SCALE => scale = uint(source, size)?,
            DURATION => duration = Some(float(source, size)?),
            _ => source.skip(size)?,
        }
    }
    // Timecode scale nanoseconds each, a million to the millisecond.
    let ms = duration.map(|duration| (duration * scale as f64 / 1e6).round());
    let ms = ms
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms < u64::MAX as f64)
        .filter(|_| scale > 0)
        .map(|ms| ms as u64);
    Ok((ms, scale))
}

/// The frame size of the first track with video, from the body of `Tracks`.
fn tracks_frame_size(source: &mut Source, size: u64) -> io::Result<Option<(u32, u32)>> {
    let end = source.position() + size;
    let mut frame_size = None;
    while let Some(child) = element(source, end)? {
        let size = child.known_size()?;
        if child.id == TRACK_ENTRY && frame_size.is_none() {
            frame_size = track_frame_size(source, size)?;
        } else {
            source.skip(size)?;
        }
    }
    Ok(frame_size)
}

/// The frame size from the body of a `TrackEntry`, if it has `Video`.
fn track_frame_size(source: &mut Source, size: u64) -> io::Result<Option<(u32, u32)>> {
    let end = source.position() + size;
    let mut frame_size = None;
    while let Some(child) = element(source, end)? {
        let size = child.known_size()?;
        if child.id == VIDEO {
            frame_size = video_frame_size(source, size)?;
        } else {
            source.skip(size)?;
        }
    }
    Ok(frame_size)
}

/// The frame size from the body of `Video`.
fn video_frame_size(source: &mut Source, size: u64) -> io::Result<Option<(u32, u32)>> {
    let end = source.position() + size;
    let (mut width, mut height) = (None, None);
    while let Some(child) = element(source, end)? {
        let size = child.known_size()?;
        match child.id {
            PIXEL_WIDTH => width = u32::try_from(uint(source, size)?).ok(),
            PIXEL_HEIGHT => height = u32::try_from(uint(source, size)?).ok(),
            _ => source.skip(size)?,
        }
    }
    Ok(width
        .zip(height)
        .filter(|&(width, height)| width > 0 && height > 0))
}

/// An unsigned integer body: big-endian, at most eight bytes.
fn uint(source: &mut Source, size: u64) -> io::Result<u64> {
    if size > 8 {
        return Err(malformed());
    }
    let mut value = 0;
    for _ in 0..size {
        value = value << 8 | u64::from(source.byte()?);
    }
    Ok(value)
}

/// A float body: big-endian, of four or eight bytes (or none, for zero).
fn float(source: &mut Source, size: u64) -> io::Result<f64> {
    match size {
        0 => Ok(0.0),
        4 => {
            let mut bytes = [0u8; 4];
            source.read_exact(&mut bytes)?;
            Ok(f64::from(f32::from_be_bytes(bytes)))
        }
        8 => {
            let mut bytes = [0u8; 8];
            source.read_exact(&mut bytes)?;
            Ok(f64::from_be_bytes(bytes))
        }
        _ => Err(malformed()),
    }
}

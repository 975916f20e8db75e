//! MP3 (MPEG-1, 2 and 2.5 audio, layers I to III): the duration, from the frame count of a
//! Xing/Info or VBRI header in the first frame, or else by walking the frame headers of
//! the whole file. ID3v2 tags at the start are skipped.

use std::io;
use std::path::Path;

use super::{Source, be_u32, samples_to_ms};

/// How far past the ID3v2 tags the first frame is looked for.
const SEARCH_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    One,
    Two,
    Three,
}

/// Kilobits per second by bit rate index, for MPEG-1 layers I, II, III, then MPEG-2 and
/// 2.5 layer I, then layers II and III. Index 0 (free format) and 15 are not allowed.
const BITRATES: [[u32; 16]; 5] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0,
    ],
    [
        0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0,
    ],
];

/// What a frame header says.
#[derive(Debug, Clone, Copy)]
struct Frame {
    version: Version,
    layer: Layer,
    sample_rate: u32,
    mono: bool,
    /// The frame's length in bytes, its header included.
    length: u32,
    samples: u32,
}

impl Frame {
    fn parse(header: [u8; 4]) -> Option<Self> {
        let [sync, b1, b2, b3] = header;
        if sync != 0xFF || b1 & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b1 >> 3) & 3 {
            0 => Version::Mpeg25,
            2 => Version::Mpeg2,
            3 => Version::Mpeg1,
            _ => return None,
        };
        let layer = match (b1 >> 1) & 3 {
            1 => Layer::Three,
            2 => Layer::Two,
            3 => Layer::One,
            _ => return None,
        };
        let row = match (version, layer) {
            (Version::Mpeg1, Layer::One) => 0,
            (Version::Mpeg1, Layer::Two) => 1,
            (Version::Mpeg1, Layer::Three) => 2,
            (_, Layer::One) => 3,
            (_, Layer::Two | Layer::Three) => 4,
        };
        let kbps = BITRATES
            .get(row)?
            .get(usize::from(b2 >> 4))
            .copied()
            .filter(|&kbps| kbps > 0)?;
        let sample_rates: [u32; 3] = match version {
            Version::Mpeg1 => [44_100, 48_000, 32_000],
            Version::Mpeg2 => [22_050, 24_000, 16_000],
            Version::Mpeg25 => [11_025, 12_000, 8_000],
        };
        let sample_rate = *sample_rates.get(usize::from((b2 >> 2) & 3))?;
        let padding = u32::from((b2 >> 1) & 1);
        let bitrate = kbps * 1000;
        // Layer I counts in slots of four bytes.
        let (samples, length) = match (version, layer) {
            (_, Layer::One) => (384, (12 * bitrate / sample_rate + padding) * 4),
            (_, Layer::Two) | (Version::Mpeg1, Layer::Three) => {
                (1152, 144 * bitrate / sample_rate + padding)
            }
            (_, Layer::Three) => (576, 72 * bitrate / sample_rate + padding),
        };
        Some(Self {
            version,
            layer,
            sample_rate,
            mono: b3 >> 6 == 3,
            length,
            samples,
        })
    }

    /// Whether `other` can follow this frame in one stream.
    fn same_stream(&self, other: &Self) -> bool {
        (self.version, self.layer, self.sample_rate)
            == (other.version, other.layer, other.sample_rate)
    }
}

/// What the first frame says of the stream, besides its sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VbrHeader {
    Absent,
    /// The stream's frame count, the header's frame excluded.
    Frames(u32),
    /// A header without a frame count: its frame carries no sound.
    NoFrameCount,
}

/// The duration in milliseconds of the MP3 file at `path`.
pub(super) fn duration(path: &Path) -> io::Result<Option<u64>> {
    let mut source = Source::open(path)?;
    skip_id3v2(&mut source)?;
    let Some(first) = first_frame(&mut source)? else {
        return Ok(None);
    };
    let start = source.position();
    let mut head = [0u8; 64];
    let read = source.read_up_to(&mut head)?;
    let in_frame = read.min(first.length as usize);
    let samples = match vbr_header(first, head.get(..in_frame).unwrap_or_default()) {
        VbrHeader::Frames(frames) => u64::from(frames) * u64::from(first.samples),
        VbrHeader::NoFrameCount => {
            source.seek_to(start + u64::from(first.length))?;
            walk(&mut source, first)?
        }
        VbrHeader::Absent => {
            source.seek_to(start)?;
            walk(&mut source, first)?
        }
    };
    Ok(samples_to_ms(samples, first.sample_rate))
}

/// Skips the ID3v2 tags at the source's position: a ten-byte header, a body whose size is
/// written seven bits a byte, and a ten-byte footer if the header's flags say so.
fn skip_id3v2(source: &mut Source) -> io::Result<()> {
    loop {
        let at = source.position();
        let mut header = [0u8; 10];
        let read = source.read_up_to(&mut header)?;
        let [i, d, three, _major, _revision, flags, s0, s1, s2, s3] = header;
        if read < header.len() || [i, d, three] != *b"ID3" {
            return source.seek_to(at);
        }
        let size = [s0, s1, s2, s3]
            .into_iter()
            .fold(0u64, |size, byte| size << 7 | u64::from(byte & 0x7F));
        let footer = if flags & 0x10 != 0 { 10 } else { 0 };
        source.skip(size + footer)?;
    }
}

/// Finds the first frame and leaves the source at its start. A frame right at the
/// source's position is taken as it is; one further on, past bytes the tags did not
/// count, only if another frame of its stream follows it or the file ends with it.
fn first_frame(source: &mut Source) -> io::Result<Option<Frame>> {
    let start = source.position();
    let mut window = vec![0u8; SEARCH_LEN];
    let filled = source.read_up_to(&mut window)?;
    let window = window.get(..filled).unwrap_or_default();
    let frame_at = |at: usize| {
        let header = window.get(at..at.checked_add(4)?)?;
        Frame::parse(header.try_into().ok()?)
    };
    if let Some(frame) = frame_at(0) {
        source.seek_to(start)?;
        return Ok(Some(frame));
    }
    for at in 1..filled {
        let Some(frame) = frame_at(at) else {
            continue;
        };
        let next = at + frame.length as usize;
        let followed = frame_at(next).is_some_and(|next| next.same_stream(&frame));
        let ends_file = start + next as u64 == source.length();
        if followed || ends_file {
            source.seek_to(start + at as u64)?;
            return Ok(Some(frame));
        }
    }
    Ok(None)
}

/// Looks for a Xing (or Info) header after the side information of a layer III frame, or
/// a VBRI header 32 bytes after the frame header, in `head`, the first bytes of `frame`.
fn vbr_header(frame: Frame, head: &[u8]) -> VbrHeader {
    if frame.layer != Layer::Three {
        return VbrHeader::Absent;
    }
    let side_info = match (frame.version, frame.mono) {
        (Version::Mpeg1, false) => 32,
        (Version::Mpeg1, true) | (_, false) => 17,
        (_, true) => 9,
    };
    let xing = 4 + side_info;
    let frames = if matches!(head.get(xing..xing + 4), Some(b"Xing" | b"Info")) {
        // Flags, then the frame count if the first flag is set.
        be_u32(head, xing + 4)
            .filter(|flags| flags & 1 == 1)
            .and_then(|_| be_u32(head, xing + 8))
    } else if matches!(head.get(36..40), Some(b"VBRI")) {
        // Version, delay and quality, two bytes each; the byte count; the frame count.
        be_u32(head, 50)
    } else {
        return VbrHeader::Absent;
    };
    frames
        .filter(|&frames| frames > 0)
        .map_or(VbrHeader::NoFrameCount, VbrHeader::Frames)
}

/// Sums the samples of the frames from the source's position, up to the first that is
/// not a frame of `first`'s stream (an ID3v1 tag, say) or that the file cuts short.
fn walk(source: &mut Source, first: Frame) -> io::Result<u64> {
    let mut samples = 0u64;
    loop {
        let mut header = [0u8; 4];
        if source.read_up_to(&mut header)? < header.len() {
            break;
        }
        let Some(frame) = Frame::parse(header).filter(|frame| frame.same_stream(&first)) else {
            break;
        };
        let body = u64::from(frame.length.saturating_sub(4));
        if body > source.left() {
            break;
        }
        source.skip(body)?;
        samples += u64::from(frame.samples);
    }
    Ok(samples)
}

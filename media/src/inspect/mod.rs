//! What can be learnt of a sound, video or document cheaply, by streaming through its file
//! in bounded memory:
//!
//! - MP4: the duration from `moov/mvhd`; the frame size from the `tkhd` of the first
//!   track whose `mdia/hdlr` says `vide`.
//! - WebM (Matroska): the duration from `Segment/Info` (`Duration` in `TimecodeScale`
//!   units); the frame size from the first `Segment/Tracks/TrackEntry/Video`
//!   (`PixelWidth`, `PixelHeight`). Only element headers are read on the way there.
//! - MP3: the duration from a Xing/Info or VBRI header in the first frame, or else from
//!   walking every frame header after any ID3v2 tag.
//! - AAC (a raw ADTS stream): the duration from walking every frame header.
//! - Ogg (Opus, Vorbis): the duration from the last page's granule position.
//! - PDF: the page count.
//!
//! Anything else, or anything malformed, is `None`: the file is still stored and served.
//! A value is kept once the box or element holding it was read whole, even if the file
//! breaks further on. Every size read from a file is checked against what is left of its
//! parent before anything is read or skipped, so a hostile file can neither make the
//! inspection allocate by what it claims nor read past it. MP4 and WebM walks look at
//! 16,384 boxes or elements at most (a few hundred KiB of headers); MP3 and AAC walks go
//! through every frame header, each frame's body skipped by a seek.

mod aac;
mod matroska;
mod mp3;
mod mp4;
mod ogg;
mod pdf;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::sniff::Format;

/// What inspection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inspected {
    pub duration_ms: Option<u64>,
    pub pages: Option<u32>,
    /// The video frame's width, in pixels.
    pub width: Option<u32>,
    /// The video frame's height, in pixels.
    pub height: Option<u32>,
}

impl Inspected {
    fn with_duration(duration_ms: Option<u64>) -> Self {
        Self {
            duration_ms,
            ..Self::default()
        }
    }

    fn set_size(&mut self, (width, height): (u32, u32)) {
        self.width = Some(width);
        self.height = Some(height);
    }
}

/// Inspects the file at `path`, of `format`. Blocking: call it off the async runtime.
pub fn inspect(path: &Path, format: Format) -> Inspected {
    match format {
        Format::Mp4 => walked(|found| mp4::read(path, found)),
        Format::WebM => walked(|found| matroska::read(path, found)),
        Format::Mp3 => Inspected::with_duration(mp3::duration(path).ok().flatten()),
        Format::Aac => Inspected::with_duration(aac::duration(path).ok().flatten()),
        Format::Ogg => Inspected::with_duration(ogg::duration(path).ok().flatten()),
        Format::Pdf => Inspected {
            pages: pdf::pages(path).ok().flatten(),
            ..Inspected::default()
        },
        Format::Jpeg
        | Format::Png
        | Format::Gif
        | Format::WebP
        | Format::OfficeZip
        | Format::OfficeOle => Inspected::default(),
    }
}

/// Runs a walk that fills in what it finds as it goes. An error ends the walk, and what
/// was found before it stands.
fn walked(walk: impl FnOnce(&mut Inspected) -> io::Result<()>) -> Inspected {
    let mut found = Inspected::default();
    let _ended_early = walk(&mut found);
    found
}

/// At most this many boxes or elements are looked at in one file: a real file needs a few
/// dozen, and a hostile file of tiny ones cannot make the walk long.
const MAX_STEPS: u32 = 16_384;

/// A file read forwards through a buffer. It knows where it is and how long the file is,
/// so that sizes read from the file can be checked against what is left, and it skips
/// with a seek rather than a read.
#[derive(Debug)]
struct Source {
    reader: BufReader<File>,
    at: u64,
    length: u64,
    steps: u32,
}

impl Source {
    fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let length = file.metadata()?.len();
        Ok(Self {
            reader: BufReader::new(file),
            at: 0,
            length,
            steps: MAX_STEPS,
        })
    }

    fn position(&self) -> u64 {
        self.at
    }

    fn length(&self) -> u64 {
        self.length
    }

    fn left(&self) -> u64 {
        self.length.saturating_sub(self.at)
    }

    fn read_exact(&mut self, buffer: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact(buffer)?;
        self.at += buffer.len() as u64;
        Ok(())
    }

    /// Fills as much of `buffer` as the file has left; says how much that was.
    fn read_up_to(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while let Some(rest) = buffer.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            match self.reader.read(rest) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.at += filled as u64;
        Ok(filled)
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut byte = [0u8];
        self.read_exact(&mut byte)?;
        Ok(byte[0])
    }

    /// Moves to `to`, which must lie within the file. A short move stays in the buffer.
    fn seek_to(&mut self, to: u64) -> io::Result<()> {
        if to > self.length {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let offset = i64::try_from(to)
            .ok()
            .zip(i64::try_from(self.at).ok())
            .map(|(to, at)| to - at)
            .ok_or_else(malformed)?;
        self.reader.seek_relative(offset)?;
        self.at = to;
        Ok(())
    }

    fn skip(&mut self, count: u64) -> io::Result<()> {
        self.seek_to(self.at.checked_add(count).ok_or_else(malformed)?)
    }

    /// Counts one more box or element looked at; an error once there were too many.
    fn step(&mut self) -> io::Result<()> {
        self.steps = self
            .steps
            .checked_sub(1)
            .ok_or_else(|| io::Error::other("too many boxes or elements"))?;
        Ok(())
    }
}

fn malformed() -> io::Error {
    io::ErrorKind::InvalidData.into()
}

/// The big-endian `u32` at `at` in `bytes`, if `bytes` holds it.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(field.try_into().ok()?))
}

/// The big-endian `u64` at `at` in `bytes`, if `bytes` holds it.
fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(field.try_into().ok()?))
}

/// `samples` at `rate` per second, in milliseconds; `None` for nothing or no rate.
fn samples_to_ms(samples: u64, rate: u32) -> Option<u64> {
    (samples > 0 && rate > 0).then(|| samples.saturating_mul(1000) / u64::from(rate))
}

//! AAC in a raw ADTS stream: the duration, by walking the frame headers of the whole file.

use std::io;
use std::path::Path;

use super::{Source, samples_to_ms};

/// Samples per second by sampling frequency index; 13 to 15 are not allowed.
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// What an ADTS frame header says.
#[derive(Debug, Clone, Copy)]
struct Frame {
    sample_rate: u32,
    /// The frame's length in bytes, its header included.
    length: u16,
    samples: u32,
}

impl Frame {
    /// Reads the fixed seven bytes of a header (a CRC may follow them).
    fn parse(header: [u8; 7]) -> Option<Self> {
        let [sync, b1, b2, b3, b4, b5, b6] = header;
        // The sync word, then any MPEG version, and layer 0.
        if sync != 0xFF || b1 & 0xF6 != 0xF0 {
            return None;
        }
        let sample_rate = *SAMPLE_RATES.get(usize::from((b2 >> 2) & 0x0F))?;
        let length = u16::from(b3 & 0x03) << 11 | u16::from(b4) << 3 | u16::from(b5 >> 5);
        let header_len = if b1 & 0x01 == 1 { 7 } else { 9 };
        if length < header_len {
            return None;
        }
        // Raw data blocks in the frame, less one: 1024 samples each.
        let blocks = u32::from(b6 & 0x03) + 1;
        Some(Self {
            sample_rate,
            length,
            samples: blocks * 1024,
        })
    }
}

/// The duration in milliseconds of the ADTS stream at `path`: its frames' samples, up to
/// the first frame that is not one, changes the sample rate, or is cut short.
pub(super) fn duration(path: &Path) -> io::Result<Option<u64>> {
    let mut source = Source::open(path)?;
    let mut sample_rate = None;
    let mut samples = 0u64;
    loop {
        let mut header = [0u8; 7];
        if source.read_up_to(&mut header)? < header.len() {
            break;
        }
        let Some(frame) = Frame::parse(header)
            .filter(|frame| sample_rate.is_none_or(|rate| rate == frame.sample_rate))
        else {
            break;
        };
        let body = u64::from(frame.length) - 7;
        if body > source.left() {
            break;
        }
        source.skip(body)?;
        sample_rate = Some(frame.sample_rate);
        samples += u64::from(frame.samples);
    }
    Ok(sample_rate.and_then(|rate| samples_to_ms(samples, rate)))
}

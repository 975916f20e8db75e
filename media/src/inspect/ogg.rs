//! Ogg: the duration from the last page's granule position (Opus and Vorbis).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The last page's granule position over the stream's sample rate, less Opus's
/// pre-skip.
pub(super) fn duration(path: &Path) -> io::Result<Option<u64>> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    let mut head = vec![0u8; 4096.min(usize::try_from(length).unwrap_or(4096))];
    file.read_exact(&mut head)?;
    let find = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    };
    let (rate, pre_skip) = if let Some(at) = find(&head, b"OpusHead") {
        let pre_skip = head
            .get(at + 10..at + 12)
            .map_or(0, |b| u64::from(u16::from_le_bytes([b[0], b[1]])));
        (48_000, pre_skip)
    } else if let Some(at) = find(&head, b"\x01vorbis") {
        let rate = head.get(at + 12..at + 16).map_or(0, |b| {
            u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        });
        (rate, 0)
    } else {
        return Ok(None);
    };
    let tail_start = length.saturating_sub(65_536);
    file.seek(SeekFrom::Start(tail_start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(last) = tail.windows(4).rposition(|window| window == b"OggS") else {
        return Ok(None);
    };
    let Some(granule) = tail.get(last + 6..last + 14) else {
        return Ok(None);
    };
    let granule = u64::from_le_bytes(granule.try_into().unwrap_or_default());
    if rate == 0 || granule == u64::MAX {
        return Ok(None);
    }
    // A hostile granule position can be near `u64::MAX`: then no duration, not an overflow.
    Ok(granule
        .saturating_sub(pre_skip)
        .checked_mul(1000)
        .map(|ms| ms / rate))
}

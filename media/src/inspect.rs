//! What can be learnt of a sound, video or document cheaply, from a few reads of its
//! file: the duration of MP4 and Ogg (Opus, Vorbis) files, the page count of PDFs.
//! Anything else, or anything malformed, is `None`: the file is still stored and served.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::sniff::Format;

/// What inspection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inspected {
    pub duration_ms: Option<u64>,
    pub pages: Option<u32>,
}

/// Inspects the file at `path`, of `format`. Blocking: call it off the async runtime.
pub fn inspect(path: &Path, format: Format) -> Inspected {
    let result = match format {
        Format::Mp4 => mp4_duration(path).map(|duration_ms| Inspected {
            duration_ms,
            pages: None,
        }),
        Format::Ogg => ogg_duration(path).map(|duration_ms| Inspected {
            duration_ms,
            pages: None,
        }),
        Format::Pdf => pdf_pages(path).map(|pages| Inspected {
            duration_ms: None,
            pages,
        }),
        _ => Ok(Inspected::default()),
    };
    result.unwrap_or_default()
}

/// Reads a box header at the reader's position: its type and the size of its body.
fn box_header(reader: &mut impl Read, remaining: u64) -> io::Result<Option<([u8; 4], u64)>> {
    if remaining < 8 {
        return Ok(None);
    }
    let mut header = [0u8; 8];
    reader.read_exact(&mut header)?;
    let size = u64::from(u32::from_be_bytes([
        header[0], header[1], header[2], header[3],
    ]));
    let kind = [header[4], header[5], header[6], header[7]];
    let body = match size {
        0 => remaining - 8,
        1 => {
            let mut large = [0u8; 8];
            reader.read_exact(&mut large)?;
            u64::from_be_bytes(large).saturating_sub(16)
        }
        size if size >= 8 => size - 8,
        _ => return Ok(None),
    };
    Ok(Some((kind, body)))
}

/// The movie header's duration: `moov/mvhd`, wherever `moov` lies in the file.
fn mp4_duration(path: &Path) -> io::Result<Option<u64>> {
    let mut file = File::open(path)?;
    let length = file.metadata()?.len();
    let mut at = 0;
    while let Some((kind, body)) = box_header(&mut file, length - at)? {
        let body_start = file.stream_position()?;
        if &kind == b"moov" {
            let end = body_start + body;
            loop {
                let left = end.saturating_sub(file.stream_position()?);
                let Some((inner, inner_body)) = box_header(&mut file, left)? else {
                    break;
                };
                if &inner == b"mvhd" {
                    let mut version = [0u8; 4];
                    file.read_exact(&mut version)?;
                    let (timescale, duration) = if version[0] == 1 {
                        let mut fields = [0u8; 28];
                        file.read_exact(&mut fields)?;
                        (
                            u32::from_be_bytes(fields[16..20].try_into().unwrap_or_default()),
                            u64::from_be_bytes(fields[20..28].try_into().unwrap_or_default()),
                        )
                    } else {
                        let mut fields = [0u8; 16];
                        file.read_exact(&mut fields)?;
                        (
                            u32::from_be_bytes(fields[8..12].try_into().unwrap_or_default()),
                            u64::from(u32::from_be_bytes(
                                fields[12..16].try_into().unwrap_or_default(),
                            )),
                        )
                    };
                    return Ok((timescale > 0)
                        .then(|| duration.saturating_mul(1000) / u64::from(timescale)));
                }
                file.seek(SeekFrom::Current(
                    i64::try_from(inner_body).unwrap_or(i64::MAX),
                ))?;
            }
            return Ok(None);
        }
        at = body_start + body;
        if at >= length {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(at))?;
    }
    Ok(None)
}

/// The last page's granule position over the stream's sample rate, less Opus's
/// pre-skip.
fn ogg_duration(path: &Path) -> io::Result<Option<u64>> {
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
    Ok(Some(granule.saturating_sub(pre_skip) * 1000 / rate))
}

/// The page objects of a PDF (`/Type /Page`, not `/Pages`), counted in one streaming
/// pass. Pages inside compressed object streams are not seen: then `None`.
fn pdf_pages(path: &Path) -> io::Result<Option<u32>> {
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let mut counter = PageCounter::default();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        for byte in &buffer[..read] {
            counter.feed(*byte);
        }
    }
    let pages = counter.finish();
    Ok((pages > 0).then_some(pages))
}

/// Finds `/Type`, optional white space, `/Page`, and a byte that ends the name.
#[derive(Default)]
struct PageCounter {
    state: PageState,
    pages: u32,
}

#[derive(Default, Clone, Copy)]
enum PageState {
    /// Matched this many bytes of `/Type`.
    #[default]
    Type0,
    Type(usize),
    /// After `/Type`, in white space.
    Space,
    /// Matched this many bytes of `/Page`.
    Page(usize),
    /// After `/Page`: the next byte says whether the name ends there.
    End,
}

impl PageCounter {
    const TYPE: &'static [u8] = b"/Type";
    const PAGE: &'static [u8] = b"/Page";

    fn feed(&mut self, byte: u8) {
        self.state = match self.state {
            PageState::Type0 | PageState::Type(_) => {
                let matched = match self.state {
                    PageState::Type(k) => k,
                    _ => 0,
                };
                if byte == Self::TYPE[matched] {
                    if matched + 1 == Self::TYPE.len() {
                        PageState::Space
                    } else {
                        PageState::Type(matched + 1)
                    }
                } else if byte == b'/' {
                    PageState::Type(1)
                } else {
                    PageState::Type0
                }
            }
            PageState::Space if byte.is_ascii_whitespace() => PageState::Space,
            PageState::Space if byte == b'/' => PageState::Page(1),
            PageState::Space => PageState::Type0,
            PageState::Page(k) if byte == Self::PAGE[k] => {
                if k + 1 == Self::PAGE.len() {
                    PageState::End
                } else {
                    PageState::Page(k + 1)
                }
            }
            PageState::Page(_) => {
                if byte == b'/' {
                    PageState::Type(1)
                } else {
                    PageState::Type0
                }
            }
            PageState::End => {
                if !byte.is_ascii_alphanumeric() {
                    self.pages = self.pages.saturating_add(1);
                }
                if byte == b'/' {
                    PageState::Type(1)
                } else {
                    PageState::Type0
                }
            }
        };
    }

    fn finish(self) -> u32 {
        match self.state {
            PageState::End => self.pages.saturating_add(1),
            _ => self.pages,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("natter-inspect-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn mp4(duration: u32, timescale: u32, moov_last: bool) -> Vec<u8> {
        let mut mvhd = vec![0u8; 4 + 16];
        mvhd[12..16].copy_from_slice(&timescale.to_be_bytes());
        mvhd[16..20].copy_from_slice(&duration.to_be_bytes());
        let boxed = |kind: &[u8], body: &[u8]| {
            let mut b = u32::try_from(body.len() + 8)
                .unwrap()
                .to_be_bytes()
                .to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            b
        };
        let moov = boxed(b"moov", &boxed(b"mvhd", &mvhd));
        let ftyp = boxed(b"ftyp", b"isom\0\0\0\0");
        let mdat = boxed(b"mdat", &[7u8; 5000]);
        if moov_last {
            [ftyp, mdat, moov].concat()
        } else {
            [ftyp, moov, mdat].concat()
        }
    }

    #[test]
    fn an_mp4_duration_is_read_from_its_movie_header_wherever_it_is() {
        for moov_last in [false, true] {
            let path = file(&format!("mp4-{moov_last}"), &mp4(90_000, 1_000, moov_last));
            assert_eq!(inspect(&path, Format::Mp4).duration_ms, Some(90_000));
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn an_opus_duration_is_the_last_granule_less_the_pre_skip() {
        let mut ogg = b"OggS\0\x02".to_vec();
        ogg.extend_from_slice(&[0; 20]);
        ogg.extend_from_slice(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0");
        ogg.extend_from_slice(&[3; 3000]);
        ogg.extend_from_slice(b"OggS\0\x04");
        ogg.extend_from_slice(&(48_000u64 * 5 + 312).to_le_bytes());
        ogg.extend_from_slice(&[0; 20]);
        let path = file("opus", &ogg);
        assert_eq!(inspect(&path, Format::Ogg).duration_ms, Some(5_000));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn pdf_pages_are_counted_and_the_page_tree_is_not() {
        let pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 3 >> endobj\n\
                    2 0 obj << /Type /Page >> endobj 3 0 obj <</Type/Page/Parent 1 0 R>> endobj\n\
                    4 0 obj << /Type\n/Page >> endobj\n%%EOF";
        let path = file("pdf", pdf);
        assert_eq!(inspect(&path, Format::Pdf).pages, Some(3));
        std::fs::remove_file(path).unwrap();
        let path = file("garbage", b"%PDF-1.4 nothing here");
        assert_eq!(inspect(&path, Format::Pdf), Inspected::default());
        std::fs::remove_file(path).unwrap();
    }
}

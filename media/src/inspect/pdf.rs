//! PDF: the page count, from the page objects.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// The page objects of a PDF (`/Type /Page`, not `/Pages`), counted in one streaming
/// pass. Pages inside compressed object streams are not seen: then `None`.
pub(super) fn pages(path: &Path) -> io::Result<Option<u32>> {
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

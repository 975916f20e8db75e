//! What a file is, from its first bytes (magic numbers), never from what the client says:
//! the first 64 bytes tell JPEG, PNG, GIF, WebP, Ogg, MP3, AAC, MP4, WebM, PDF, and
//! ZIP-based and OLE Office files apart; `Format::fits` says which kinds (image, voice,
//! video, document) each may be uploaded as.

/// What an upload is meant to be; each kind has its own size limit and formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Voice,
    Video,
    Document,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::Document => "document",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Image, Self::Voice, Self::Video, Self::Document]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// A recognised format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
    Ogg,
    Mp3,
    Aac,
    Mp4,
    WebM,
    Pdf,
    /// A ZIP container: the Office Open XML formats (docx, xlsx, pptx), OpenDocument.
    OfficeZip,
    /// The older Office formats (doc, xls, ppt): an OLE compound file.
    OfficeOle,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
            Self::Ogg => "audio/ogg",
            Self::Mp3 => "audio/mpeg",
            Self::Aac => "audio/aac",
            Self::Mp4 => "video/mp4",
            Self::WebM => "video/webm",
            Self::Pdf => "application/pdf",
            Self::OfficeZip => "application/zip",
            Self::OfficeOle => "application/x-ole-storage",
        }
    }

    /// The kinds a file of this format may be uploaded as. MP4, Ogg and WebM carry sound
    /// alone or with pictures, so they fit both voice and video.
    pub fn fits(self, kind: Kind) -> bool {
        match self {
            Self::Jpeg | Self::Png | Self::Gif | Self::WebP => kind == Kind::Image,
            Self::Mp3 | Self::Aac => kind == Kind::Voice,
            // A browser records voice as WebM (Opus): audio in a container that also
            // carries video.
            Self::Ogg | Self::Mp4 | Self::WebM => matches!(kind, Kind::Voice | Kind::Video),
            Self::Pdf | Self::OfficeZip | Self::OfficeOle => kind == Kind::Document,
        }
    }
}

/// The bytes a sniff needs at most.
pub const SNIFF_LEN: usize = 64;

/// The format `head` (a file's first bytes) starts with, if it is one Natter knows.
pub fn sniff(head: &[u8]) -> Option<Format> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some(Format::Gif)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some(Format::WebP)
    } else if at(0, b"OggS") {
        Some(Format::Ogg)
    } else if at(0, b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE6 == 0xE2) {
        // An ID3 tag, or an MPEG audio frame sync (layer III).
        Some(Format::Mp3)
    } else if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0 {
        // An ADTS frame sync (layer 0).
        Some(Format::Aac)
    } else if at(4, b"ftyp") {
        Some(Format::Mp4)
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Some(Format::WebM)
    } else if at(0, b"%PDF-") {
        Some(Format::Pdf)
    } else if at(0, b"PK\x03\x04") {
        Some(Format::OfficeZip)
    } else if at(0, &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Some(Format::OfficeOle)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_bytes() {
        let cases: &[(&[u8], Option<Format>)] = &[
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", Some(Format::Jpeg)),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some(Format::Png)),
            (b"GIF89a\x01\x00", Some(Format::Gif)),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some(Format::WebP)),
            (b"OggS\0\x02", Some(Format::Ogg)),
            (b"ID3\x04\0", Some(Format::Mp3)),
            (b"\xFF\xFB\x90\x64", Some(Format::Mp3)),
            (b"\xFF\xF1\x50\x80", Some(Format::Aac)),
            (b"\0\0\0\x20ftypisom", Some(Format::Mp4)),
            (b"\x1A\x45\xDF\xA3\x9F", Some(Format::WebM)),
            (b"%PDF-1.7\n", Some(Format::Pdf)),
            (b"PK\x03\x04\x14\0", Some(Format::OfficeZip)),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", Some(Format::OfficeOle)),
            (b"<html><script>", None),
            (b"", None),
        ];
        for (head, format) in cases {
            assert_eq!(sniff(head), *format, "{head:?}");
        }
        assert!(Format::Mp4.fits(Kind::Voice) && Format::Mp4.fits(Kind::Video));
        assert!(!Format::Png.fits(Kind::Document) && !Format::Pdf.fits(Kind::Image));
    }
}

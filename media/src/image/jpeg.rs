//! A JPEG rewritten without its metadata, losslessly: its marker segments are copied but
//! for EXIF, XMP and every other application segment, comments, and anything after the
//! end of the image. The compressed pixels are copied as they are, so the photo loses
//! no quality and costs no re-encoding. Kept besides the image's own segments: an ICC
//! colour profile (APP2), and Adobe's colour transform (APP14), which says how to read
//! the pixels.

/// `bytes` without metadata, or `None` if its structure is not a plain sequence of
/// segments ending in EOI (the caller then re-encodes it from its pixels).
pub fn strip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let rest = bytes.strip_prefix(&[0xFF, 0xD8])?;
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut at = 0;
    loop {
        // A marker, after any fill bytes.
        if *rest.get(at)? != 0xFF {
            return None;
        }
        while *rest.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *rest.get(at)?;
        at += 1;
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Some(out);
            }
            0xD0..=0xD7 | 0x01 => out.extend_from_slice(&[0xFF, marker]),
            0x00 | 0xD8 => return None,
            _ => {
                let length = usize::from(u16::from_be_bytes([*rest.get(at)?, *rest.get(at + 1)?]));
                let segment = rest.get(at..at.checked_add(length)?)?;
                if length < 2 {
                    return None;
                }
                at += length;
                if kept(marker, &segment[2..]) {
                    out.extend_from_slice(&[0xFF, marker]);
                    out.extend_from_slice(segment);
                }
                if marker == 0xDA {
                    let scan = scan_length(&rest[at..])?;
                    out.extend_from_slice(&rest[at..at + scan]);
                    at += scan;
                }
            }
        }
    }
}

/// Whether a segment with this marker and content stays.
fn kept(marker: u8, content: &[u8]) -> bool {
    match marker {
        0xE2 => content.starts_with(b"ICC_PROFILE\0"),
        0xEE => content.starts_with(b"Adobe"),
        0xE0..=0xEF | 0xFE => false,
        _ => true,
    }
}

/// The length of the entropy-coded data at the start of `data`: up to the first marker
/// that is neither a stuffed zero (`FF 00`) nor a restart (`FF D0`..`FF D7`).
fn scan_length(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        at += data.get(at..)?.iter().position(|b| *b == 0xFF)?;
        let mut next = at + 1;
        while *data.get(next)? == 0xFF {
            next += 1;
        }
        match data[next] {
            0x00 | 0xD0..=0xD7 => at = next + 1,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&u16::try_from(content.len() + 2).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(content);
        out
    }

    #[test]
    fn metadata_and_trailing_bytes_go_and_the_image_stays() {
        let scan_data = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56];
        let image = [
            vec![0xFF, 0xD8],
            segment(0xE0, b"JFIF\0\x01\x02"),
            segment(0xE1, b"Exif\0\0GPS here"),
            segment(0xE2, b"ICC_PROFILE\0\x01\x01profile"),
            segment(0xFE, b"a comment"),
            segment(0xDB, b"\0quant"),
            segment(0xC0, b"\x08frame"),
            segment(0xEE, b"Adobe\0transform"),
            segment(0xDA, b"\x03scan"),
            scan_data.to_vec(),
            vec![0xFF, 0xD9],
            b"PK trailing archive".to_vec(),
        ]
        .concat();
        let expected = [
            vec![0xFF, 0xD8],
            segment(0xE2, b"ICC_PROFILE\0\x01\x01profile"),
            segment(0xDB, b"\0quant"),
            segment(0xC0, b"\x08frame"),
            segment(0xEE, b"Adobe\0transform"),
            segment(0xDA, b"\x03scan"),
            scan_data.to_vec(),
            vec![0xFF, 0xD9],
        ]
        .concat();
        assert_eq!(strip(&image), Some(expected));
    }

    #[test]
    fn progressive_scans_each_keep_their_tables() {
        let image = [
            vec![0xFF, 0xD8],
            segment(0xC2, b"\x08frame"),
            segment(0xDA, b"\x01first"),
            vec![0xAA, 0xBB],
            segment(0xC4, b"\x10huffman"),
            segment(0xDA, b"\x01second"),
            vec![0xCC],
            vec![0xFF, 0xD9],
        ]
        .concat();
        assert_eq!(strip(&image).as_deref(), Some(&image[..]));
    }

    #[test]
    fn what_is_not_a_sequence_of_segments_is_left_to_re_encoding() {
        let truncated = [vec![0xFF, 0xD8], segment(0xDB, b"\0quant")].concat();
        for bad in [
            &b"not a jpeg"[..],
            &truncated[..],
            &truncated[..truncated.len() - 2],
            &[0xFF, 0xD8, 0xFF, 0xDB, 0x00][..],
            &[0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x01, 0xFF, 0xD9][..],
            &[0xFF, 0xD8, 0x00][..],
        ] {
            assert_eq!(strip(bad), None, "{bad:?}");
        }
    }
}

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "natter-inspect-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }

    fn rewrite(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.0, bytes).unwrap();
        &self.0
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn inspect_bytes(name: &str, bytes: &[u8], format: Format) -> Inspected {
    inspect(TempFile::new(name, bytes).path(), format)
}

/// A small deterministic generator for hostile bytes: xorshift64.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound as u64).unwrap()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

// MP4

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(body.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

fn mvhd(duration: u32, timescale: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 4 + 16];
    mvhd[12..16].copy_from_slice(&timescale.to_be_bytes());
    mvhd[16..20].copy_from_slice(&duration.to_be_bytes());
    mvhd.extend_from_slice(&[0; 80]);
    boxed(b"mvhd", &mvhd)
}

fn mp4(duration: u32, timescale: u32, moov_last: bool) -> Vec<u8> {
    let moov = boxed(b"moov", &mvhd(duration, timescale));
    let ftyp = boxed(b"ftyp", b"isom\0\0\0\0");
    let mdat = boxed(b"mdat", &[7u8; 5000]);
    if moov_last {
        [ftyp, mdat, moov].concat()
    } else {
        [ftyp, moov, mdat].concat()
    }
}

/// A track of `handler`, whose header (of `version`) gives `width` by `height`.
fn trak(handler: &[u8; 4], width: u32, height: u32, version: u8) -> Vec<u8> {
    let mut tkhd = vec![version, 0, 0, 7];
    tkhd.extend_from_slice(&vec![0u8; if version == 1 { 84 } else { 72 }]);
    tkhd.extend_from_slice(&(width << 16).to_be_bytes());
    tkhd.extend_from_slice(&(height << 16).to_be_bytes());
    let mut hdlr = vec![0u8; 8];
    hdlr.extend_from_slice(handler);
    hdlr.extend_from_slice(&[0; 12]);
    hdlr.extend_from_slice(b"Handler\0");
    let mdia = [
        boxed(b"mdhd", &[0; 24]),
        boxed(b"hdlr", &hdlr),
        boxed(b"minf", &boxed(b"vmhd", &[0; 12])),
    ]
    .concat();
    boxed(
        b"trak",
        &[
            boxed(b"tkhd", &tkhd),
            boxed(b"edts", &[0; 16]),
            boxed(b"mdia", &mdia),
        ]
        .concat(),
    )
}

fn mp4_with_tracks(version: u8) -> Vec<u8> {
    let moov = [
        mvhd(12_500, 1_000),
        trak(b"soun", 0, 0, version),
        trak(b"vide", 1280, 720, version),
    ]
    .concat();
    [
        boxed(b"ftyp", b"isom\0\0\0\0"),
        boxed(b"moov", &moov),
        boxed(b"mdat", &[7u8; 3000]),
    ]
    .concat()
}

#[test]
fn an_mp4_duration_is_read_from_its_movie_header_wherever_it_is() {
    for moov_last in [false, true] {
        let found = inspect_bytes("mp4", &mp4(90_000, 1_000, moov_last), Format::Mp4);
        assert_eq!(found.duration_ms, Some(90_000));
        assert_eq!((found.width, found.height), (None, None));
    }
}

#[test]
fn an_mp4_frame_size_is_read_from_the_header_of_its_video_track() {
    for version in [0, 1] {
        let found = inspect_bytes("mp4-tracks", &mp4_with_tracks(version), Format::Mp4);
        assert_eq!(
            found,
            Inspected {
                duration_ms: Some(12_500),
                pages: None,
                width: Some(1280),
                height: Some(720),
            },
            "tkhd version {version}"
        );
    }
}

#[test]
fn an_mp4_without_a_video_track_has_no_frame_size() {
    let moov = [mvhd(3_000, 1_000), trak(b"soun", 640, 480, 0)].concat();
    let file = [boxed(b"ftyp", b"M4A \0\0\0\0"), boxed(b"moov", &moov)].concat();
    let found = inspect_bytes("m4a", &file, Format::Mp4);
    assert_eq!(found.duration_ms, Some(3_000));
    assert_eq!((found.width, found.height), (None, None));
}

#[test]
fn an_mp4_with_boxes_larger_than_their_parents_is_not_read_past_them() {
    let file = mp4_with_tracks(0);
    // The moov box claims more than the file holds.
    let mut lying = file.clone();
    lying[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        inspect_bytes("mp4-big", &lying, Format::Mp4),
        Inspected::default()
    );
    // A 64-bit size of nearly 2^64.
    let mut large = boxed(b"ftyp", b"isom\0\0\0\0");
    large.extend_from_slice(&[0, 0, 0, 1]);
    large.extend_from_slice(b"moov");
    large.extend_from_slice(&(u64::MAX - 3).to_be_bytes());
    large.extend_from_slice(&mvhd(1, 1));
    assert_eq!(
        inspect_bytes("mp4-large", &large, Format::Mp4),
        Inspected::default()
    );
    // Ever so many empty boxes before the moov: the walk gives up.
    let mut tiny = boxed(b"ftyp", b"isom\0\0\0\0");
    for _ in 0..MAX_STEPS {
        tiny.extend_from_slice(&boxed(b"free", &[]));
    }
    tiny.extend_from_slice(&boxed(b"moov", &mvhd(5, 1)));
    assert_eq!(
        inspect_bytes("mp4-tiny", &tiny, Format::Mp4),
        Inspected::default()
    );
}

// WebM

/// An EBML element: its ID as written, its size as a variable-length integer of the
/// fewest bytes, and its body.
fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    let size = body.len() as u64;
    let len = (1..=8).find(|&len| size < (1 << (7 * len)) - 1).unwrap();
    let marked = size | 1 << (7 * len);
    bytes.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
    bytes.extend_from_slice(body);
    bytes
}

/// The header of an element of unknown size: its body runs on.
fn unknown_size(id: u32) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&0x01FF_FFFF_FFFF_FFFFu64.to_be_bytes());
    bytes
}

fn uint(id: u32, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    element(id, &bytes[first..])
}

fn ebml_header() -> Vec<u8> {
    element(
        0x1A45_DFA3,
        &[
            uint(0x4286, 1),
            uint(0x42F7, 1),
            element(0x4282, b"webm"),
            uint(0x4287, 4),
        ]
        .concat(),
    )
}

fn info(scale: Option<u64>, duration: &[u8]) -> Vec<u8> {
    let mut body = scale
        .map(|scale| uint(0x2A_D7B1, scale))
        .unwrap_or_default();
    body.extend_from_slice(&element(0x4D80, b"natter-test"));
    body.extend_from_slice(&element(0x4489, duration));
    element(0x1549_A966, &body)
}

fn tracks(width: u64, height: u64) -> Vec<u8> {
    let audio = element(
        0xAE,
        &[
            uint(0xD7, 1),
            uint(0x83, 2),
            element(0x86, b"A_OPUS"),
            element(0xE1, &uint(0x9F, 2)),
        ]
        .concat(),
    );
    let video = element(
        0xAE,
        &[
            uint(0xD7, 2),
            uint(0x83, 1),
            element(0x86, b"V_VP9"),
            element(0xE0, &[uint(0xB0, width), uint(0xBA, height)].concat()),
        ]
        .concat(),
    );
    element(0x1654_AE6B, &[audio, video].concat())
}

fn cluster_body() -> Vec<u8> {
    [uint(0xE7, 0), element(0xA3, &[0x81, 0, 0, 0x80, 1, 2, 3])].concat()
}

/// A WebM file as a muxer writes it, in its parts: the EBML header; a segment of unknown
/// size; a seek head and a void; info; tracks; a cluster of unknown size.
fn webm_parts(duration: &[u8]) -> [Vec<u8>; 8] {
    [
        ebml_header(),
        unknown_size(0x1853_8067),
        element(0x114D_9B74, &[0; 20]),
        element(0xEC, &[0; 9]),
        info(Some(1_000_000), duration),
        tracks(640, 360),
        unknown_size(0x1F43_B675),
        cluster_body(),
    ]
}

fn webm(duration: &[u8]) -> Vec<u8> {
    webm_parts(duration).concat()
}

#[test]
fn a_webm_duration_and_frame_size_are_read_from_info_and_tracks() {
    let found = inspect_bytes("webm", &webm(&4500f64.to_be_bytes()), Format::WebM);
    assert_eq!(
        found,
        Inspected {
            duration_ms: Some(4_500),
            pages: None,
            width: Some(640),
            height: Some(360),
        }
    );
}

#[test]
fn a_webm_duration_may_be_a_four_byte_float_in_any_timecode_scale() {
    let found = inspect_bytes("webm-f32", &webm(&4500f32.to_be_bytes()), Format::WebM);
    assert_eq!(found.duration_ms, Some(4_500));
    // Microsecond ticks, and the scale left to its default.
    for (scale, duration, ms) in [(Some(1_000), 2_500_000f32, 2_500), (None, 1_234.0, 1_234)] {
        let file = [
            ebml_header(),
            element(
                0x1853_8067,
                &[info(scale, &duration.to_be_bytes()), tracks(1920, 1080)].concat(),
            ),
        ]
        .concat();
        let found = inspect_bytes("webm-scale", &file, Format::WebM);
        assert_eq!(found.duration_ms, Some(ms), "{scale:?}");
        assert_eq!((found.width, found.height), (Some(1920), Some(1080)));
    }
}

#[test]
fn webm_clusters_before_info_and_tracks_are_skipped() {
    let file = [
        ebml_header(),
        unknown_size(0x1853_8067),
        unknown_size(0x1F43_B675),
        cluster_body(),
        element(0x1F43_B675, &cluster_body()),
        tracks(320, 240),
        info(None, &1_000f64.to_be_bytes()),
        unknown_size(0x1F43_B675),
        cluster_body(),
    ]
    .concat();
    let found = inspect_bytes("webm-late", &file, Format::WebM);
    assert_eq!(found.duration_ms, Some(1_000));
    assert_eq!((found.width, found.height), (Some(320), Some(240)));
}

/// A block of track 1 at `at` milliseconds into its cluster.
fn block(at: i16) -> Vec<u8> {
    let [high, low] = at.to_be_bytes();
    element(0xA3, &[0x81, high, low, 0x80, 1, 2, 3])
}

#[test]
fn a_recording_with_no_duration_lasts_until_its_last_block() {
    // As a browser's MediaRecorder writes it: no Duration in Info, clusters of unknown
    // size, one of them with a block in a group.
    let info = element(
        0x1549_A966,
        &[uint(0x2A_D7B1, 1_000_000), element(0x4D80, b"Chrome")].concat(),
    );
    let file = [
        ebml_header(),
        unknown_size(0x1853_8067),
        info,
        tracks(640, 360),
        unknown_size(0x1F43_B675),
        uint(0xE7, 0),
        block(0),
        block(20),
        block(40),
        unknown_size(0x1F43_B675),
        uint(0xE7, 2_960),
        block(0),
        element(0xA0, &element(0xA1, &[0x81, 0, 20, 0x80, 9])),
        element(0x1C53_BB6B, &[0; 12]),
    ]
    .concat();
    let found = inspect_bytes("webm-recorded", &file, Format::WebM);
    assert_eq!(found.duration_ms, Some(2_980));
    assert_eq!((found.width, found.height), (Some(640), Some(360)));
}

#[test]
fn a_truncated_webm_gives_what_it_holds_whole_and_never_panics() {
    let parts = webm_parts(&4500f64.to_be_bytes());
    let info_end = parts[..5].concat().len();
    let tracks_end = parts[..6].concat().len();
    let file = parts.concat();
    let scratch = TempFile::new("webm-cut", &[]);
    for cut in 0..file.len() {
        let found = inspect(scratch.rewrite(&file[..cut]), Format::WebM);
        let duration = (cut >= info_end).then_some(4_500);
        let size = (cut >= tracks_end).then_some((640, 360));
        assert_eq!(found.duration_ms, duration, "cut at {cut}");
        assert_eq!(found.width.zip(found.height), size, "cut at {cut}");
    }
}

#[test]
fn webm_sizes_beyond_the_file_end_the_walk() {
    // A known segment size larger than the file.
    let mut segment = 0x1853_8067u32.to_be_bytes().to_vec();
    segment.extend_from_slice(&0x01FF_FFFF_FFFF_FF00u64.to_be_bytes());
    let file = [ebml_header(), segment, info(None, &1f64.to_be_bytes())].concat();
    assert_eq!(
        inspect_bytes("webm-huge", &file, Format::WebM),
        Inspected::default()
    );
    // An info of unknown size; a duration of sixteen bytes; a size with no length marker.
    for info in [
        [unknown_size(0x1549_A966), element(0x4489, &[0; 8])].concat(),
        element(0x1549_A966, &element(0x4489, &[0; 16])),
        [0x15, 0x49, 0xA9, 0x66, 0x00, 0x44, 0x89].to_vec(),
    ] {
        let file = [ebml_header(), unknown_size(0x1853_8067), info].concat();
        assert_eq!(
            inspect_bytes("webm-bad", &file, Format::WebM),
            Inspected::default()
        );
    }
    // Ever so many void elements before the info: the walk gives up.
    let mut voids = [ebml_header(), unknown_size(0x1853_8067)].concat();
    for _ in 0..MAX_STEPS {
        voids.extend_from_slice(&element(0xEC, &[]));
    }
    voids.extend_from_slice(&info(None, &1f64.to_be_bytes()));
    assert_eq!(
        inspect_bytes("webm-voids", &voids, Format::WebM),
        Inspected::default()
    );
}

// MP3

/// An MPEG-1 layer III frame at 128 kbit/s and 44.1 kHz: 417 bytes, or 418 padded.
fn mp3_frame(padded: bool) -> Vec<u8> {
    let mut frame = vec![0xFF, 0xFB, if padded { 0x92 } else { 0x90 }, 0x64];
    frame.resize(if padded { 418 } else { 417 }, 0x55);
    frame
}

fn syncsafe(size: u32) -> [u8; 4] {
    [21, 14, 7, 0].map(|shift| u8::try_from(size >> shift & 0x7F).unwrap())
}

/// An ID3v2.4 tag, with a footer if asked for, holding what looks like a frame.
fn id3v2(footer: bool) -> Vec<u8> {
    let mut body = b"TIT2\0\0\0\x05\0\0\x03Hi\0".to_vec();
    body.extend_from_slice(&[0xFF, 0xFB, 0x10, 0x00]);
    body.resize(300, 0);
    let flags = if footer { 0x10 } else { 0 };
    let size = syncsafe(u32::try_from(body.len()).unwrap());
    let mut tag = [b"ID3\x04\0".as_slice(), &[flags], &size, &body].concat();
    if footer {
        tag.extend_from_slice(&[b"3DI\x04\0".as_slice(), &[flags], &size].concat());
    }
    tag
}

fn assert_close(found: Option<u64>, samples: u64, rate: u64) {
    let exact = samples as f64 * 1000.0 / rate as f64;
    let found = found.unwrap() as f64;
    assert!((found - exact).abs() <= 1.0, "{found} ms, not {exact} ms");
}

#[test]
fn an_mp3_duration_is_summed_over_its_frames_after_the_id3_tag() {
    for footer in [false, true] {
        let frames = 100;
        let mut file = id3v2(footer);
        for i in 0..frames {
            file.extend_from_slice(&mp3_frame(i % 3 != 0));
        }
        file.extend_from_slice(b"TAG");
        file.extend_from_slice(&[b' '; 125]);
        let found = inspect_bytes("mp3", &file, Format::Mp3);
        assert_close(found.duration_ms, frames * 1152, 44_100);
    }
}

#[test]
fn an_mpeg_2_duration_counts_its_shorter_frames() {
    // MPEG-2 layer III, 64 kbit/s, 22.05 kHz, mono: 208 bytes and 576 samples a frame.
    let frames = 50;
    let mut file = Vec::new();
    for _ in 0..frames {
        let mut frame = vec![0xFF, 0xF3, 0x80, 0xC0];
        frame.resize(208, 0);
        file.extend_from_slice(&frame);
    }
    let found = inspect_bytes("mp3-mpeg2", &file, Format::Mp3);
    assert_close(found.duration_ms, frames * 576, 22_050);
}

#[test]
fn an_mp3_frame_is_found_past_bytes_the_tag_did_not_count() {
    let mut file = id3v2(false);
    file.extend_from_slice(&[0; 700]);
    for _ in 0..10 {
        file.extend_from_slice(&mp3_frame(false));
    }
    let found = inspect_bytes("mp3-gap", &file, Format::Mp3);
    assert_close(found.duration_ms, 10 * 1152, 44_100);
}

#[test]
fn an_mp3_xing_or_vbri_frame_count_is_believed_without_a_walk() {
    // Stereo MPEG-1: the Xing header is after 32 bytes of side information; VBRI is at 32
    // bytes after the frame header all the same.
    let mut xing = mp3_frame(false);
    xing[36..48]
        .copy_from_slice(&[b"Xing".as_slice(), &[0, 0, 0, 3], &1000u32.to_be_bytes()].concat());
    let mut vbri = mp3_frame(false);
    vbri[36..54].copy_from_slice(
        &[
            b"VBRI".as_slice(),
            &[0, 1, 0, 0, 0, 50],
            &[0; 4],
            &1000u32.to_be_bytes(),
        ]
        .concat(),
    );
    for first in [xing, vbri] {
        let file = [id3v2(false), first, mp3_frame(false), mp3_frame(true)].concat();
        let found = inspect_bytes("mp3-vbr", &file, Format::Mp3);
        assert_close(found.duration_ms, 1000 * 1152, 44_100);
    }
    // Mono MPEG-1: after 17 bytes of side information. Without a frame count, the frames
    // after the header's are walked.
    let mut mono = mp3_frame(false);
    mono[3] = 0xC4;
    let mut info = mono.clone();
    info[21..29].copy_from_slice(&[b"Info".as_slice(), &[0, 0, 0, 2]].concat());
    let file = [info, mono.clone(), mono.clone(), mono].concat();
    let found = inspect_bytes("mp3-info", &file, Format::Mp3);
    assert_close(found.duration_ms, 3 * 1152, 44_100);
}

#[test]
fn an_mp3_without_frames_has_no_duration() {
    for file in [
        id3v2(false),
        [id3v2(false), vec![0xFF; 2000]].concat(),
        b"ID3\x04\0\0\x7F\x7F\x7F\x7F".to_vec(),
    ] {
        assert_eq!(
            inspect_bytes("mp3-none", &file, Format::Mp3),
            Inspected::default()
        );
    }
}

// AAC

/// An ADTS frame of AAC LC at 44.1 kHz, stereo, without a CRC.
fn adts_frame(payload: usize) -> Vec<u8> {
    let length = u16::try_from(payload + 7).unwrap();
    let [high, low] = length.to_be_bytes();
    let mut frame = vec![
        0xFF,
        0xF1,
        0x50,
        0x80 | (high >> 3) & 0x03,
        high << 5 | low >> 3,
        (low & 0x07) << 5 | 0x1F,
        0xFC,
    ];
    frame.resize(payload + 7, 0x21);
    frame
}

#[test]
fn an_aac_duration_is_summed_over_its_adts_frames() {
    let frames = 100;
    let mut file = Vec::new();
    for i in 0..frames {
        file.extend_from_slice(&adts_frame(150 + i * 7 % 200));
    }
    file.extend_from_slice(b"TAG junk");
    let found = inspect_bytes("aac", &file, Format::Aac);
    assert_close(found.duration_ms, frames as u64 * 1024, 44_100);
    // Two raw data blocks a frame: twice the samples.
    let mut doubled = adts_frame(300);
    doubled[6] |= 1;
    let found = inspect_bytes("aac-blocks", &doubled.repeat(10), Format::Aac);
    assert_close(found.duration_ms, 20 * 1024, 44_100);
}

#[test]
fn an_aac_frame_longer_than_the_file_is_not_counted() {
    let mut file = adts_frame(100);
    file.extend_from_slice(&adts_frame(8000)[..500]);
    let found = inspect_bytes("aac-cut", &file, Format::Aac);
    assert_close(found.duration_ms, 1024, 44_100);
    assert_eq!(
        inspect_bytes("aac-none", &adts_frame(8000)[..500], Format::Aac),
        Inspected::default()
    );
}

// Ogg and PDF

#[test]
fn an_opus_duration_is_the_last_granule_less_the_pre_skip() {
    let mut ogg = b"OggS\0\x02".to_vec();
    ogg.extend_from_slice(&[0; 20]);
    ogg.extend_from_slice(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0");
    ogg.extend_from_slice(&[3; 3000]);
    ogg.extend_from_slice(b"OggS\0\x04");
    ogg.extend_from_slice(&(48_000u64 * 5 + 312).to_le_bytes());
    ogg.extend_from_slice(&[0; 20]);
    assert_eq!(
        inspect_bytes("opus", &ogg, Format::Ogg).duration_ms,
        Some(5_000)
    );
    // A granule position near the end of time is no duration.
    let end = ogg.len() - 28;
    ogg[end..end + 8].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    assert_eq!(
        inspect_bytes("opus-huge", &ogg, Format::Ogg).duration_ms,
        None
    );
}

#[test]
fn pdf_pages_are_counted_and_the_page_tree_is_not() {
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 3 >> endobj\n\
                2 0 obj << /Type /Page >> endobj 3 0 obj <</Type/Page/Parent 1 0 R>> endobj\n\
                4 0 obj << /Type\n/Page >> endobj\n%%EOF";
    assert_eq!(inspect_bytes("pdf", pdf, Format::Pdf).pages, Some(3));
    assert_eq!(
        inspect_bytes("garbage", b"%PDF-1.4 nothing here", Format::Pdf),
        Inspected::default()
    );
}

// Hostile input

const ALL: [Format; 12] = [
    Format::Jpeg,
    Format::Png,
    Format::Gif,
    Format::WebP,
    Format::Ogg,
    Format::Mp3,
    Format::Aac,
    Format::Mp4,
    Format::WebM,
    Format::Pdf,
    Format::OfficeZip,
    Format::OfficeOle,
];

#[test]
fn random_bytes_behind_any_magic_are_inspected_without_panicking() {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let scratch = TempFile::new("noise", &[]);
    let magics: [&[u8]; 6] = [
        b"\0\0\0\x18ftypisom",
        b"\x1A\x45\xDF\xA3",
        b"ID3\x04\0\0",
        b"\xFF\xFB",
        b"\xFF\xF1",
        b"OggS",
    ];
    for _ in 0..300 {
        let magic = magics[noise.below(magics.len())];
        let len = noise.below(4096);
        let bytes = [magic, &noise.bytes(len)].concat();
        for format in ALL {
            inspect(scratch.rewrite(&bytes), format);
        }
    }
}

#[test]
fn mangled_valid_files_are_inspected_without_panicking() {
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    let scratch = TempFile::new("mangled", &[]);
    let mp3 = [id3v2(true), mp3_frame(false).repeat(20)].concat();
    let adts = adts_frame(200).repeat(20);
    let valid: [(Vec<u8>, Format); 5] = [
        (mp4_with_tracks(0), Format::Mp4),
        (mp4_with_tracks(1), Format::Mp4),
        (webm(&4500f64.to_be_bytes()), Format::WebM),
        (mp3, Format::Mp3),
        (adts, Format::Aac),
    ];
    for (file, format) in &valid {
        for _ in 0..200 {
            let mut bytes = file.clone();
            for _ in 0..1 + noise.below(8) {
                let at = noise.below(bytes.len());
                bytes[at] = match noise.below(3) {
                    0 => 0xFF,
                    1 => 0x01,
                    _ => noise.bytes(1)[0],
                };
            }
            let cut = bytes.len() - noise.below(bytes.len() / 4);
            inspect(scratch.rewrite(&bytes[..cut]), *format);
        }
    }
}

#[test]
fn a_portrait_mp4_turned_by_its_track_matrix_is_measured_as_shown() {
    for version in [0u8, 1] {
        let mut file = mp4_with_tracks(version);
        // The video track's header is the last `tkhd`; its matrix's `b` is 1.0: a
        // quarter turn.
        let at = file
            .windows(4)
            .rposition(|window| window == b"tkhd")
            .map(|at| at + 4)
            .unwrap_or_default();
        let b = at + 4 + if version == 1 { 52 } else { 40 };
        file[b..b + 4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        let found = inspect_bytes("mp4-portrait", &file, Format::Mp4);
        assert_eq!((found.width, found.height), (Some(720), Some(1280)));
    }
}

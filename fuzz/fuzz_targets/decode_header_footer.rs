//! Segment header and seal footer decoders on arbitrary bytes: never panic,
//! and whatever decodes re-encodes to exactly the bytes it came from. The
//! input is a would-be segment file: a 64-byte header, then a footer frame.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use seglog_core::inspect::{Frame, HEADER_LEN, SegmentHeader, decode_frame, encode_marker};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = SegmentHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..HEADER_LEN as usize], "header round trip changed the bytes");
    }
    let rest = data.get(HEADER_LEN as usize..).unwrap_or_default();
    if let Ok((Frame::Marker(m), len)) = decode_frame(rest) {
        let mut out = Vec::new();
        encode_marker(&mut out, &m);
        assert_eq!(&out[..], &rest[..len], "footer round trip changed the bytes");
    }
});

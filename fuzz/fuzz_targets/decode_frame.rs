//! Frame decoder on arbitrary bytes: never panics, and whatever decodes
//! re-encodes to exactly the bytes it came from.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use seglog_core::inspect::{Frame, decode_frame, encode_marker, encode_record};

fuzz_target!(|data: &[u8]| {
    if let Ok((frame, len)) = decode_frame(data) {
        let mut out = Vec::new();
        match frame {
            Frame::Record(r) => encode_record(&mut out, &r),
            Frame::Marker(m) => encode_marker(&mut out, &m),
        }
        assert_eq!(&out[..], &data[..len], "decode/encode round trip changed the bytes");
    }
});

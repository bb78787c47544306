//! Index file, `log.meta` and compaction manifest decoders on arbitrary
//! bytes: never panic,
//! never allocate more than the input justifies, and whatever decodes
//! re-encodes to exactly the bytes it came from.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a fuzz target or tool fails loudly: a panic is the finding")]
#![no_main]

use libfuzzer_sys::fuzz_target;
use log_core::inspect::{IndexKind, Manifest, Meta, decode_index, encode_index};

fuzz_target!(|data: &[u8]| {
    for kind in [IndexKind::Offset, IndexKind::Time] {
        if let Ok(idx) = decode_index(kind, data) {
            assert_eq!(encode_index(kind, &idx), data, "index round trip changed the bytes");
        }
    }
    if let Ok(m) = Meta::decode(data) {
        assert_eq!(m.encode(), data, "log.meta round trip changed the bytes");
    }
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(m.encode(), data, "compaction manifest round trip changed the bytes");
    }
});

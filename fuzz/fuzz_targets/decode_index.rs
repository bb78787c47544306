//! Index file, `log.meta` and compaction manifest decoders on arbitrary
//! bytes: never panic, never allocate more than the input justifies, and
//! whatever decodes re-encodes to what decodes the same; in the version
//! this build writes, to exactly the bytes it came from (an older version,
//! still read, is re-encoded in the current one).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use seglog_core::inspect::{IndexKind, Manifest, Meta, decode_index, encode_index};

fuzz_target!(|data: &[u8]| {
    for kind in [IndexKind::Offset, IndexKind::Time] {
        if let Ok(idx) = decode_index(kind, data) {
            assert_eq!(encode_index(kind, &idx), data, "index round trip changed the bytes");
        }
    }
    if let Ok(m) = Meta::decode(data) {
        let again = m.encode();
        assert_eq!(Meta::decode(&again).as_ref(), Ok(&m), "log.meta round trip changed the contents");
        if again[8..12] == data[8..12] {
            assert_eq!(again, data, "log.meta round trip changed the bytes");
        }
    }
    if let Ok(m) = Manifest::decode(data) {
        let again = m.encode();
        assert_eq!(Manifest::decode(&again).as_ref(), Ok(&m), "compaction manifest round trip changed the contents");
        if again[8..12] == data[8..12] {
            assert_eq!(again, data, "compaction manifest round trip changed the bytes");
        }
    }
});

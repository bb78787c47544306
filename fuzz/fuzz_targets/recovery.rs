//! Recovery on arbitrary files: the input is a log directory (segment,
//! index, meta and temporary files with arbitrary contents, see
//! `seglog_fuzz::parse_dir`) on a `SimFs`. Opening it (read-only and
//! read-write) and reading everything must never panic and only return
//! typed errors; every record returned must be a valid frame that is
//! present, byte for byte, in the segment file it was read from.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    seglog_fuzz::check_recovery(data);
});

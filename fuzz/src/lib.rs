//! Shared code of the fuzz targets: the log-directory input format of the
//! `recovery` target, its check, and the writer used to build seed corpora.
//!
//! Directory format: a sequence of entries `[selector: u8][len: u16 LE][len
//! bytes]` (a short last entry takes what is left). The selector names the
//! file: `selector % 6` picks the kind (segment, offset index, time index,
//! `log.meta`, a segment temporary, an unrelated file) and `selector / 6 % 4`
//! the base offset (0, 3, 7, 100).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "fuzz harness: a failure must be loud")]

use std::path::Path;
use std::sync::Arc;

use seglog_core::inspect::{self, IndexKind, index_file_name, segment_file_name};
use seglog_core::{Config, FileSystem, FixedClock, Log, OpenMode, Options};
use sim_fs::{FaultConfig, SimFs};

/// Where the fuzzed directory lives on the simulated disk.
pub const DIR: &str = "/fuzz/log";
const BASES: [u64; 4] = [0, 3, 7, 100];

fn name_for(selector: u8) -> String {
    let base = BASES[usize::from(selector / 6) % 4];
    match selector % 6 {
        0 => segment_file_name(base),
        1 => index_file_name(IndexKind::Offset, base),
        2 => index_file_name(IndexKind::Time, base),
        3 => inspect::META_FILE_NAME.to_string(),
        4 => format!("{}.tmp", segment_file_name(base)),
        _ => "notes.txt".to_string(),
    }
}

fn selector_for(name: &str) -> Option<u8> {
    (0..24u8).find(|&s| name_for(s) == name)
}

/// Parses the input into (file name, contents); later entries for the same
/// name replace earlier ones.
pub fn parse_dir(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some((&sel, rest)) = data.split_first() {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
            _ => (rest.len(), &[][..]),
        };
        let len = len.min(rest.len());
        let (body, rest) = rest.split_at(len);
        let name = name_for(sel);
        files.retain(|(n, _)| *n != name);
        files.push((name, body.to_vec()));
        data = rest;
    }
    files
}

/// Encodes files (those the format can name) as a `recovery` input.
pub fn encode_dir(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in files {
        let Some(sel) = selector_for(name) else { continue };
        let body = &body[..body.len().min(usize::from(u16::MAX))];
        out.push(sel);
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn options(fs: &SimFs, read_only: bool) -> Options {
    Options {
        fs: fs.shared(),
        clock: Arc::new(FixedClock(1_000)),
        config: Config { segment_bytes_max: 4096, index_interval_bytes: 64, ..Config::default() },
        read_only,
    }
}

/// The `recovery` target's body.
pub fn check_recovery(data: &[u8]) {
    let files = parse_dir(data);
    let fs = SimFs::new(0, FaultConfig::default());
    fs.create_dir_all(Path::new(DIR)).unwrap();
    for (name, body) in &files {
        let f = fs.open(&Path::new(DIR).join(name), OpenMode::CreateNew).unwrap();
        seglog_core::write_all_at(&*f, body, 0).unwrap();
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new(DIR)).unwrap();
    for read_only in [true, false] {
        let Ok(log) = Log::open_with(Path::new(DIR), options(&fs, read_only)) else { continue };
        check_log(&fs, &log);
        let _ = log.verify();
        if !read_only {
            // The recovered log must take appends and keep them.
            let mut log = log;
            let before = log.next_offset();
            if log.append(seglog_core::Entry::new(b"after recovery")).is_ok() && log.sync().is_ok() {
                drop(log);
                if let Ok(again) = Log::open_with(Path::new(DIR), options(&fs, true)) {
                    assert_eq!(again.next_offset(), before + 1, "an appended, synced record was lost on reopen");
                    check_log(&fs, &again);
                }
            }
        }
    }
}

/// Reads every record; each must be a frame present in its segment file,
/// written in the epoch `log.meta` gives its offset.
fn check_log(fs: &SimFs, log: &Log) {
    let segments = log.segments();
    let meta = fs
        .contents(&Path::new(DIR).join(inspect::META_FILE_NAME))
        .and_then(|b| inspect::Meta::decode(&b).ok())
        .unwrap_or_default();
    for item in log.iter(..) {
        let Ok(rec) = item else { return };
        let seg = segments
            .iter()
            .rev()
            .find(|s| s.base_offset <= rec.offset)
            .unwrap_or_else(|| panic!("record {} lies in no segment", rec.offset));
        let bytes = fs.contents(&seg.path).unwrap_or_default();
        let mut frame = Vec::new();
        inspect::encode_record(
            &mut frame,
            &seglog_core::RecordRef {
                offset: rec.offset,
                timestamp_ms: rec.timestamp_ms,
                flags: rec.flags,
                key: rec.key.as_deref(),
                value: &rec.value,
                epoch: meta.epochs.expected_tag(rec.offset),
            },
        );
        assert!(
            bytes.windows(frame.len()).any(|w| w == frame),
            "record {} is not a frame of {}",
            rec.offset,
            seg.path.display()
        );
    }
}

//! Writes the committed seed corpora under `fuzz/seeds/`: real log
//! directories (for `recovery`), their files (for the decoders), scenario
//! files (for `scenario`) and a few schedules. Run from the repository root:
//! `RUSTFLAGS="--cfg madsim --cfg tokio_unstable" cargo run --manifest-path fuzz/Cargo.toml --bin gen-corpus`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a generator: failures must be loud")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seglog_core::{Config, Entry, FileSystem, FixedClock, Log, Options};
use seglog_fuzz::{DIR, encode_dir};
use sim_fs::{FaultConfig, SimFs};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn files_of(fs: &SimFs) -> Vec<(String, Vec<u8>)> {
    let mut names = fs.read_dir(Path::new(DIR)).unwrap();
    names.sort();
    names.into_iter().map(|n| (n.clone(), fs.contents(&Path::new(DIR).join(&n)).unwrap_or_default())).collect()
}

/// A log directory on `SimFs` after `n` appends and the given operations;
/// its files.
fn build_case(
    n: u64,
    close: bool,
    cut: Option<u64>,
    drop_before: Option<u64>,
    compact: Option<u64>,
) -> Vec<(String, Vec<u8>)> {
    let fs = SimFs::new(1, FaultConfig::default());
    let options = Options {
        fs: fs.shared(),
        clock: Arc::new(FixedClock(1_000)),
        config: Config { segment_bytes_max: 4096, index_interval_bytes: 64, ..Config::default() },
        read_only: false,
    };
    let mut log = Log::open_with(Path::new(DIR), options).unwrap();
    for i in 0..n {
        let v = vec![i as u8; (i as usize * 37) % 300];
        let key = format!("k{}", i % 5);
        let e = if i % 3 == 0 { Entry::new(&v).with_key(key.as_bytes()) } else { Entry::new(&v) };
        log.append(e).unwrap();
        if i % 7 == 6 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    if let Some(at) = cut {
        log.truncate_from(at).unwrap();
    }
    if let Some(at) = drop_before {
        log.truncate_before(at).unwrap();
    }
    if let Some(k) = compact {
        log.roll().unwrap();
        if k != u64::MAX {
            fs.power_off_after(k);
        }
        let res = log.compact();
        assert!(res.is_ok() || fs.is_powered_off(), "{res:?}");
        fs.power_on();
    }
    if close {
        log.close().unwrap();
    } else {
        drop(log);
    }
    files_of(&fs)
}

fn main() {
    let root = PathBuf::from("fuzz/seeds");
    // Log directories in several states.
    // (name, records, clean close, truncate_from, truncate_before,
    // compaction: None, or Some(power failure before fs step k; u64::MAX
    // for none))
    type Case = (&'static str, u64, bool, Option<u64>, Option<u64>, Option<u64>);
    let cases: [Case; 6] = [
        ("active-only", 5, false, None, None, None),
        ("sealed-and-active", 40, false, None, None, None),
        ("clean-close", 25, true, None, None, None),
        ("suffix-truncated", 30, false, Some(12), None, None),
        ("prefix-truncated", 30, false, None, Some(9), None),
        ("compacted", 40, false, None, None, Some(u64::MAX)),
    ];
    // Power failures inside a compaction swap, at every step after which the
    // manifest is durable (recovery must finish the swap).
    let mut interrupted = Vec::new();
    for k in 0..200u64 {
        let files = build_case(40, false, None, None, Some(k));
        if files.iter().any(|(n, _)| n == "log.compaction") {
            interrupted.push((k, files));
        }
    }
    assert!(!interrupted.is_empty(), "no power failure left a compaction manifest behind");
    for (k, files) in interrupted.iter().take(4) {
        write(&root.join("recovery"), &format!("compaction-interrupted-{k}"), &encode_dir(files));
    }
    for (name, n, close, cut, drop_before, compact) in cases {
        let files = build_case(n, close, cut, drop_before, compact);
        write(&root.join("recovery"), name, &encode_dir(&files));
        for (fname, body) in &files {
            let target = if fname.ends_with(".log") {
                "decode_header_footer"
            } else if fname.ends_with("index") || fname == "log.meta" {
                "decode_index"
            } else {
                continue;
            };
            write(&root.join(target), &format!("{name}-{fname}"), body);
            if fname.ends_with(".log") {
                // Each frame alone, for the frame decoder.
                let mut pos = seglog_core::inspect::HEADER_LEN as usize;
                let mut k = 0;
                while let Ok((_, len)) = seglog_core::inspect::decode_frame(&body[pos.min(body.len())..]) {
                    if k < 4 {
                        write(&root.join("decode_frame"), &format!("{name}-{fname}-{k}"), &body[pos..pos + len]);
                    }
                    pos += len;
                    k += 1;
                }
            }
        }
    }
    // A compaction manifest, for the decoder.
    let entry = |base, next_offset, len| seglog_core::inspect::ManifestEntry {
        base,
        next_offset,
        output: Some(seglog_core::inspect::FileIdentity { len, crc: 0x5EED }),
    };
    let m = seglog_core::inspect::Manifest { entries: vec![entry(0, 10, 200), entry(10, 25, 300), entry(40, 41, 90)] };
    write(&root.join("decode_index"), "manifest", &m.encode());
    // Scenario files, as `sim-harness save-scenario` writes them.
    for seed in 0..8u64 {
        let path = root.join("scenario").join(format!("seed-{seed}.scenario"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        sim_harness::scenario::Scenario::new(seed, 200).save(&path).unwrap();
    }
    // Schedules: bytes that decode to varied step lists.
    for (i, len) in [16usize, 64, 256, 1024].into_iter().enumerate() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ i as u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        write(&root.join("schedule"), &format!("random-{len}"), &bytes);
    }
    println!("seed corpora written under {}", root.display());
}

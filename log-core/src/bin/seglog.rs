//! `seglog`: the operator's tool for a log directory on the real filesystem.
//! Errors are one line on stderr and a non-zero exit code.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seglog_core::salvage::{Found, salvage_dir};
use seglog_core::{Config, Entry, Log, StdFs};

#[derive(Parser)]
#[command(name = "seglog", version, about = "Inspect, verify, repair and edit a segmented log directory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the segments: base, last offset, records, bytes, time range, sealed.
    Info {
        /// The log directory.
        dir: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Timestamps as milliseconds since the Unix epoch, not RFC 3339.
        #[arg(long)]
        raw_timestamps: bool,
    },
    /// Print records (offset, timestamp, key, value). Keys and values are
    /// shown as text when they are UTF-8 without control characters, else
    /// as `hex:` and their bytes in hex.
    Dump {
        /// The log directory.
        dir: PathBuf,
        /// First offset to print (default: the log's first).
        #[arg(long)]
        from: Option<u64>,
        /// How many records to print at most.
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// Print keys and values as hex instead of text.
        #[arg(long)]
        hex: bool,
        /// One JSON object per record, one per line (`key`/`value` as text
        /// when they are UTF-8, else `key_hex`/`value_hex`).
        #[arg(long)]
        json: bool,
        /// Timestamps as milliseconds since the Unix epoch, not RFC 3339.
        #[arg(long)]
        raw_timestamps: bool,
    },
    /// Append records, all or nothing: every input is read and checked
    /// first, then appended in synced batches; if anything fails, what was
    /// appended is truncated away again and the command says so.
    ///
    /// Values come from `--value` (text), `--value-hex` or `--value-file`
    /// (each repeatable, one record each, in order), or else one record per
    /// line of standard input (UTF-8 text, or hex with `--hex`).
    Append {
        /// The log directory.
        dir: PathBuf,
        /// Start a new log if the directory holds none (else refused, so
        /// that a mistyped path does not become a log).
        #[arg(long)]
        create: bool,
        /// A value as text (repeatable).
        #[arg(long, conflicts_with_all = ["value_hex", "value_file", "hex"])]
        value: Vec<String>,
        /// A value in hex (repeatable).
        #[arg(long, conflicts_with_all = ["value_file", "hex"])]
        value_hex: Vec<String>,
        /// A file whose bytes are one value (repeatable).
        #[arg(long, conflicts_with = "hex")]
        value_file: Vec<PathBuf>,
        /// Standard input lines are values in hex.
        #[arg(long)]
        hex: bool,
        /// The key of every record, as text.
        #[arg(long, conflicts_with = "key_hex")]
        key: Option<String>,
        /// The key of every record, in hex.
        #[arg(long)]
        key_hex: Option<String>,
    },
    /// Check every record of every segment, sealed ones included. Exits 1
    /// and names the file and byte position of each problem.
    Verify {
        /// The log directory.
        dir: PathBuf,
        /// One JSON object: counts and every problem.
        #[arg(long)]
        json: bool,
    },
    /// Copy every record that still verifies into a new log at `--out`, and
    /// report exactly what could not be saved.
    Salvage {
        /// The damaged log directory (only read).
        dir: PathBuf,
        /// An empty directory for the new log.
        #[arg(long)]
        out: PathBuf,
        /// Keep every record at its original offset: the new log starts at
        /// the first salvaged offset, and offsets whose records were lost
        /// become holes (reads of them fail with "holds no record",
        /// iteration skips them), as key compaction leaves them. Without
        /// it, records are renumbered densely from 0. If interrupted,
        /// remove `--out` and run again.
        #[arg(long)]
        keep_offsets: bool,
    },
    /// Key compaction of the sealed segments: keep the latest record of each
    /// key (and every unkeyed record), drop tombstones older than the
    /// retention (by their own timestamps), merge small segments. Offsets
    /// do not change. Crash-safe: an interrupted run is finished or undone
    /// by the next open.
    Compact {
        /// The log directory.
        dir: PathBuf,
        /// Keep tombstones this many milliseconds after their timestamp.
        #[arg(long, default_value_t = 86_400_000)]
        tombstone_retention_ms: u64,
        /// Memory budget of the key map, in MiB (more keys: more passes).
        #[arg(long, default_value_t = 64)]
        map_mib: u64,
        /// Seal the active segment first, so that its records are compacted
        /// too (the next append starts a new segment).
        #[arg(long)]
        roll: bool,
        /// One JSON object: the compaction report.
        #[arg(long)]
        json: bool,
    },
    /// Truncate the log: drop records before `--before` or from `--from` on.
    Truncate {
        /// The log directory.
        dir: PathBuf,
        /// Drop every record before this offset (prefix truncation).
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        before: Option<u64>,
        /// Drop this record and every later one (suffix truncation).
        #[arg(long)]
        from: Option<u64>,
    },
}

/// Bytes as an operator reads them: the text itself when it is UTF-8
/// without control characters (and does not itself start with `hex:`),
/// else `hex:` and the bytes in hex; always hex with `hex`.
fn show(bytes: &[u8], hex: bool) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !hex && !text.chars().any(char::is_control) && !text.starts_with("hex:") => text.to_string(),
        _ if hex => hex::encode(bytes),
        _ => format!("hex:{}", hex::encode(bytes)),
    }
}

/// A record timestamp: RFC 3339 in UTC with milliseconds, or the raw
/// milliseconds since the Unix epoch (`raw`, or past the year 9999).
fn ts(ms: u64, raw: bool) -> String {
    const YEAR_10000_MS: u64 = 253_402_300_800_000;
    if raw || ms >= YEAR_10000_MS {
        return ms.to_string();
    }
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// Bytes as JSON fields: `{name: text}` when UTF-8, else `{name_hex: hex}`.
fn json_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes {
        None => {
            obj.insert(name.to_string(), serde_json::Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => {
                obj.insert(name.to_string(), text.into());
            }
            Err(_) => {
                obj.insert(format!("{name}_hex"), hex::encode(b).into());
            }
        },
    }
}

/// "1 record", "2 records".
/// `seglog salvage --keep-offsets`: every record that verifies, at its own
/// offset, in a new log at `out`; holes and damage reported.
fn salvage_keeping_offsets(dir: &Path, out: &Path) -> Result<ExitCode, String> {
    let e = |err: seglog_core::Error| err.to_string();
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty; salvage into an empty directory", out.display()));
    }
    let found = salvage_dir(&StdFs, dir).map_err(e)?;
    let mut records = Vec::new();
    let mut damage = Vec::new();
    for f in found {
        match f {
            Found::Record(r) => records.push(r),
            Found::Damaged { path, from, to } => {
                damage.push(format!("{}: bytes {from}..{to} hold no verifiable record", path.display()));
            }
        }
    }
    let fs: std::sync::Arc<dyn seglog_core::FileSystem> = std::sync::Arc::new(StdFs);
    let now = seglog_core::Clock::now_ms(&seglog_core::SystemClock);
    let written = seglog_core::salvage::write_sparse_log(&fs, out, &records, &Config::default(), now).map_err(e)?;
    // The new log must open and read back every record it was given.
    let log = Log::open_read_only(out, Config::default()).map_err(e)?;
    let readable = log.iter(..).count() as u64;
    if readable != written.records {
        return Err(format!("the salvaged log reads back {readable} records, not {}", written.records));
    }
    for l in &damage {
        println!("lost: {l}");
    }
    for h in &written.holes {
        println!("lost: offsets {}..{} hold no record (holes in {})", h.start, h.end, out.display());
    }
    for o in &written.skipped {
        println!("lost: a second record at offset {o} (out of order or a duplicate) was not kept");
    }
    println!(
        "salvaged {} at their offsets {}..{} into {}; {}",
        count(written.records, "record", "records"),
        log.first_offset(),
        log.next_offset(),
        out.display(),
        count((damage.len() + written.holes.len() + written.skipped.len()) as u64, "problem", "problems")
    );
    Ok(ExitCode::SUCCESS)
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

/// Opens an existing log read-write; a directory that holds none is
/// refused unless `create` (a mistyped path must not become a log).
fn open_existing(dir: &std::path::Path, config: Config, create: bool) -> Result<Log, String> {
    if !create {
        match Log::open_read_only(dir, config.clone()) {
            Ok(_) => {}
            Err(seglog_core::Error::NoLog { .. }) => {
                return Err(format!("`{}` holds no log; pass --create to start a new one there", dir.display()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Log::open(dir, config).map_err(|e| e.to_string())
}

/// One value per line of standard input, read whole before anything is
/// appended: UTF-8 text (the line ending removed), or hex with `hex`.
fn read_stdin_values(hex: bool) -> Result<Vec<Vec<u8>>, String> {
    let mut values = Vec::new();
    let mut input = std::io::stdin().lock();
    for n in 1.. {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line).map_err(|err| format!("reading standard input: {err}"))? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let value = if hex {
            let text = std::str::from_utf8(&line).map_err(|_| format!("line {n}: not hex; nothing was appended"))?;
            hex::decode(text.trim()).map_err(|err| format!("line {n}: {err}; nothing was appended"))?
        } else {
            std::str::from_utf8(&line).map_err(|err| {
                format!(
                    "line {n}: not UTF-8 ({err}); nothing was appended (use --hex or --value-file for binary values)"
                )
            })?;
            line
        };
        values.push(value);
    }
    Ok(values)
}

/// Bytes of records per synced batch.
const APPEND_BATCH_BYTES: usize = 16 << 20;

/// Appends `entries` in synced batches (the log syncs every batch); if one
/// fails, the batches before it are truncated away again, so either every
/// entry is in the log and durable or none is. Says exactly what happened
/// when even that fails.
fn append_all_or_nothing(log: &mut Log, entries: &[Entry<'_>], dir: &std::path::Path) -> Result<(), String> {
    let start = log.next_offset();
    let mut i = 0;
    while i < entries.len() {
        let mut bytes = 0;
        let n = entries
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|e| {
                bytes += e.value.len() + e.key.map_or(0, <[u8]>::len) + 32;
                bytes <= APPEND_BATCH_BYTES
            })
            .count()
            .max(1);
        let batch = entries.get(i..i + n).unwrap_or_default();
        if let Err(err) = log.append_batch(batch) {
            let appended = log.next_offset();
            if appended == start {
                return Err(match err {
                    seglog_core::Error::DiskFull { .. } | seglog_core::Error::RecordTooLarge { .. } => err.to_string(),
                    _ => format!(
                        "{err}; nothing was acknowledged, but records from offset {start} on may still show up when the log is reopened: check with `seglog dump {} --from {start}` before retrying",
                        dir.display()
                    ),
                });
            }
            // Earlier batches were synced: take them back out.
            return Err(match log.truncate_from(start) {
                Ok(()) => format!(
                    "{err}; the {} records already appended were truncated away again: nothing was appended",
                    appended - start
                ),
                Err(undo) => format!(
                    "{err}; records {start}..{appended} had been appended and synced, and truncating them away failed too ({undo}): run `seglog truncate {} --from {start}` once the cause is fixed, then retry",
                    dir.display()
                ),
            });
        }
        i += n;
    }
    Ok(())
}

fn run(cmd: Cmd) -> Result<ExitCode, String> {
    let e = |e: seglog_core::Error| e.to_string();
    match cmd {
        Cmd::Info { dir, json, raw_timestamps } => {
            let log = Log::open_read_only(&dir, Config::default()).map_err(e)?;
            let first = log.first_offset();
            // Records a reader can get: those at or past the first offset (a
            // prefix truncation leaves older ones in the first segment until
            // it is deleted as a whole). A dense segment holds every offset
            // of its range; a compacted one straddling the first offset is
            // counted by reading its part.
            let mut readable = 0u64;
            for s in log.segments() {
                let Some(last) = s.last_offset else { continue };
                if s.base_offset >= first {
                    readable += s.n_records;
                } else if last >= first {
                    readable += if s.compacted {
                        let mut n = 0u64;
                        let mut reader = log.reader(first..=last);
                        while let Some(r) = reader.next() {
                            r.map_err(e)?;
                            n += 1;
                        }
                        n
                    } else {
                        last - first + 1
                    };
                }
            }
            let n_segments = log.segments().len() as u64;
            if json {
                let segments: Vec<serde_json::Value> = log
                    .segments()
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "base_offset": s.base_offset,
                            "last_offset": s.last_offset,
                            "records": s.n_records,
                            "bytes": s.bytes,
                            "min_timestamp": s.min_timestamp_ms.map(|t| ts(t, raw_timestamps)),
                            "max_timestamp": s.max_timestamp_ms.map(|t| ts(t, raw_timestamps)),
                            "sealed": s.sealed,
                            "compacted": s.compacted,
                        })
                    })
                    .collect();
                let info = serde_json::json!({
                    "dir": dir.display().to_string(),
                    "first_offset": first,
                    "next_offset": log.next_offset(),
                    "readable_records": readable,
                    "segments": segments,
                });
                println!("{info}");
                return Ok(ExitCode::SUCCESS);
            }
            let gaps = if log.segments().iter().any(|s| s.compacted) { ", compaction left gaps" } else { "" };
            println!(
                "log {}: offsets {first}..{} ({} readable{gaps}), {}",
                dir.display(),
                log.next_offset(),
                count(readable, "record", "records"),
                count(n_segments, "segment", "segments"),
            );
            let w = if raw_timestamps { 15 } else { 24 };
            println!(
                "{:>20} {:>20} {:>10} {:>12} {:>w$} {:>w$}  sealed",
                "base", "last", "records", "bytes", "min ts", "max ts"
            );
            // `last` is the last offset a segment covers; in a compacted
            // segment its record may be gone.
            for s in log.segments() {
                let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
                let time = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| ts(v, raw_timestamps));
                println!(
                    "{:>20} {:>20} {:>10} {:>12} {:>w$} {:>w$}  {}",
                    s.base_offset,
                    opt(s.last_offset),
                    s.n_records,
                    s.bytes,
                    time(s.min_timestamp_ms),
                    time(s.max_timestamp_ms),
                    match (s.sealed, s.compacted) {
                        (true, true) => "yes (compacted)",
                        (true, false) => "yes",
                        _ => "no (active)",
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dump { dir, from, count: n, hex, json, raw_timestamps } => {
            let log = Log::open_read_only(&dir, Config::default()).map_err(e)?;
            let (first, next) = (log.first_offset(), log.next_offset());
            let start = from.unwrap_or(first);
            if start < first {
                return Err(format!(
                    "offset {start} is below the log's first offset {first} (truncated or deleted by retention); the log holds offsets {first}..{next}"
                ));
            }
            if start >= next && next > first {
                return Err(format!("offset {start} is past the end of the log, which holds offsets {first}..{next}"));
            }
            let mut out = std::io::stdout().lock();
            let mut reader = log.reader(start..start.saturating_add(n));
            while let Some(rec) = reader.next() {
                let r = rec.map_err(e)?;
                if json {
                    let mut obj = serde_json::Map::new();
                    obj.insert("offset".into(), r.offset.into());
                    obj.insert("timestamp".into(), ts(r.timestamp_ms, raw_timestamps).into());
                    obj.insert("tombstone".into(), r.flags.tombstone().into());
                    json_bytes(&mut obj, "key", r.key);
                    json_bytes(&mut obj, "value", Some(r.value));
                    writeln!(out, "{}", serde_json::Value::Object(obj)).map_err(|e| e.to_string())?;
                    continue;
                }
                let key = r.key.map_or_else(|| "-".to_string(), |k| show(k, hex));
                let tomb = if r.flags.tombstone() { " (tombstone)" } else { "" };
                let time = ts(r.timestamp_ms, raw_timestamps);
                writeln!(out, "{} ts={time} key={key}{tomb} value={}", r.offset, show(r.value, hex))
                    .map_err(|e| e.to_string())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Append { dir, create, value, value_hex, value_file, hex, key, key_hex } => {
            let key = match (key, key_hex) {
                (Some(k), _) => Some(k.into_bytes()),
                (None, Some(h)) => Some(hex::decode(h.trim()).map_err(|err| format!("--key-hex: {err}"))?),
                (None, None) => None,
            };
            // Everything is read and checked before the log is opened.
            let values = if !value.is_empty() {
                value.into_iter().map(String::into_bytes).collect()
            } else if !value_hex.is_empty() {
                let decode = |(i, h): (usize, String)| {
                    hex::decode(h.trim()).map_err(|err| format!("--value-hex number {}: {err}", i + 1))
                };
                value_hex.into_iter().enumerate().map(decode).collect::<Result<Vec<_>, _>>()?
            } else if !value_file.is_empty() {
                let read = |p: PathBuf| std::fs::read(&p).map_err(|err| format!("reading `{}`: {err}", p.display()));
                value_file.into_iter().map(read).collect::<Result<Vec<_>, _>>()?
            } else {
                read_stdin_values(hex)?
            };
            let limit = u64::from(Config::default().record_bytes_max);
            for (i, v) in values.iter().enumerate() {
                let size = (v.len() + key.as_ref().map_or(0, Vec::len)) as u64;
                if size > limit {
                    return Err(format!(
                        "record {} is {size} bytes, more than the limit of {limit}; nothing was appended",
                        i + 1
                    ));
                }
            }
            let entries: Vec<Entry<'_>> = values
                .iter()
                .map(|v| {
                    let mut entry = Entry::new(v);
                    entry.key = key.as_deref();
                    entry
                })
                .collect();
            let config = Config { sync: seglog_core::SyncPolicy::Always, ..Config::default() };
            let mut log = open_existing(&dir, config, create)?;
            let start = log.next_offset();
            append_all_or_nothing(&mut log, &entries, &dir)?;
            log.close().map_err(e)?;
            let n = entries.len() as u64;
            if n == 0 {
                println!("appended nothing (no input)");
            } else {
                println!("appended {} at offsets {start}..{}, synced", count(n, "record", "records"), start + n);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { dir, json } => {
            let log = Log::open_read_only(&dir, Config::default()).map_err(e)?;
            let total: u64 = log.segments().iter().map(|s| s.bytes).sum();
            let bar = (total > 64 << 20 && std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .then(|| indicatif::ProgressBar::new(log.segments().len() as u64));
            let report = log.verify_with(|_| {
                if let Some(b) = &bar {
                    b.inc(1);
                }
            });
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if json {
                let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
                let v = serde_json::json!({
                    "segments": report.n_segments,
                    "bytes": report.bytes,
                    "records_ok": report.n_records,
                    "problems": problems,
                });
                println!("{v}");
                return Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            for p in &report.problems {
                println!("problem: {p}");
            }
            println!(
                "verified {}, {}: {} ok, {}",
                count(report.n_segments, "segment", "segments"),
                count(report.bytes, "byte", "bytes"),
                count(report.n_records, "record", "records"),
                count(report.problems.len() as u64, "problem", "problems"),
            );
            Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Salvage { dir, out, keep_offsets: true } => salvage_keeping_offsets(&dir, &out),
        Cmd::Salvage { dir, out, keep_offsets: false } => {
            let found = salvage_dir(&StdFs, &dir).map_err(e)?;
            let mut target = Log::open(&out, Config::default()).map_err(e)?;
            if target.next_offset() != 0 {
                return Err(format!("{} already holds a log; salvage into an empty directory", out.display()));
            }
            let (mut saved, mut expect, mut lost_ranges) = (0u64, None::<u64>, Vec::new());
            for f in &found {
                match f {
                    Found::Record(r) => {
                        // Records keep their order; offsets continue densely,
                        // so any gap is reported with the renumbering.
                        if let Some(x) = expect
                            && r.offset != x
                        {
                            lost_ranges.push(format!(
                                "offsets {x}..{} are missing; later records are renumbered from {}",
                                r.offset,
                                target.next_offset()
                            ));
                        }
                        if expect.is_none() && r.offset != 0 {
                            println!(
                                "first salvaged record had offset {}; it is offset 0 in {}",
                                r.offset,
                                out.display()
                            );
                        }
                        let mut entry = Entry::new(&r.value).with_timestamp(r.timestamp_ms);
                        entry.key = r.key.as_deref();
                        entry.flags = r.flags;
                        target.append(entry).map_err(e)?;
                        expect = Some(r.offset + 1);
                        saved += 1;
                    }
                    Found::Damaged { path, from, to } => {
                        lost_ranges.push(format!("{}: bytes {from}..{to} hold no verifiable record", path.display()));
                    }
                }
            }
            target.sync().map_err(e)?;
            target.close().map_err(e)?;
            for l in &lost_ranges {
                println!("lost: {l}");
            }
            println!(
                "salvaged {} into {}; {}",
                count(saved, "record", "records"),
                out.display(),
                count(lost_ranges.len() as u64, "problem", "problems")
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compact { dir, tombstone_retention_ms, map_mib, roll, json } => {
            let config = Config {
                tombstone_retention_ms,
                compaction_map_bytes: map_mib.saturating_mul(1 << 20),
                ..Config::default()
            };
            let mut log = open_existing(&dir, config, false)?;
            if roll {
                log.roll().map_err(e)?;
            }
            let started = std::time::Instant::now();
            let r = log.compact().map_err(e)?;
            let secs = started.elapsed().as_secs_f64();
            log.close().map_err(e)?;
            if json {
                let v = serde_json::json!({
                    "segments_replaced": r.segments_replaced,
                    "segments_written": r.segments_written,
                    "passes": r.passes,
                    "seconds": secs,
                    "records_read": r.records_read,
                    "records_superseded": r.records_superseded,
                    "tombstones_dropped": r.tombstones_dropped,
                    "records_below_first": r.records_below_first,
                    "bytes_before": r.bytes_before,
                    "bytes_after": r.bytes_after,
                });
                println!("{v}");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "compacted {} into {} in {}, {:.2} s: read {}, dropped {} superseded, {}, {} below the first offset",
                count(r.segments_replaced, "segment", "segments"),
                r.segments_written,
                count(r.passes as u64, "pass", "passes"),
                secs,
                count(r.records_read, "record", "records"),
                r.records_superseded,
                count(r.tombstones_dropped, "tombstone", "tombstones"),
                r.records_below_first
            );
            let saved = r.bytes_before.saturating_sub(r.bytes_after);
            println!(
                "bytes {} -> {} (saved {}, {:.1}%)",
                r.bytes_before,
                r.bytes_after,
                saved,
                if r.bytes_before > 0 { 100.0 * saved as f64 / r.bytes_before as f64 } else { 0.0 }
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Truncate { dir, before, from } => {
            let mut log = open_existing(&dir, Config::default(), false)?;
            if let Some(b) = before {
                log.truncate_before(b).map_err(e)?;
            }
            if let Some(f) = from {
                log.truncate_from(f).map_err(e)?;
            }
            println!("log now holds offsets {}..{}", log.first_offset(), log.next_offset());
            log.close().map_err(e)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("seglog: {msg}");
            ExitCode::from(2)
        }
    }
}

//! `seglog`: the operator's tool for a log directory on the real filesystem.
//! Errors are one line on stderr and a non-zero exit code.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use log_core::salvage::{Found, salvage_dir};
use log_core::{Config, Entry, Log, StdFs};

#[derive(Parser)]
#[command(name = "seglog", about = "Inspect, verify, repair and edit a segmented log directory")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the segments: base, last offset, records, bytes, time range, sealed.
    Info { dir: PathBuf },
    /// Print records (offset, timestamp, key, value).
    Dump {
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
    },
    /// Append records: `--value`, or one record per line of standard input.
    /// Syncs before it exits.
    Append {
        dir: PathBuf,
        #[arg(long)]
        value: Option<String>,
        #[arg(long)]
        key: Option<String>,
    },
    /// Check every record of every segment, sealed ones included. Exits 1
    /// and names the file and byte position of each problem.
    Verify { dir: PathBuf },
    /// Copy every record that still verifies into a new log at `--out`, and
    /// report exactly what could not be saved.
    Salvage {
        dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Key compaction of the sealed segments: keep the latest record of each
    /// key (and every unkeyed record), drop tombstones older than the
    /// retention (by their own timestamps), merge small segments. Offsets
    /// do not change. Crash-safe: an interrupted run is finished or undone
    /// by the next open.
    Compact {
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
    },
    /// Truncate the log: drop records before `--before` or from `--from` on.
    Truncate {
        dir: PathBuf,
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        before: Option<u64>,
        #[arg(long)]
        from: Option<u64>,
    },
}

fn show(bytes: &[u8], hex: bool) -> String {
    if hex {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    } else {
        String::from_utf8_lossy(bytes).escape_debug().to_string()
    }
}

fn run(cmd: Cmd) -> Result<ExitCode, String> {
    let e = |e: log_core::Error| e.to_string();
    match cmd {
        Cmd::Info { dir } => {
            let log = Log::open_read_only(&dir, Config::default()).map_err(e)?;
            let stored: u64 = log.segments().iter().map(|s| s.n_records).sum();
            println!(
                "log {}: offsets {}..{} ({} records stored, compaction may have left gaps), {} segments",
                dir.display(),
                log.first_offset(),
                log.next_offset(),
                stored,
                log.segments().len()
            );
            println!(
                "{:>20} {:>20} {:>10} {:>12} {:>15} {:>15}  sealed",
                "base", "last", "records", "bytes", "min ts", "max ts"
            );
            // `last` is the last offset a segment covers; in a compacted
            // segment its record may be gone.
            for s in log.segments() {
                let opt = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
                println!(
                    "{:>20} {:>20} {:>10} {:>12} {:>15} {:>15}  {}",
                    s.base_offset,
                    opt(s.last_offset),
                    s.n_records,
                    s.bytes,
                    opt(s.min_timestamp_ms),
                    opt(s.max_timestamp_ms),
                    match (s.sealed, s.compacted) {
                        (true, true) => "yes (compacted)",
                        (true, false) => "yes",
                        _ => "no (active)",
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Dump { dir, from, count, hex } => {
            let log = Log::open_read_only(&dir, Config::default()).map_err(e)?;
            let start = from.unwrap_or(log.first_offset());
            let mut out = std::io::stdout().lock();
            for rec in log.iter(start..start.saturating_add(count)) {
                let r = rec.map_err(e)?;
                let key = r.key.as_deref().map_or_else(|| "-".to_string(), |k| show(k, hex));
                let tomb = if r.tombstone { " (tombstone)" } else { "" };
                writeln!(out, "{} ts={} key={key}{tomb} value={}", r.offset, r.timestamp_ms, show(&r.value, hex))
                    .map_err(|e| e.to_string())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Append { dir, value, key } => {
            let mut log = Log::open(&dir, Config::default()).map_err(e)?;
            let key = key.as_deref().map(str::as_bytes);
            let mut append = |v: &[u8]| -> Result<u64, String> {
                let mut entry = Entry::new(v);
                entry.key = key;
                log.append(entry).map_err(e)
            };
            let mut n = 0u64;
            let first = match value {
                Some(v) => {
                    n += 1;
                    Some(append(v.as_bytes())?)
                }
                None => {
                    let mut first = None;
                    for line in std::io::stdin().lock().lines() {
                        let line = line.map_err(|e| format!("reading standard input: {e}"))?;
                        let off = append(line.as_bytes())?;
                        first.get_or_insert(off);
                        n += 1;
                    }
                    first
                }
            };
            log.sync().map_err(e)?;
            log.close().map_err(e)?;
            match first {
                Some(f) => println!("appended {n} records at offsets {f}..{}, synced", f + n),
                None => println!("appended nothing"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { dir } => {
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
            for p in &report.problems {
                println!("problem: {p}");
            }
            println!(
                "verified {} segments, {} bytes: {} records ok, {} problems",
                report.n_segments,
                report.bytes,
                report.n_records,
                report.problems.len()
            );
            Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Salvage { dir, out } => {
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
                        entry.tombstone = r.tombstone;
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
            println!("salvaged {saved} records into {}; {} problems", out.display(), lost_ranges.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compact { dir, tombstone_retention_ms, map_mib, roll } => {
            let config = Config {
                tombstone_retention_ms,
                compaction_map_bytes: map_mib.saturating_mul(1 << 20),
                ..Config::default()
            };
            let mut log = Log::open(&dir, config).map_err(e)?;
            if roll {
                log.roll().map_err(e)?;
            }
            let started = std::time::Instant::now();
            let r = log.compact().map_err(e)?;
            let secs = started.elapsed().as_secs_f64();
            log.close().map_err(e)?;
            println!(
                "compacted {} segments into {} in {} pass(es), {:.2} s: read {} records, dropped {} superseded, {} tombstones, {} below the first offset",
                r.segments_replaced,
                r.segments_written,
                r.passes,
                secs,
                r.records_read,
                r.records_superseded,
                r.tombstones_dropped,
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
            let mut log = Log::open(&dir, Config::default()).map_err(e)?;
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

//! Operator salvage. When an open reports durable corruption a media fault
//! made, the run used to end there; in seeds with `Params::salvage` the
//! operator does what the error message says instead: salvages the valid
//! records into a new directory with their offsets kept (`seglog salvage
//! DIR --out NEW --keep-offsets`, i.e. `salvage_dir` then
//! `write_sparse_log`), points the application at it, removes the damaged
//! directory, and the run goes on there with a model rebuilt from what was
//! salvaged.
//!
//! Verifies: salvage reads every segment even around unreadable sectors;
//! every record it returns is one some write put at that offset (the
//! current record, or one a truncation or a recovery's cut replaced, or
//! the old frame an aimed lost write put back) — never bytes nobody wrote;
//! the new directory opens with exactly the salvaged records at their
//! offsets, holes reading as compacted (the recovery checks that follow).
//!
//! Does not verify: that salvage finds every record the damage spared
//! (only that it finds at least one when the old log had a durable record
//! outside the damaged files is not checked either); the operator's
//! procedure under power failure (it runs with faults switched off: it is
//! the operator's script, not the log's crash contract).

use std::path::PathBuf;

use seglog_core::salvage::{Found, salvage_dir, write_sparse_log};
use seglog_core::{Clock, Record, RecordFlags};
use sim_fs::FaultConfig;

use crate::marks::Mark;
use crate::model::Model;
use crate::run::{LOG_DIR, SimClock};
use crate::trace::Event;
use crate::world::World;

impl World {
    /// Salvages the damaged log into a new directory and goes on there
    /// (see the module docs).
    pub(crate) fn operator_salvage(&mut self) {
        self.salvages += 1;
        let new_dir = PathBuf::from(format!("{LOG_DIR}-salvaged-{}", self.salvages));
        let old_dir = self.dir.clone();
        // The operator's script runs on a quiet disk with room to spare.
        let plan = self.fs.config();
        self.fs.set_config(FaultConfig {
            sector_bytes: plan.sector_bytes,
            crash_policies: plan.crash_policies.clone(),
            ..FaultConfig::default()
        });
        let done = self.salvage_into(&old_dir, &new_dir);
        self.fs.set_config(plan);
        if done {
            self.dir = new_dir;
            self.mark(Mark::OperatorSalvaged);
            self.recover(false);
        }
    }

    /// Salvages `old` into `new`, checks what it found, rebuilds the model
    /// from it and removes `old`; `false` if a check failed.
    fn salvage_into(&mut self, old: &std::path::Path, new: &std::path::Path) -> bool {
        let found = match salvage_dir(&self.fs, old) {
            Ok(found) => found,
            Err(e) => {
                self.fail(format!("salvage of a damaged log failed: {e}"));
                return false;
            }
        };
        let mut records: Vec<Record> = Vec::new();
        let mut damaged = 0u64;
        for f in found {
            match f {
                Found::Record(r) => {
                    if !self.model.ever_written(&r) {
                        self.fail(format!(
                            "salvage returned a record nobody wrote at offset {} ({} value bytes, ts {})",
                            r.offset,
                            r.value.len(),
                            r.timestamp_ms
                        ));
                        return false;
                    }
                    // `write_sparse_log` keeps the first record of each
                    // offset, in file order, and skips the rest.
                    if records.last().is_none_or(|l| r.offset > l.offset) {
                        records.push(r);
                    }
                }
                Found::Damaged { from, to, .. } => damaged += to - from,
            }
        }
        let fs = self.fs.shared();
        let report = match write_sparse_log(&fs, new, &records, &self.params.config, SimClock.now_ms()) {
            Ok(r) => r,
            Err(e) => {
                self.fail(format!("writing the salvaged log failed: {e}"));
                return false;
            }
        };
        let holes: u64 = report.holes.iter().map(|h| h.end - h.start).sum();
        let (first, end) = (records.first().map_or(0, |r| r.offset), records.last().map_or(0, |r| r.offset + 1));
        self.note(
            || {
                format!(
                    "operator salvage of {} into {}: {} records at {first}..{end}, {holes} holes, {damaged} damaged bytes",
                    old.display(),
                    new.display(),
                    report.records
                )
            },
            Event::Salvage,
            &[report.records, first, end, holes],
        );
        if report.records != records.len() as u64 || !report.skipped.is_empty() {
            self.fail(format!("salvage wrote {} of {} records: {report:?}", report.records, records.len()));
            return false;
        }
        // The operator removes the damaged directory's files.
        for name in fs.read_dir(old).unwrap_or_default() {
            let _ = fs.remove_file(&old.join(name));
        }
        let _ = fs.sync_dir(old);
        self.model = salvaged_model(&records, first, end);
        true
    }
}

/// The model of a salvaged log: exactly `records`, at their offsets, from
/// `first` to `end`, durable; the offsets between them are holes (gone).
fn salvaged_model(records: &[Record], first: u64, end: u64) -> Model {
    let mut accepted: Vec<Record> = (0..end)
        .map(|o| Record { offset: o, timestamp_ms: 0, key: None, value: Vec::new(), flags: RecordFlags::NONE })
        .collect();
    let mut present = std::collections::BTreeSet::new();
    for r in records {
        present.insert(r.offset);
        if let Some(slot) = accepted.get_mut(r.offset as usize) {
            *slot = r.clone();
        }
    }
    Model {
        accepted,
        gone: (first..end).filter(|o| !present.contains(o)).collect(),
        first,
        durable: end as usize,
        last_batch_start: end as usize,
        ..Model::default()
    }
}

//! Media faults aimed at structure. sim-fs's media faults flip random bits
//! of durable data and break random sectors, so they mostly land in record
//! values; the bytes the log's recovery decisions rest on are few. After a
//! crash (before recovery), seeds with media faults sometimes flip one bit
//! of a durable segment's structure instead, the target chosen from what
//! the segment holds: its header, a frame's length field, a commit marker,
//! or a footer or clean-close trailer. The model then expects detection
//! (`detect_mode`): corruption may be reported, never wrong bytes returned.
//! One aimed fault in four is a lost write instead: a record frame goes
//! back to what an earlier epoch's write would have left at its position —
//! the same offset and length, other bytes, a valid checksum, an older
//! epoch tag (the hazard epochs exist for, docs/FORMAT.md "Epochs", which
//! random faults reach about once in a thousand seeds).
//! Seeds that lose files sometimes lose every file of the log at a crash.

use rand::RngExt;
use seglog_core::RecordRef;
use seglog_core::inspect::{Frame, HEADER_LEN, MarkerKind, decode_frame, encode_record};

use crate::marks::Mark;
use crate::node::fs_listing;
use crate::world::World;

/// A structural target in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Header,
    FrameLength,
    CommitMarker,
    FooterOrTrailer,
}

impl World {
    /// Sometimes (seeds with media faults, from their own stream) flips one
    /// bit of a durable segment's structure.
    pub(crate) fn aimed_media_fault(&mut self) {
        let c = self.fs.config();
        // Seeds that lose files sometimes lose all of them (a disk
        // replaced, a directory wiped): the documented limit, where the
        // directory opens as a new log.
        if c.p_file_lost_at_crash > 0.0 && self.aim_rng.random_bool(0.05) {
            for name in fs_listing(&self.fs, &self.dir) {
                self.fs.lose_file(&self.dir.join(name));
            }
            return;
        }
        if c.p_bitflip_at_crash <= 0.0 && c.p_bad_sector_at_crash <= 0.0 {
            return;
        }
        if !self.aim_rng.random_bool(0.5) {
            return;
        }
        let segments: Vec<String> =
            fs_listing(&self.fs, &self.dir).into_iter().filter(|n| n.ends_with(".log")).collect();
        if segments.is_empty() {
            return;
        }
        let name = segments.get(self.aim_rng.random_range(0..segments.len())).cloned().unwrap_or_default();
        let path = self.dir.join(&name);
        let Some(bytes) = self.fs.durable_contents(&path) else { return };
        if self.aim_rng.random_range(0..4) == 0 {
            self.stale_frame(&path, &bytes);
            return;
        }
        let targets = targets(&bytes);
        if targets.is_empty() {
            return;
        }
        let (target, start, len) =
            targets.get(self.aim_rng.random_range(0..targets.len())).copied().unwrap_or((Target::Header, 0, 1));
        let pos = start + self.aim_rng.random_range(0..len.max(1));
        let bit = self.aim_rng.random_range(0..8u8);
        if self.fs.flip_bit(&path, pos, bit) {
            self.mark(match target {
                Target::Header => Mark::AimedAtHeader,
                Target::FrameLength => Mark::AimedAtFrameLength,
                Target::CommitMarker => Mark::AimedAtCommitMarker,
                Target::FooterOrTrailer => Mark::AimedAtFooterOrTrailer,
            });
        }
    }
}

impl World {
    /// Puts back, in place of one durable record frame of `path`, the frame
    /// an older epoch could have left there: same offset and length, other
    /// content, epoch tag one lower, valid checksum.
    fn stale_frame(&mut self, path: &std::path::Path, bytes: &[u8]) {
        let mut records = Vec::new();
        let mut pos = HEADER_LEN as usize;
        while let Some(rest) = bytes.get(pos..) {
            let Ok((frame, len)) = decode_frame(rest) else { break };
            if let Frame::Record(r) = frame {
                records.push((pos, r));
            }
            pos += len;
        }
        if records.is_empty() {
            return;
        }
        let Some((pos, r)) = records.get(self.aim_rng.random_range(0..records.len())).copied() else {
            return;
        };
        let value: Vec<u8> = r.value.iter().map(|b| b ^ 0x5A).collect();
        let old = RecordRef { epoch: r.epoch.wrapping_sub(1), value: &value, timestamp_ms: r.timestamp_ms ^ 1, ..r };
        let mut frame = Vec::new();
        encode_record(&mut frame, &old);
        if self.fs.lose_write(path, pos as u64, &frame) {
            self.mark(Mark::AimedStaleFrame);
            // An old write, as far as a salvage can tell (`check/salvage.rs`).
            let old = seglog_core::Record {
                offset: old.offset,
                timestamp_ms: old.timestamp_ms,
                key: old.key.map(<[u8]>::to_vec),
                value: value.clone(),
                flags: old.flags,
            };
            self.model.replaced.entry(old.offset).or_default().push(old);
        }
    }
}

/// The structure of a segment's durable bytes, as (target, start, length):
/// the header, each frame's length field, each marker frame whole.
fn targets(bytes: &[u8]) -> Vec<(Target, u64, u64)> {
    let mut out = Vec::new();
    let header = HEADER_LEN as usize;
    if bytes.len() < header {
        return out;
    }
    out.push((Target::Header, 0, header as u64));
    let mut pos = header;
    while let Some(rest) = bytes.get(pos..) {
        let Ok((frame, len)) = decode_frame(rest) else { break };
        out.push((Target::FrameLength, pos as u64 + 4, 4));
        if let Frame::Marker(m) = frame {
            let t = if m.kind == MarkerKind::Commit { Target::CommitMarker } else { Target::FooterOrTrailer };
            out.push((t, pos as u64, len as u64));
        }
        pos += len;
    }
    out
}

//! Power failure: resolving pending changes into a disk image, one drawn at
//! random or every legal one enumerated.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rand::RngExt;

use crate::config::CrashPolicy;
use crate::state::{Dir, DirOp, Inode, Node, Pending, State, apply, apply_dir_op, join, write_into};
use crate::{FaultKind, FaultRecord, Hit};

/// A pending write split at sector boundaries: `(op index, pos, bytes)`.
type Piece = (usize, u64, Vec<u8>);

fn pieces(pending: &[Pending], sector: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    for (i, op) in pending.iter().enumerate() {
        if let Pending::Write { pos, data } = op {
            let mut at = 0usize;
            while at < data.len() {
                let p = pos + at as u64;
                let sector_end = (p / sector + 1) * sector;
                let n = ((sector_end - p) as usize).min(data.len() - at);
                out.push((i, p, data.get(at..at + n).unwrap_or_default().to_vec()));
                at += n;
            }
        }
    }
    out
}

/// File size after applying `pending[..k]` to a file of `len` bytes.
fn size_after(mut len: u64, pending: &[Pending], k: usize) -> u64 {
    for op in pending.iter().take(k) {
        len = match op {
            Pending::Write { pos, data } => len.max(pos + data.len() as u64),
            Pending::SetLen(l) => *l,
        };
    }
    len
}

/// The contents under the reorder model: size of prefix `k`, and the write
/// pieces selected by `keep`.
fn reorder_image(ino: &Inode, ps: &[Piece], k: usize, keep: &dyn Fn(usize) -> bool) -> Vec<u8> {
    let mut content = ino.durable.clone();
    let mut piece_idx = 0;
    for (i, op) in ino.pending.iter().enumerate() {
        match op {
            Pending::SetLen(_) if i < k => apply(&mut content, op),
            Pending::SetLen(_) => {}
            Pending::Write { .. } => {
                while let Some((pi, pos, data)) = ps.get(piece_idx) {
                    if *pi != i {
                        break;
                    }
                    if keep(piece_idx) {
                        write_into(&mut content, *pos, data);
                    }
                    piece_idx += 1;
                }
            }
        }
    }
    content.resize(size_after(ino.durable.len() as u64, &ino.pending, k) as usize, 0);
    content
}

impl State {
    /// Resolves every pending change as a power failure would under
    /// `policy`, then starts a new boot.
    pub fn crash(&mut self, policy: CrashPolicy) {
        let mut n_lost = 0u64;
        // Directories: a prefix of each one's pending changes (journaled
        // metadata keeps its order).
        let dir_paths: Vec<String> = self.dirs.keys().cloned().collect();
        for path in &dir_paths {
            let n = self.dirs.get(path).map_or(0, |d| d.pending.len());
            let k = match policy {
                CrashPolicy::LoseAll => 0,
                _ => self.rng.random_range(0..=n),
            };
            n_lost += (n - k) as u64;
            if let Some(d) = self.dirs.get_mut(path) {
                let ops: Vec<DirOp> = d.pending.drain(..).collect();
                for op in ops.iter().take(k) {
                    apply_dir_op(&mut d.durable, op);
                }
                d.cached = d.durable.clone();
            }
        }
        let live = self.prune_unreachable();
        // Files.
        let inos: Vec<u64> = self.inodes.keys().copied().collect();
        for ino in inos {
            if !live.contains(&ino) {
                self.inodes.remove(&ino);
                continue;
            }
            // Taken out while its crash image is drawn (no copy of its
            // contents), put back with the image as both views.
            let Some(mut inode) = self.inodes.remove(&ino) else {
                continue;
            };
            let n = inode.pending.len();
            let content = match policy {
                CrashPolicy::LoseAll => std::mem::take(&mut inode.durable),
                CrashPolicy::KeepPrefix => {
                    let k = self.rng.random_range(0..=n);
                    let mut c = std::mem::take(&mut inode.durable);
                    inode.pending.iter().take(k).for_each(|op| apply(&mut c, op));
                    c
                }
                CrashPolicy::Reorder => {
                    let ps = pieces(&inode.pending, self.config.sector_bytes.max(1));
                    let k = self.rng.random_range(0..=n);
                    let keep: Vec<bool> = ps.iter().map(|_| self.rng.random_bool(0.5)).collect();
                    reorder_image(&inode, &ps, k, &|i| keep.get(i).copied().unwrap_or(false))
                }
                CrashPolicy::TornWrite => self.torn_image(&inode),
            };
            if n > 0 {
                n_lost += 1;
            }
            // Bad sectors beyond the new end are gone with the bytes.
            let sector = self.config.sector_bytes.max(1);
            let len = content.len() as u64;
            inode.bad_sectors.retain(|s| s * sector < len);
            inode.cached.clone_from(&content);
            inode.durable = content;
            inode.pending.clear();
            self.inodes.insert(ino, inode);
        }
        self.recount();
        self.events.push(crate::state::Event::Crash { policy, n_lost });
        self.media_faults_at_crash();
        self.boot += 1;
    }

    fn torn_image(&mut self, inode: &Inode) -> Vec<u8> {
        let mut c = inode.durable.clone();
        let n = inode.pending.len();
        if n == 0 {
            return c;
        }
        let k = self.rng.random_range(0..n);
        inode.pending.iter().take(k).for_each(|op| apply(&mut c, op));
        match inode.pending.get(k) {
            Some(Pending::Write { pos, data }) if !data.is_empty() => {
                let t = self.rng.random_range(0..data.len());
                write_into(&mut c, *pos, data.get(..t).unwrap_or_default());
                let sector = self.config.sector_bytes.max(1);
                let torn_at = pos + t as u64;
                let torn_end = ((torn_at / sector + 1) * sector).min(pos + data.len() as u64);
                let fill_len = (torn_end - torn_at) as usize;
                match self.rng.random_range(0..3u8) {
                    0 => write_into(&mut c, torn_at, &vec![0u8; fill_len]),
                    1 => {
                        let garbage: Vec<u8> = (0..fill_len).map(|_| self.rng.random::<u8>()).collect();
                        write_into(&mut c, torn_at, &garbage);
                    }
                    _ => {} // the old bytes stay
                }
            }
            Some(op @ Pending::SetLen(_)) if self.rng.random_bool(0.5) => apply(&mut c, op),
            _ => {}
        }
        c
    }

    /// Drops directories no longer reachable through durable entries and
    /// returns the inodes still linked.
    fn prune_unreachable(&mut self) -> BTreeSet<u64> {
        let mut reachable: BTreeSet<String> = BTreeSet::new();
        let mut live = BTreeSet::new();
        let mut stack = vec!["/".to_owned()];
        while let Some(p) = stack.pop() {
            if !reachable.insert(p.clone()) {
                continue;
            }
            if let Some(d) = self.dirs.get(&p) {
                for (name, node) in &d.durable {
                    match node {
                        Node::Dir => stack.push(join(&p, name)),
                        Node::File(ino) => {
                            live.insert(*ino);
                        }
                    }
                }
            }
        }
        self.dirs.retain(|p, _| reachable.contains(p));
        for p in &reachable {
            self.dirs.entry(p.clone()).or_default();
        }
        live
    }

    fn media_faults_at_crash(&mut self) {
        let p_flip = self.config.p_bitflip_at_crash;
        let p_bad = self.config.p_bad_sector_at_crash;
        if p_flip > 0.0
            && self.rng.random_bool(p_flip.min(1.0))
            && let Some((ino, pos)) = self.random_durable_byte()
        {
            let bit = self.rng.random_range(0..8u8);
            if let Some(i) = self.inodes.get_mut(&ino) {
                for v in [&mut i.durable, &mut i.cached] {
                    if let Some(b) = v.get_mut(pos as usize) {
                        *b ^= 1 << bit;
                    }
                }
            }
            let path = self.path_of(ino);
            self.record(FaultRecord { kind: FaultKind::BitFlip, path, pos, len: 1, hit: Hit::Durable });
        }
        if p_bad > 0.0
            && self.rng.random_bool(p_bad.min(1.0))
            && let Some((ino, pos)) = self.random_durable_byte()
        {
            let sector = self.config.sector_bytes.max(1);
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.bad_sectors.insert(pos / sector);
            }
            let path = self.path_of(ino);
            self.record(FaultRecord {
                kind: FaultKind::BadSector,
                path,
                pos: pos / sector * sector,
                len: sector,
                hit: Hit::Durable,
            });
        }
        let p_lost = self.config.p_file_lost_at_crash;
        if p_lost > 0.0 && self.rng.random_bool(p_lost.min(1.0)) {
            self.lose_a_file();
        }
    }

    /// The file `dir/name` disappears, entry and data (a media fault, or an
    /// operator's mistake), recorded as `FileLost`. Returns whether it
    /// existed.
    pub(crate) fn lose_file(&mut self, dir: &str, name: &str) -> bool {
        let Some(&Node::File(ino)) = self.dirs.get(dir).and_then(|d| d.cached.get(name).or(d.durable.get(name))) else {
            return false;
        };
        let len = self.inodes.get(&ino).map_or(0, |i| i.durable.len() as u64);
        if let Some(d) = self.dirs.get_mut(dir) {
            d.durable.remove(name);
            d.cached.remove(name);
            d.pending.retain(|op| match op {
                crate::state::DirOp::Link(n, _) | crate::state::DirOp::Unlink(n) => n != name,
                crate::state::DirOp::Rename(a, b) => a != name && b != name,
            });
        }
        let still_linked =
            self.dirs.values().any(|d| d.durable.values().chain(d.cached.values()).any(|n| *n == Node::File(ino)));
        if !still_linked {
            self.inodes.remove(&ino);
        }
        self.recount();
        self.record(FaultRecord {
            kind: FaultKind::FileLost,
            path: PathBuf::from(join(dir, name)),
            pos: 0,
            len,
            hit: Hit::Durable,
        });
        true
    }

    /// One durable file, chosen uniformly among every directory's durable
    /// file entries, disappears: entry and data.
    fn lose_a_file(&mut self) {
        let files: Vec<(String, String)> = self
            .dirs
            .iter()
            .flat_map(|(p, d)| {
                d.durable.iter().filter_map(move |(n, node)| match node {
                    Node::File(_) => Some((p.clone(), n.clone())),
                    Node::Dir => None,
                })
            })
            .collect();
        if files.is_empty() {
            return;
        }
        let k = self.rng.random_range(0..files.len());
        let Some((dir, name)) = files.get(k).cloned() else { return };
        self.lose_file(&dir, &name);
    }

    /// A uniformly chosen byte of durable, linked file data.
    pub(crate) fn random_durable_byte(&mut self) -> Option<(u64, u64)> {
        let total: u64 = self.inodes.values().map(|i| i.durable.len() as u64).sum();
        if total == 0 {
            return None;
        }
        let mut at = self.rng.random_range(0..total);
        for (ino, i) in &self.inodes {
            let len = i.durable.len() as u64;
            if at < len {
                return Some((*ino, at));
            }
            at -= len;
        }
        None
    }

    /// Every disk image a crash could leave under the sector-atomic model
    /// (the `Reorder` policy's space, which contains `LoseAll` and
    /// `KeepPrefix`; sub-sector tears are not enumerated). `None` if there
    /// would be more than `limit`.
    pub fn crash_images(&self, limit: usize) -> Option<Vec<Image>> {
        // Directory choices: a prefix of each directory's pending changes.
        let dir_list: Vec<(&String, &Dir)> = self.dirs.iter().collect();
        let mut n_dir_choices: usize = 1;
        for (_, d) in &dir_list {
            n_dir_choices = n_dir_choices.checked_mul(d.pending.len() + 1)?;
            if n_dir_choices > limit {
                return None;
            }
        }
        // File choices: distinct contents per inode.
        let sector = self.config.sector_bytes.max(1);
        let mut contents: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        for (ino, inode) in &self.inodes {
            let ps = pieces(&inode.pending, sector);
            if ps.len() > 20 {
                return None;
            }
            let n_subsets = 1usize << ps.len();
            if n_subsets.checked_mul(inode.pending.len() + 1)? > limit.saturating_mul(4) {
                return None;
            }
            let mut set = BTreeSet::new();
            for k in 0..=inode.pending.len() {
                for mask in 0..n_subsets {
                    set.insert(reorder_image(inode, &ps, k, &|i| mask >> i & 1 == 1));
                }
            }
            contents.insert(*ino, set.into_iter().collect());
        }
        let mut images = BTreeSet::new();
        for mut choice in 0..n_dir_choices {
            let mut dirs: BTreeMap<String, BTreeMap<String, Node>> = BTreeMap::new();
            for (path, d) in &dir_list {
                let n = d.pending.len() + 1;
                let k = choice % n;
                choice /= n;
                let mut m = d.durable.clone();
                d.pending.iter().take(k).for_each(|op| apply_dir_op(&mut m, op));
                dirs.insert((*path).clone(), m);
            }
            let (dirs, live) = reachable(dirs);
            // Product of the live inodes' content choices.
            let live: Vec<u64> = live.into_iter().collect();
            let mut total: usize = 1;
            for ino in &live {
                total = total.checked_mul(contents.get(ino).map_or(1, Vec::len))?;
                if total > limit {
                    return None;
                }
            }
            for mut pick in 0..total {
                let mut files = BTreeMap::new();
                for ino in &live {
                    let opts = contents.get(ino).map_or(&[][..], Vec::as_slice);
                    let n = opts.len().max(1);
                    files.insert(*ino, opts.get(pick % n).cloned().unwrap_or_default());
                    pick /= n;
                }
                images.insert(Image { dirs: dirs.clone(), files });
                if images.len() > limit {
                    return None;
                }
            }
        }
        Some(images.into_iter().collect())
    }
}

fn reachable(
    mut dirs: BTreeMap<String, BTreeMap<String, Node>>,
) -> (BTreeMap<String, BTreeMap<String, Node>>, BTreeSet<u64>) {
    let mut seen = BTreeSet::new();
    let mut live = BTreeSet::new();
    let mut stack = vec!["/".to_owned()];
    while let Some(p) = stack.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        if let Some(m) = dirs.get(&p) {
            for (name, node) in m {
                match node {
                    Node::Dir => stack.push(join(&p, name)),
                    Node::File(ino) => {
                        live.insert(*ino);
                    }
                }
            }
        }
    }
    dirs.retain(|p, _| seen.contains(p));
    (dirs, live)
}

/// One disk image a crash may leave: the durable directory entries and the
/// contents of each linked file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Image {
    pub(crate) dirs: BTreeMap<String, BTreeMap<String, Node>>,
    pub(crate) files: BTreeMap<u64, Vec<u8>>,
}

impl Image {
    /// The file at `path` in this image, if it exists.
    pub fn file(&self, path: &std::path::Path) -> Option<&[u8]> {
        let path = crate::state::normalize(path);
        let (parent, name) = crate::state::split(&path)?;
        match self.dirs.get(&parent)?.get(&name)? {
            Node::File(ino) => self.files.get(ino).map(Vec::as_slice),
            Node::Dir => None,
        }
    }
}

//! sim-fs as a madsim simulator plugin: each simulated node can own a
//! [`SimFs`], and killing the node (`Handle::kill`, which madsim reports to
//! every plugin through `reset_node`) applies a power failure to that disk.
//!
//! ```text
//! let rt = madsim::runtime::Runtime::with_seed_and_config(seed, Default::default());
//! rt.add_simulator::<sim_fs::plugin::SimFsPlugin>();
//! rt.block_on(async {
//!     let node = madsim::runtime::Handle::current().create_node().name("log").build();
//!     sim_fs::plugin::SimFsPlugin::current().attach(node.id(), fs.clone());
//!     // ... later: Handle::current().kill(node.id()) crashes `fs`.
//! });
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use madsim::plugin::{Simulator, simulator};
use madsim::task::NodeId;

use crate::{CrashPolicy, SimFs};

/// The plugin. Register it with `Runtime::add_simulator::<SimFsPlugin>()`.
#[derive(Debug, Default)]
pub struct SimFsPlugin {
    disks: Mutex<BTreeMap<NodeId, SimFs>>,
    crashes: Mutex<Vec<(NodeId, CrashPolicy)>>,
}

impl SimFsPlugin {
    /// The plugin of the current runtime (panics outside one, or if it was
    /// not registered).
    pub fn current() -> Arc<Self> {
        simulator::<Self>()
    }

    /// Gives `node` the disk `fs`: killing the node crashes it.
    pub fn attach(&self, node: NodeId, fs: SimFs) {
        self.lock_disks().insert(node, fs);
    }

    /// Takes `node`'s disk back: killing the node no longer crashes it
    /// (for winding a run down without touching the disk it is judged by).
    pub fn detach(&self, node: NodeId) -> Option<SimFs> {
        self.lock_disks().remove(&node)
    }

    /// The disk of `node`.
    pub fn disk(&self, node: NodeId) -> Option<SimFs> {
        self.lock_disks().get(&node).cloned()
    }

    /// The crashes applied so far, oldest first.
    pub fn crashes(&self) -> Vec<(NodeId, CrashPolicy)> {
        self.crashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn lock_disks(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, SimFs>> {
        self.disks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Simulator for SimFsPlugin {
    fn new(_rand: &madsim::rand::GlobalRng, _time: &madsim::time::TimeHandle, _config: &madsim::Config) -> Self {
        Self::default()
    }

    fn reset_node(&self, id: NodeId) {
        let fs = self.lock_disks().get(&id).cloned();
        if let Some(fs) = fs {
            let policy = fs.crash();
            self.crashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, policy));
        }
    }
}

//! # sim-harness: deterministic simulation of log-core on sim-fs
//!
//! From one `u64` seed, [`run::run`] derives a workload and a fault plan
//! ([`scenario::Params`]), runs the real log-core on a [`sim_fs::SimFs`]
//! disk inside a madsim runtime (so task interleavings and time come from
//! the seed too), crashes and restarts it, and checks every state against
//! [`model::Model`]. A failing seed replays bit for bit: same timeline, same
//! trace hash.

pub mod campaign;
mod check;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod exhaustive;
pub mod group;
pub mod html;
pub mod marks;
pub mod model;
mod node;
pub mod op;
mod ops;
pub mod record;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod shrink;
mod trace;
mod world;

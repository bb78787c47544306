//! The cluster's simulated network: every RPC is a call on the target's
//! `Raft` handle, made after a random delay (so concurrent messages
//! reorder), dropped with the current loss rate or when its link is cut
//! (partitions are per direction, so they can be asymmetric), and its
//! response can be lost on the way back the same way — the request then
//! took effect and the sender does not know. A node that is down is not
//! reachable. All randomness is madsim's, from the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::Rng;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use super::{SimKv, SimRaft};

/// What the network does now.
#[derive(Default)]
pub(crate) struct NetState {
    /// The nodes that are up, by id.
    pub(crate) up: BTreeMap<u64, SimRaft>,
    /// Their stores' vote gates: a fenced node's RPC server refuses votes
    /// its fence forbids (as if unreachable) without asking Raft.
    pub(crate) gates: BTreeMap<u64, seglog_raft::VoteGate<u64>>,
    /// Vote requests a fence refused.
    pub(crate) fence_refusals: u64,
    /// Cut links, `(from, to)`: messages from `from` to `to` are dropped.
    pub(crate) cut: BTreeSet<(u64, u64)>,
    /// Probability that a message (request or response) is lost.
    pub(crate) loss: f64,
    /// Largest one-way delay.
    pub(crate) max_delay_ms: u64,
    /// Canary: the network acknowledges an append again without
    /// delivering it (a duplicated ack).
    pub(crate) dup_acks: bool,
    /// The last successful append ack of each link (canary only).
    pub(crate) last_ack: BTreeSet<(u64, u64)>,
    /// The last vote each node granted (a granted vote is sent only after
    /// it is durable: a node must never boot with an older one).
    pub(crate) granted: BTreeMap<u64, openraft::Vote<u64>>,
    /// Messages sent, lost, and acks duplicated (for the report).
    pub(crate) sent: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
}

/// The network, shared by every node's factory.
pub(crate) type Net = Arc<Mutex<NetState>>;

pub(crate) fn lock(net: &Net) -> std::sync::MutexGuard<'_, NetState> {
    net.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One node's network factory.
#[derive(Clone)]
pub(crate) struct Factory {
    pub(crate) from: u64,
    pub(crate) net: Net,
}

/// A connection from one node to another.
pub(crate) struct Conn {
    from: u64,
    to: u64,
    net: Net,
}

impl RaftNetworkFactory<SimKv> for Factory {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Conn {
        Conn { from: self.from, to: target, net: Arc::clone(&self.net) }
    }
}

fn unreachable<E: std::error::Error>(why: String) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::new(std::io::ErrorKind::NotConnected, why)))
}

fn lost<E: std::error::Error>(why: String) -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::new(std::io::ErrorKind::TimedOut, why)))
}

impl Conn {
    fn delay(&self) -> Duration {
        let max = lock(&self.net).max_delay_ms.max(1);
        Duration::from_micros(madsim::rand::thread_rng().gen_range(100..max * 1000))
    }

    /// Whether a message on `from -> to` gets through now.
    fn passes(&self, from: u64, to: u64) -> bool {
        let mut n = lock(&self.net);
        n.sent += 1;
        let loss = n.loss;
        let dropped = n.cut.contains(&(from, to)) || (loss > 0.0 && madsim::rand::thread_rng().gen_bool(loss));
        let through = !dropped;
        if !through {
            n.lost += 1;
        }
        through
    }

    /// Sends a request, runs it on the target, sends the response back.
    async fn call<R, E, F, Fut>(&self, f: F) -> Result<R, RPCError<u64, BasicNode, RaftError<u64, E>>>
    where
        E: std::error::Error,
        F: FnOnce(SimRaft) -> Fut,
        Fut: std::future::Future<Output = Result<R, RaftError<u64, E>>>,
    {
        madsim::time::sleep(self.delay()).await;
        if !self.passes(self.from, self.to) {
            return Err(lost(format!("request {} -> {} lost", self.from, self.to)));
        }
        let Some(raft) = lock(&self.net).up.get(&self.to).cloned() else {
            return Err(unreachable(format!("node {} is down", self.to)));
        };
        let res = f(raft).await;
        madsim::time::sleep(self.delay()).await;
        if !self.passes(self.to, self.from) {
            return Err(lost(format!("response {} -> {} lost", self.to, self.from)));
        }
        match res {
            Ok(r) => Ok(r),
            Err(RaftError::Fatal(f)) => Err(unreachable(format!("node {} stopped: {f}", self.to))),
            Err(e) => Err(RPCError::RemoteError(RemoteError::new(self.to, e))),
        }
    }
}

impl RaftNetwork<SimKv> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<SimKv>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let link = (self.from, self.to);
        let replay = {
            let mut n = lock(&self.net);
            let hit = n.dup_acks && !rpc.entries.is_empty() && madsim::rand::thread_rng().gen_bool(0.3);
            let ack = (hit && n.last_ack.contains(&link)).then_some(AppendEntriesResponse::Success);
            if ack.is_some() {
                n.duplicated += 1;
            }
            ack
        };
        if let Some(ack) = replay {
            madsim::time::sleep(self.delay()).await;
            return Ok(ack);
        }
        let res = self.call(|raft| async move { raft.append_entries(rpc).await }).await;
        if let Ok(AppendEntriesResponse::Success) = &res {
            let mut n = lock(&self.net);
            if n.dup_acks {
                n.last_ack.insert(link);
            }
        }
        res
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<SimKv>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>> {
        self.call(|raft| async move { raft.install_snapshot(rpc).await }).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        let (net, voter) = (Arc::clone(&self.net), self.to);
        // The voter's RPC server asks its store's gate first: a fence
        // refuses a candidate whose log may be behind the voter's lost one.
        let gate = lock(&net).gates.get(&voter).cloned();
        if gate.is_some_and(|g| !g.may_grant(rpc.last_log_id.as_ref())) {
            madsim::time::sleep(self.delay()).await;
            lock(&net).fence_refusals += 1;
            return Err(unreachable(format!("node {voter} is fenced: no vote for a log behind its bound")));
        }
        self.call(|raft| async move {
            let res = raft.vote(rpc).await;
            if let Ok(resp) = &res
                && resp.vote_granted
            {
                lock(&net).granted.insert(voter, resp.vote);
            }
            res
        })
        .await
    }
}

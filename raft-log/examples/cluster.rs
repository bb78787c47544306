//! A three-node openraft cluster in one process, each node on its own log
//! directory (raft-log's `RaftLogStore` + the example key-value state
//! machine), connected by an in-memory network. It writes through the
//! leader, stops a follower, writes more, restarts the follower from its
//! directory (it re-applies the committed entries from its own log, then
//! catches up on what it missed from the leader), and checks that the
//! three state machines agree.
//!
//! `cargo run -p seglog-raft --example cluster [-- DIR]` (default: a fresh
//! temporary directory, removed at the end).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, Raft};
use seglog_raft::kv::{KvConfig, KvRequest, KvStateMachine};
use seglog_raft::{ClosedSignal, RaftLogStore, VoteGate};

type NodeId = u64;
type KvRaft = Raft<KvConfig>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// The in-memory network: every node's `Raft` handle and its store's vote
/// gate, by id. A node that is down is absent (its peers see it as
/// unreachable).
#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Peer>>>,
}

/// A running node as its peers reach it: its Raft handle and its store's
/// vote gate.
type Peer = (KvRaft, VoteGate<NodeId>);

impl Router {
    fn get(&self, id: NodeId) -> Option<KvRaft> {
        self.node(id).map(|(raft, _)| raft)
    }

    fn node(&self, id: NodeId) -> Option<Peer> {
        self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned()
    }

    fn set(&self, id: NodeId, raft: Option<Peer>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match raft {
            Some(r) => nodes.insert(id, r),
            None => nodes.remove(&id),
        };
    }
}

struct Conn {
    router: Router,
    target: NodeId,
}

fn unreachable<E: std::error::Error>(target: NodeId, why: &str) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(std::io::ErrorKind::NotConnected, format!("node {target} {why}"));
    RPCError::Unreachable(Unreachable::new(&e))
}

impl RaftNetworkFactory<KvConfig> for Router {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Conn {
        Conn { router: self.clone(), target }
    }
}

impl RaftNetwork<KvConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<KvConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.router.get(self.target).ok_or_else(|| unreachable(self.target, "is down"))?;
        raft.append_entries(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<KvConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        let raft = self.router.get(self.target).ok_or_else(|| unreachable(self.target, "is down"))?;
        raft.install_snapshot(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let (raft, gate) = self.router.node(self.target).ok_or_else(|| unreachable(self.target, "is down"))?;
        // A node whose log may have lost entries it acknowledged votes only
        // for a candidate whose log reaches them (seglog_raft::fence).
        if !gate.may_grant(rpc.last_log_id.as_ref()) {
            return Err(unreachable(self.target, "is fenced: its log may lack entries it acknowledged"));
        }
        raft.vote(rpc).await.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// A running node: its Raft handle, its state machine, and the signal that
/// its log store is closed (after shutdown).
struct Node {
    raft: KvRaft,
    sm: KvStateMachine,
    closed: ClosedSignal,
}

async fn start(id: NodeId, dir: &Path, config: Arc<Config>, router: &Router) -> Result<Node, Error> {
    let mut store = RaftLogStore::<KvConfig>::open(dir.join("log-store"))?;
    let closed = store.closed_signal();
    let st = store.get_log_state().await?;
    let vote = store.read_vote().await?;
    let committed = store.read_committed().await?;
    println!(
        "node {id}: opened {}: last log id {}, committed {}, vote {}",
        dir.display(),
        st.last_log_id.map_or("none".into(), |l| l.to_string()),
        committed.map_or("none".into(), |l| l.to_string()),
        vote.map_or("none".into(), |v| v.to_string()),
    );
    let sm = KvStateMachine::open(dir.join("state-machine"))?;
    let gate = store.vote_gate();
    let raft = Raft::new(id, config, router.clone(), store, sm.clone()).await?;
    // No campaign while the store's vote fence stands.
    gate.hold_elections(&raft);
    router.set(id, Some((raft.clone(), gate)));
    Ok(Node { raft, sm, closed })
}

async fn stop(id: NodeId, node: Node, router: &Router) -> Result<(), Error> {
    router.set(id, None);
    node.raft.shutdown().await.map_err(|e| format!("shutting node {id} down: {e}"))?;
    drop(node.raft);
    node.closed.wait().await;
    println!("node {id}: stopped; its log is closed");
    Ok(())
}

async fn write(leader: &KvRaft, from: u64, to: u64) -> Result<(), Error> {
    for i in from..to {
        leader.client_write(KvRequest::Set { key: format!("key-{i:04}"), value: format!("value {i}") }).await?;
    }
    Ok(())
}

async fn wait_applied(id: NodeId, node: &Node, index: u64) -> Result<(), Error> {
    node.raft
        .wait(Some(Duration::from_secs(10)))
        .applied_index_at_least(Some(index), &format!("node {id} applies up to {index}"))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let tmp;
    let root: PathBuf = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let config = Arc::new(
        Config { heartbeat_interval: 100, election_timeout_min: 300, election_timeout_max: 600, ..Config::default() }
            .validate()?,
    );
    let router = Router::default();
    let dirs: BTreeMap<NodeId, PathBuf> = (1..=3).map(|id| (id, root.join(format!("node-{id}")))).collect();
    let mut nodes = BTreeMap::new();
    for (&id, dir) in &dirs {
        nodes.insert(id, start(id, dir, Arc::clone(&config), &router).await?);
    }
    let members: BTreeMap<NodeId, BasicNode> = dirs.keys().map(|&id| (id, BasicNode::default())).collect();
    let n1 = nodes.get(&1).ok_or("node 1 is missing")?;
    if n1.raft.is_initialized().await? {
        println!("cluster: already initialized (reusing {})", root.display());
    } else {
        n1.raft.initialize(members).await?;
    }
    let leader_id = n1
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await?
        .current_leader
        .ok_or("no leader")?;
    println!("cluster: node {leader_id} is the leader");
    let leader = nodes.get(&leader_id).ok_or("the leader is missing")?.raft.clone();

    let t = Instant::now();
    write(&leader, 0, 200).await?;
    println!("cluster: 200 writes committed in {:.2?}", t.elapsed());

    // Stop a follower, write without it, restart it from its directory.
    let follower = dirs.keys().copied().find(|&id| id != leader_id).ok_or("no follower")?;
    let node = nodes.remove(&follower).ok_or("the follower is missing")?;
    let applied_before = node.sm.last_applied().map_or(0, |l| l.index);
    stop(follower, node, &router).await?;
    write(&leader, 200, 300).await?;
    println!("cluster: 100 more writes committed without node {follower}");

    let dir = dirs.get(&follower).ok_or("no directory")?;
    let node = start(follower, dir, Arc::clone(&config), &router).await?;
    let replayed = node.sm.last_applied().map_or(0, |l| l.index);
    println!(
        "node {follower}: restarted; re-applied entries up to index {replayed} from its own log (it had applied up to {applied_before} before it stopped)"
    );
    let last = leader.metrics().borrow().last_log_index.ok_or("the leader has no log")?;
    wait_applied(follower, &node, last).await?;
    println!("node {follower}: caught up to index {last} (the 100 writes it missed came from the leader)");
    nodes.insert(follower, node);

    // Every node applies everything; the state machines agree.
    for (&id, node) in &nodes {
        wait_applied(id, node, last).await?;
    }
    let dumps: Vec<BTreeMap<String, String>> = nodes.values().map(|n| n.sm.dump()).collect();
    let first = dumps.first().ok_or("no nodes")?;
    if first.len() != 300 || dumps.iter().any(|d| d != first) {
        return Err(format!(
            "state machines disagree: sizes {:?}",
            dumps.iter().map(BTreeMap::len).collect::<Vec<_>>()
        )
        .into());
    }
    println!("cluster: all 3 state machines hold the same 300 keys");
    for (id, node) in nodes {
        stop(id, node, &router).await?;
    }
    Ok(())
}

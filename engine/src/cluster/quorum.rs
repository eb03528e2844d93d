//! The controller quorum on this node: raft-rs driven from a task on shard 0.
//!
//! raft-rs is sans-IO: this driver feeds it ticks (every
//! [`TICK_MS`]), messages from peers and proposals, and handles each
//! `Ready` it hands back: sends messages, makes new entries and the hard
//! state durable (`fdatasync` on glommio's blocking pool, before raft is told
//! they are stable), applies committed entries to the metadata image and
//! publishes the new image to every shard.
//!
//! A node without `controller.quorum.voters` runs the same code as a quorum
//! of itself: it elects itself at once and commits each entry after its own
//! `fdatasync`.
//!
//! Who touches it: only shard 0's tasks (the driver, the controller, the
//! broker's heartbeat loop), through `Rc<Quorum>`; RefCell borrows never
//! cross an `.await`.

use super::raft_log::{encode_frames, make_snapshot, MetadataStorage, RaftLogFiles, METADATA_DIR};
use super::records;
use super::transport::Transport;
use crate::ids::NodeId;
use crate::metadata::{TopicTable, NO_LEADER};
use futures::channel::oneshot;
use futures::FutureExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use protobuf::Message as _;
use raft::prelude::{Entry, EntryType, Message};
use raft::{RawNode, StateRole};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// One raft tick.
pub const TICK_MS: u64 = 100;
/// Raft heartbeats every this many ticks.
const HEARTBEAT_TICKS: usize = 2;
/// A snapshot is taken after this many entries were applied since the last.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 4096;
/// Events handled between two `Ready` rounds at most.
const EVENTS_PER_ROUND: usize = 256;
/// Events waiting for the driver at most: a raft message beyond it is
/// dropped (raft sends again, as after a lost packet), a proposal waits.
const EVENTS_QUEUED_MAX: usize = 4 * EVENTS_PER_ROUND;
/// Largest raft append message.
const MESSAGE_BYTES_MAX: u64 = 1 << 20;
const VOTERS_FILE: &str = "voters";

/// Raft ids must not be 0; Kafka node ids may be.
pub fn raft_id(node_id: i32) -> u64 {
    node_id as u64 + 1
}

fn node_of(raft_id: u64) -> NodeId {
    if raft_id == 0 {
        NO_LEADER
    } else {
        NodeId((raft_id - 1) as i32)
    }
}

/// Why a proposal did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("this node is not the active controller")]
    NotLeader,
    #[error("leadership was lost before the change committed")]
    LeadershipLost,
}

/// Why the quorum could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("metadata log: {0}")]
    Log(#[from] super::raft_log::RaftLogError),
    #[error("{0}")]
    Voters(String),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

enum Event {
    Raft(Message),
    Propose(Vec<u8>, oneshot::Sender<Result<u64, ProposeError>>),
}

/// What the node knows about the quorum right now.
#[derive(Debug, Clone)]
pub struct QuorumStatus {
    pub leader: NodeId,
    pub term: u64,
    pub is_leader: bool,
    /// Leader, and every entry of earlier terms is applied: safe to decide.
    pub ready: bool,
    pub commit: u64,
    pub applied: u64,
    /// On the leader: each voter's node id and the last entry it has.
    pub voters: Vec<(NodeId, u64)>,
}

/// Hands a new image to the shards (shard 0's publisher).
pub type Publish = Box<dyn Fn(Arc<TopicTable>)>;

pub struct Quorum {
    node_id: i32,
    voters: Vec<i32>,
    raw: RefCell<RawNode<MetadataStorage>>,
    files: RefCell<RaftLogFiles>,
    transport: Option<Rc<Transport>>,
    events: LocalSender<Event>,
    events_rx: RefCell<Option<LocalReceiver<Event>>>,
    image: RefCell<Arc<TopicTable>>,
    applied: Cell<u64>,
    leader: Cell<NodeId>,
    ready: Cell<bool>,
    /// Proposal id → waiter; ids carry this node's id and a per-start tag.
    proposals: RefCell<HashMap<u64, oneshot::Sender<Result<u64, ProposeError>>>>,
    proposal_tag: u32,
    next_proposal: Cell<u64>,
    /// Woken at every leadership change and applied entry.
    watchers: RefCell<Vec<oneshot::Sender<()>>>,
    /// Woken when the active controller changes.
    leader_watchers: RefCell<Vec<oneshot::Sender<()>>>,
    publish: Publish,
    /// Revision of the last image published.
    revision: Cell<u64>,
}

/// A slog drain that hands raft-rs's log lines to `tracing`.
struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let text = record.msg().to_string();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => error!(target: "raft", "{text}"),
            slog::Level::Warning => warn!(target: "raft", "{text}"),
            // raft-rs narrates every step at info; our own lines say what
            // matters (who leads), so its narration is debug.
            _ => debug!(target: "raft", "{text}"),
        }
        Ok(())
    }
}

impl Quorum {
    /// Opens the metadata log under `data_dir` and builds the raft node.
    /// `voters` are node ids (this node's alone for a single node);
    /// `election_timeout_ms` becomes raft's election tick count.
    pub fn open(
        node_id: i32,
        voters: Vec<i32>,
        data_dir: &Path,
        election_timeout_ms: u32,
        transport: Option<Rc<Transport>>,
        publish: Publish,
    ) -> Result<Rc<Quorum>, QuorumError> {
        check_voters(data_dir, &voters)?;
        let (files, recovered) = RaftLogFiles::open(data_dir)?;
        let raft_voters: Vec<u64> = voters.iter().map(|v| raft_id(*v)).collect();
        let mut image = TopicTable::default();
        let mut applied = 0;
        if let Some(snapshot) = &recovered.snapshot {
            image = records::decode_snapshot(snapshot.get_data())
                .map_err(|e| QuorumError::Voters(format!("metadata snapshot: {e}")))?;
            applied = snapshot.get_metadata().index;
        }
        image.controller_id = NO_LEADER;
        let storage = MetadataStorage::recovered(raft_voters.clone(), recovered);
        let config = raft::Config {
            id: raft_id(node_id),
            election_tick: (election_timeout_ms as u64 / TICK_MS).max(3) as usize,
            heartbeat_tick: HEARTBEAT_TICKS,
            applied,
            max_size_per_msg: MESSAGE_BYTES_MAX,
            max_inflight_msgs: 256,
            check_quorum: voters.len() > 1,
            pre_vote: true,
            ..Default::default()
        };
        config.validate()?;
        let logger = slog::Logger::root(slog::Fuse(TracingDrain), slog::o!());
        let mut raw = RawNode::new(&config, storage, &logger)?;
        if voters.len() == 1 {
            // A quorum of one: no need to wait for an election timeout.
            raw.campaign()?;
        }
        let (events, events_rx) = local_channel::new_bounded(EVENTS_QUEUED_MAX);
        Ok(Rc::new(Quorum {
            node_id,
            voters,
            raw: RefCell::new(raw),
            files: RefCell::new(files),
            transport,
            events,
            events_rx: RefCell::new(Some(events_rx)),
            image: RefCell::new(Arc::new(image)),
            applied: Cell::new(applied),
            leader: Cell::new(NO_LEADER),
            ready: Cell::new(false),
            proposals: RefCell::new(HashMap::new()),
            proposal_tag: (uuid::Uuid::new_v4().as_u128() & 0xffff_ffff) as u32,
            next_proposal: Cell::new(1),
            watchers: RefCell::new(Vec::new()),
            leader_watchers: RefCell::new(Vec::new()),
            publish,
            revision: Cell::new(0),
        }))
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn voters(&self) -> &[i32] {
        &self.voters
    }

    /// The metadata image as of the last applied entry.
    pub fn image(&self) -> Arc<TopicTable> {
        self.image.borrow().clone()
    }

    /// The active controller as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        let leader = self.leader.get();
        (leader != NO_LEADER).then_some(leader)
    }

    /// This node leads and has applied every earlier entry.
    pub fn is_ready_leader(&self) -> bool {
        self.ready.get()
    }

    pub fn status(&self) -> QuorumStatus {
        let raw = self.raw.borrow();
        let status = raw.status();
        let voters = match &status.progress {
            Some(progress) => self
                .voters
                .iter()
                .map(|v| {
                    let matched = progress.get(raft_id(*v)).map_or(0, |p| p.matched);
                    (NodeId(*v), matched)
                })
                .collect(),
            None => Vec::new(),
        };
        QuorumStatus {
            leader: self.leader.get(),
            term: status.hs.term,
            is_leader: status.ss.raft_state == StateRole::Leader,
            ready: self.ready.get(),
            commit: status.hs.commit,
            applied: self.applied.get(),
            voters,
        }
    }

    /// Resolves at the next leadership change or applied entry.
    pub fn changed(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.watchers.borrow_mut().push(tx);
        rx
    }

    /// Resolves when the active controller changes (or becomes unknown).
    pub fn leader_changed(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.leader_watchers.borrow_mut().push(tx);
        rx
    }

    fn notify(&self) {
        for watcher in self.watchers.borrow_mut().drain(..) {
            let _ = watcher.send(());
        }
    }

    /// A raft message from a peer (protobuf bytes).
    pub fn receive(&self, payload: &[u8]) {
        match Message::parse_from_bytes(payload) {
            Ok(message) => {
                if self.events.try_send(Event::Raft(message)).is_err() {
                    debug!("dropping a raft message: the quorum's event queue is full");
                }
            }
            Err(err) => warn!("dropping an undecodable raft message: {err}"),
        }
    }

    /// Proposes records; resolves with the entry's index once committed and
    /// applied here.
    pub async fn propose(&self, records: &[records::Payload]) -> Result<u64, ProposeError> {
        if !self.ready.get() {
            return Err(ProposeError::NotLeader);
        }
        let (tx, rx) = oneshot::channel();
        let event = Event::Propose(records::encode_batch(records), tx);
        if self.events.send(event).await.is_err() {
            return Err(ProposeError::LeadershipLost);
        }
        rx.await.unwrap_or(Err(ProposeError::LeadershipLost))
    }

    fn context_of(&self, id: u64) -> Vec<u8> {
        let mut context = Vec::with_capacity(16);
        context.extend_from_slice(&self.node_id.to_be_bytes());
        context.extend_from_slice(&self.proposal_tag.to_be_bytes());
        context.extend_from_slice(&id.to_be_bytes());
        context
    }

    /// Our proposal id in an entry's context, if the entry is ours.
    fn our_proposal(&self, context: &[u8]) -> Option<u64> {
        if context.len() != 16
            || context[0..4] != self.node_id.to_be_bytes()
            || context[4..8] != self.proposal_tag.to_be_bytes()
        {
            return None;
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&context[8..16]);
        Some(u64::from_be_bytes(id))
    }

    /// The driver: runs until the executor stops.
    pub async fn run(self: Rc<Self>) {
        let Some(events) = self.events_rx.borrow_mut().take() else {
            return;
        };
        let tick = Duration::from_millis(TICK_MS);
        let mut next_tick = Instant::now() + tick;
        self.process_ready().await;
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.raw.borrow_mut().tick();
                next_tick = now + tick;
            } else {
                let sleep = glommio::timer::sleep(next_tick - now);
                let next = events.recv();
                futures::pin_mut!(sleep, next);
                match futures::future::select(next, sleep).await {
                    futures::future::Either::Left((Some(event), _)) => self.handle(event),
                    futures::future::Either::Left((None, _)) => return,
                    futures::future::Either::Right(_) => {}
                }
            }
            for _ in 0..EVENTS_PER_ROUND {
                match events.recv().now_or_never() {
                    Some(Some(event)) => self.handle(event),
                    _ => break,
                }
            }
            self.process_ready().await;
        }
    }

    fn handle(&self, event: Event) {
        match event {
            Event::Raft(message) => {
                if let Err(err) = self.raw.borrow_mut().step(message) {
                    debug!("raft step: {err}");
                }
            }
            Event::Propose(data, reply) => {
                if !self.ready.get() {
                    let _ = reply.send(Err(ProposeError::NotLeader));
                    return;
                }
                let id = self.next_proposal.get();
                self.next_proposal.set(id + 1);
                let context = self.context_of(id);
                match self.raw.borrow_mut().propose(context, data) {
                    Ok(()) => {
                        self.proposals.borrow_mut().insert(id, reply);
                    }
                    Err(err) => {
                        debug!("proposal dropped: {err}");
                        let _ = reply.send(Err(ProposeError::NotLeader));
                    }
                }
            }
        }
    }

    fn send(&self, messages: Vec<Message>) {
        let Some(transport) = &self.transport else {
            return;
        };
        for message in messages {
            match message.write_to_bytes() {
                Ok(bytes) => transport.send_raft(node_of(message.to).0, &bytes),
                Err(err) => warn!("cannot encode a raft message: {err}"),
            }
        }
    }

    /// Handles every `Ready` raft has.
    async fn process_ready(&self) {
        loop {
            let mut ready = {
                let mut raw = self.raw.borrow_mut();
                if !raw.has_ready() {
                    return;
                }
                raw.ready()
            };
            if let Some(ss) = ready.ss() {
                self.role_changed(ss.leader_id, ss.raft_state);
            }
            self.send(ready.take_messages());
            if !ready.snapshot().is_empty() {
                self.install_snapshot(ready.snapshot().clone()).await;
            }
            self.apply(ready.take_committed_entries());
            let entries = ready.take_entries();
            let hard_state = ready.hs().cloned();
            if !entries.is_empty() || hard_state.is_some() {
                {
                    let mut raw = self.raw.borrow_mut();
                    let store = raw.mut_store();
                    store.append(&entries);
                    if let Some(hs) = &hard_state {
                        store.set_hard_state(hs.clone());
                    }
                }
                let frames = encode_frames(&entries, hard_state.as_ref());
                let job = self.files.borrow_mut().append_job(frames);
                self.durably(job).await;
            }
            self.send(ready.take_persisted_messages());
            let mut light = self.raw.borrow_mut().advance(ready);
            if let Some(commit) = light.commit_index() {
                self.raw.borrow_mut().mut_store().set_commit(commit);
            }
            self.send(light.take_messages());
            self.apply(light.take_committed_entries());
            self.raw.borrow_mut().advance_apply();
            self.maybe_snapshot().await;
        }
    }

    /// Runs a blocking write of the metadata log; a failure stops the broker
    /// (fail-stop: raft must never believe something is stable that is not).
    async fn durably<F>(&self, job: F)
    where
        F: FnOnce() -> Result<(), super::raft_log::RaftLogError> + Send + 'static,
    {
        match glommio::executor().spawn_blocking(job).await {
            Ok(()) => {}
            Err(err) => {
                error!("writing the metadata log failed, stopping the broker: {err}");
                crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
            }
        }
    }

    fn role_changed(&self, leader_raft_id: u64, role: StateRole) {
        let leader = node_of(leader_raft_id);
        if leader != self.leader.get() {
            info!(
                %leader,
                term = self.raw.borrow().raft.term,
                "controller quorum: active controller is now {}",
                if leader == NO_LEADER {
                    "unknown".to_string()
                } else {
                    format!("node {leader}")
                }
            );
        }
        if leader != self.leader.get() {
            for watcher in self.leader_watchers.borrow_mut().drain(..) {
                let _ = watcher.send(());
            }
        }
        self.leader.set(leader);
        if role != StateRole::Leader {
            self.ready.set(false);
            for (_, waiter) in self.proposals.borrow_mut().drain() {
                let _ = waiter.send(Err(ProposeError::LeadershipLost));
            }
        }
        let mut image = (**self.image.borrow()).clone();
        image.controller_id = leader;
        self.set_image(image);
    }

    fn set_image(&self, mut image: TopicTable) {
        self.revision.set(self.revision.get() + 1);
        image.revision = self.revision.get();
        let image = Arc::new(image);
        *self.image.borrow_mut() = image.clone();
        (self.publish)(image);
        self.notify();
    }

    async fn install_snapshot(&self, snapshot: raft::prelude::Snapshot) {
        let index = snapshot.get_metadata().index;
        let mut image = match records::decode_snapshot(snapshot.get_data()) {
            Ok(image) => image,
            Err(err) => {
                error!("the leader sent an unreadable metadata snapshot, stopping: {err}");
                crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
            }
        };
        info!(index, "installing a metadata snapshot from the leader");
        image.controller_id = self.leader.get();
        let (entries, hard_state) = {
            let mut raw = self.raw.borrow_mut();
            let store = raw.mut_store();
            store.apply_snapshot(snapshot.clone());
            (store.entries_after(index), store.hard_state().clone())
        };
        self.write_snapshot(snapshot, entries, hard_state).await;
        self.applied.set(index);
        self.set_image(image);
    }

    async fn write_snapshot(
        &self,
        snapshot: raft::prelude::Snapshot,
        entries: Vec<Entry>,
        hard_state: raft::prelude::HardState,
    ) {
        // The files are only touched here and by append jobs, which this
        // single driver task awaits one at a time.
        let dir = self.files.borrow().dir().to_path_buf();
        let job = RaftLogFiles::snapshot_job(dir, snapshot, entries, hard_state);
        let result = glommio::executor().spawn_blocking(job).await;
        match result {
            Ok(files) => *self.files.borrow_mut() = files,
            Err(err) => {
                error!("writing a metadata snapshot failed, stopping the broker: {err}");
                crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
            }
        }
    }

    async fn maybe_snapshot(&self) {
        let applied = self.applied.get();
        let (due, term, voters) = {
            let raw = self.raw.borrow();
            let store = raw.store();
            let due = applied >= store.snapshot_index() + SNAPSHOT_EVERY_ENTRIES;
            (
                due,
                store.term_of(applied).unwrap_or(0),
                store.voters().to_vec(),
            )
        };
        if !due {
            return;
        }
        let data = records::encode_snapshot(&self.image(), applied, term);
        let snapshot = make_snapshot(applied, term, &voters, data);
        let (entries, hard_state) = {
            let mut raw = self.raw.borrow_mut();
            let store = raw.mut_store();
            store.compact(snapshot.clone());
            (store.entries_after(applied), store.hard_state().clone())
        };
        debug!(index = applied, "metadata snapshot taken");
        self.write_snapshot(snapshot, entries, hard_state).await;
    }

    /// Applies committed entries to the image and resolves our proposals.
    fn apply(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let term = self.raw.borrow().raft.term;
        let is_leader = self.raw.borrow().raft.state == StateRole::Leader;
        let mut image = (**self.image.borrow()).clone();
        let mut resolved = Vec::new();
        for entry in &entries {
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                match records::decode_batch(&entry.data) {
                    Ok(batch) => {
                        for record in &batch {
                            records::apply(&mut image, record);
                        }
                    }
                    Err(err) => {
                        // Every node would fail the same way: stop rather
                        // than let the image diverge from the log.
                        error!(
                            index = entry.index,
                            "committed metadata entry is unreadable, stopping: {err}"
                        );
                        crate::logging::exit(crate::EXIT_STORAGE_FAILURE);
                    }
                }
            }
            if is_leader && entry.term == term && !self.ready.get() {
                // Our first entry of this term: everything before is applied.
                self.ready.set(true);
                info!(term, "this node is the active controller");
            }
            if let Some(id) = self.our_proposal(&entry.context) {
                resolved.push((id, entry.index));
            }
            self.applied.set(entry.index);
        }
        image.metadata_offset = self.applied.get();
        image.controller_id = self.leader.get();
        self.set_image(image);
        let mut proposals = self.proposals.borrow_mut();
        for (id, index) in resolved {
            if let Some(waiter) = proposals.remove(&id) {
                let _ = waiter.send(Ok(index));
            }
        }
    }
}

/// The voters a metadata log was created with are recorded next to it; a
/// node started with other voters is refused (changing the quorum is not
/// supported).
fn check_voters(data_dir: &Path, voters: &[i32]) -> Result<(), QuorumError> {
    let dir = data_dir.join(METADATA_DIR);
    let path = dir.join(VOTERS_FILE);
    let wanted = voters
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let io = |e: std::io::Error| QuorumError::Voters(format!("{}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(found) if found.trim() == wanted => Ok(()),
        Ok(found) => Err(QuorumError::Voters(format!(
            "the metadata log in {} belongs to a quorum of nodes [{}], but controller.quorum.voters \
             names nodes [{wanted}]; changing the quorum is not supported (use a new data directory \
             for a new cluster)",
            dir.display(),
            found.trim()
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(io)?;
            let temp = dir.join("voters.tmp");
            std::fs::write(&temp, &wanted).map_err(io)?;
            std::fs::File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            std::fs::rename(&temp, &path).map_err(io)?;
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io)
        }
        Err(err) => Err(io(err)),
    }
}

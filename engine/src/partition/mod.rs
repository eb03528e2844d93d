//! One partition on the shard that owns it: its log, its role (leader,
//! follower or offline, see [`role`]), the high-watermark rules of its ISR
//! ([`isr`], pure) and who waits on it (long polls, acks=all producers,
//! a follower's syncs).
//!
//! Who touches it: only the owning shard (`Shard::partitions`); other shards
//! reach it through `Shard::call`. Nothing here does I/O beyond the log's
//! own appends and reads; syncs, controller requests and fetches are the
//! callers'.

pub mod append;
pub mod isr;
pub mod read;
pub mod role;

use crate::clock::now_ms;
use crate::errors::KafkaCode;
use futures::channel::oneshot;
use std::sync::Arc;
use strom_storage::error::StorageError;
use strom_storage::log::{LogConfig, PartitionLog};
use strom_tuning::config::TopicConfig;
use uuid::Uuid;

/// A partition this shard owns.
pub struct Partition {
    pub log: PartitionLog,
    pub topic_id: Uuid,
    pub config: Arc<TopicConfig>,
    /// Long-polling fetches waiting for the high watermark to move.
    waiters: Vec<oneshot::Sender<()>>,
    /// Followers' long-polling fetches, woken by every append.
    replica_waiters: Vec<oneshot::Sender<()>>,
    /// acks=all producers waiting until the high watermark reaches the first
    /// number (the offset after their last record); answered NONE, or
    /// NOT_LEADER_OR_FOLLOWER when leadership moves first.
    pub(crate) ack_waiters: Vec<(i64, oneshot::Sender<KafkaCode>)>,
    /// A follower's fetcher waiting until its appends are synced.
    pub(crate) sync_waiters: Vec<(i64, oneshot::Sender<()>)>,
    /// The high watermark consumers were last woken for.
    pub(crate) last_high_watermark: i64,
    /// Leader, follower or offline (see [`role`]).
    pub(crate) role: role::Role,
    /// Replicas of the partition, as the metadata last said.
    pub(crate) replica_count: usize,
    /// Queued for the next group-commit round.
    pub(crate) sync_queued: bool,
    /// Wall clock of the last completed sync (for `flush.ms`).
    pub(crate) last_sync_ms: i64,
    /// Bytes and records in and out, for `/metrics`.
    pub(crate) counters: crate::metrics::PartitionCounters,
}

impl Partition {
    /// A partition with an empty log in `dir` and default configs (tests).
    #[cfg(test)]
    pub(crate) fn empty_for_test(dir: &std::path::Path) -> Partition {
        let config = TopicConfig::defaults_from(&strom_tuning::config::BrokerConfig::default());
        let (log, _) = PartitionLog::open(dir, log_config(&config), 0).expect("open log");
        Partition::new(log, Uuid::nil(), Arc::new(config))
    }

    /// A follower matching its leader: truncates the log to `offset` and
    /// releases the waits for the sync of records it discarded. Those
    /// records are gone, so no sync round would ever release their waits,
    /// and the fetch task waiting on one serves every partition of its
    /// leader: it would stop replicating all of them (issue 17, defect 6).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        self.log.truncate_to(offset)?;
        self.release_sync_waits_past(offset);
        Ok(())
    }

    /// A follower behind its leader's log start: empties the log, which
    /// starts again at `start`, and releases every sync wait (none of the
    /// records waited for is left).
    pub(crate) fn restart_at(&mut self, start: i64) -> Result<(), StorageError> {
        self.log.truncate_fully_and_start_at(start)?;
        self.release_sync_waits_past(i64::MIN);
        Ok(())
    }

    /// Releases the sync waits for offsets past `end`.
    fn release_sync_waits_past(&mut self, end: i64) {
        self.release_sync_waits(|offset| offset > end);
    }

    /// Releases the sync waits whose offset `done` says are over.
    pub(crate) fn release_sync_waits(&mut self, done: impl Fn(i64) -> bool) {
        let mut i = 0;
        while i < self.sync_waiters.len() {
            if done(self.sync_waiters[i].0) {
                let (_, waiter) = self.sync_waiters.swap_remove(i);
                let _ = waiter.send(());
            } else {
                i += 1;
            }
        }
    }

    /// An acks=all producer's wait until the high watermark reaches
    /// `acked` (answered NONE, or the error that ended the wait).
    pub(crate) fn wait_for_ack(&mut self, acked: i64) -> oneshot::Receiver<KafkaCode> {
        let (tx, rx) = oneshot::channel();
        self.ack_waiters.push((acked, tx));
        rx
    }

    pub(crate) fn new(log: PartitionLog, topic_id: Uuid, config: Arc<TopicConfig>) -> Partition {
        let last_high_watermark = log.high_watermark();
        Partition {
            log,
            topic_id,
            config,
            waiters: Vec::new(),
            replica_waiters: Vec::new(),
            ack_waiters: Vec::new(),
            sync_waiters: Vec::new(),
            last_high_watermark,
            role: role::Role::Offline {
                leader_epoch: crate::ids::LeaderEpoch::UNKNOWN,
            },
            replica_count: 1,
            sync_queued: false,
            last_sync_ms: now_ms(),
            counters: crate::metrics::PartitionCounters::default(),
        }
    }

    /// A follower's long poll: fires at the next append.
    pub(crate) fn wait_for_append(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.replica_waiters.retain(|w| !w.is_canceled());
        self.replica_waiters.push(tx);
        rx
    }

    /// A consumer's long poll: fires when the high watermark (or the last
    /// stable offset) moves.
    pub(crate) fn wait_for_high_watermark(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiters.retain(|w| !w.is_canceled());
        self.waiters.push(tx);
        rx
    }

    /// Wakes followers' long-polling fetches (the log end moved).
    pub(crate) fn wake_replica_fetches(&mut self) {
        for waiter in self.replica_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Wakes long-polling fetches (the high watermark moved).
    pub(crate) fn wake_fetches(&mut self) {
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

/// The storage settings of a partition of a topic with this config.
pub fn log_config(config: &TopicConfig) -> LogConfig {
    let delete = config.cleanup_policy.contains("delete");
    LogConfig {
        segment_bytes: config.segment_bytes,
        segment_ms: config.segment_ms,
        index_interval_bytes: config.index_interval_bytes,
        // Compaction is not implemented: a compact-only topic keeps all.
        retention_ms: if delete { config.retention_ms } else { -1 },
        retention_bytes: if delete { config.retention_bytes } else { -1 },
        write_caching: config.write_caching,
    }
}

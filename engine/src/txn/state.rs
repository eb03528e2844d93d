//! The transaction coordinator's state (KIP-98): what each
//! `transactional.id` is doing, and its records in `__transaction_state`.
//!
//! A transactional id is coordinated by the shard owning partition
//! `abs(javaHash(id)) % transaction.state.log.num.partitions` of
//! `__transaction_state` on the broker leading that partition (Kafka's rule,
//! as for groups). Each shard keeps the ids it coordinates in one
//! [`TxnCoordinator`]; every change is a record in that partition, written
//! with acks=all before anyone is told of it, and read back when the shard
//! becomes the partition's leader (start-up or failover). The requests
//! that drive it are in `kafka/` and its service in `txn/service.rs`.
//!
//! States, as in Kafka: `Empty` (an id with a producer id and epoch, no
//! transaction) → AddPartitionsToTxn / AddOffsetsToTxn → `Ongoing` → EndTxn →
//! `PrepareCommit` / `PrepareAbort` (written before any marker) → markers
//! on every partition of the transaction → `CompleteCommit` /
//! `CompleteAbort` → the next transaction. A coordinator that finds a
//! `Prepare*` state when it loads the partition writes the markers again
//! (a marker for a transaction already ended changes nothing).
//!
//! # Records (big-endian, strings i16 length + UTF-8; Kafka's layout)
//!
//! * key `[i16 0][transactional id]`;
//! * value `[i16 0][i64 producer id][i16 epoch][i32 timeout ms][i8 state]
//!   [i32 n][n × ([topic][i32 m][m × i32 partition])][i64 last update ms]
//!   [i64 start ms]`;
//! * a null value (tombstone) forgets the id (`transactional.id.expiration.ms`).

use crate::group::{java_hash, put_string, Reader};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use crate::metadata::TXN_TOPIC;

/// The `__transaction_state` partition of a transactional id.
pub fn txn_partition(id: &str, partitions: i32) -> i32 {
    (java_hash(id) & 0x7fff_ffff) % partitions.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The name Kafka's tools show (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn code(self) -> i8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as i8
    }

    fn from_code(code: i8) -> Option<TxnState> {
        Self::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// Markers are being written.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// What the coordinator knows of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started; -1 without one.
    pub start_ms: i64,
    pub update_ms: i64,
}

impl TxnMeta {
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMeta {
        TxnMeta {
            producer_id,
            epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: now_ms,
        }
    }
}

/// One id this shard coordinates.
#[derive(Debug, Clone)]
pub struct TxnEntry {
    /// Its `__transaction_state` partition.
    pub partition: i32,
    pub meta: TxnMeta,
    /// A request is changing it (waiting for its record or markers); others
    /// get CONCURRENT_TRANSACTIONS meanwhile.
    pub busy: bool,
}

impl TxnEntry {
    /// Not busy, no transaction open, and unchanged for `expiration_ms`.
    fn idle(&self, now_ms: i64, expiration_ms: i64) -> bool {
        !self.busy
            && matches!(
                self.meta.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            )
            && self.meta.update_ms.saturating_add(expiration_ms) < now_ms
    }
}

/// The transactional ids one shard coordinates.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    pub txns: HashMap<String, TxnEntry>,
    /// The `__transaction_state` partitions loaded here, with the leader
    /// epoch they were loaded at (the coordinator epoch of the markers).
    pub loaded: BTreeMap<i32, i32>,
}

impl TxnCoordinator {
    /// Whether this shard coordinates `partition` at `coordinator_epoch`
    /// still (a request that waited may find it moved).
    pub fn coordinates(&self, partition: i32, coordinator_epoch: i32) -> bool {
        self.loaded.get(&partition) == Some(&coordinator_epoch)
    }

    /// Loads the records of a partition this shard now leads: the last
    /// record of each id wins; returns the ids left preparing (their markers
    /// must be written again).
    pub fn load(
        &mut self,
        partition: i32,
        coordinator_epoch: i32,
        records: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Vec<String> {
        self.unload(partition);
        self.loaded.insert(partition, coordinator_epoch);
        for (key, value) in records {
            let Some(id) = parse_key(&key) else { continue };
            match value.as_deref().and_then(parse_value) {
                Some(meta) => {
                    self.txns.insert(
                        id,
                        TxnEntry {
                            partition,
                            meta,
                            busy: false,
                        },
                    );
                }
                None => {
                    self.txns.remove(&id);
                }
            }
        }
        self.txns
            .iter()
            .filter(|(_, e)| e.partition == partition && e.meta.state.is_preparing())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Drops the ids of a partition this shard no longer leads.
    pub fn unload(&mut self, partition: i32) {
        self.loaded.remove(&partition);
        self.txns.retain(|_, e| e.partition != partition);
    }

    /// Ids with a transaction open longer than its timeout, not busy.
    pub fn timed_out(&self, now_ms: i64) -> Vec<String> {
        self.txns
            .iter()
            .filter(|(_, e)| {
                !e.busy
                    && e.meta.state == TxnState::Ongoing
                    && e.meta.start_ms + i64::from(e.meta.timeout_ms) < now_ms
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ids without an open transaction, idle for `expiration_ms` (and not
    /// busy), with their partition.
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> Vec<(String, i32)> {
        self.txns
            .iter()
            .filter(|(_, e)| e.idle(now_ms, expiration_ms))
            .map(|(id, e)| (id.clone(), e.partition))
            .collect()
    }

    /// Whether `id` is still one [`Self::expired`] would list.
    pub fn is_expired(&self, id: &str, now_ms: i64, expiration_ms: i64) -> bool {
        self.txns
            .get(id)
            .is_some_and(|e| e.idle(now_ms, expiration_ms))
    }
}

pub fn key(id: &str) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    put_string(&mut out, id);
    out
}

pub fn value(meta: &TxnMeta) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    out.extend_from_slice(&meta.producer_id.to_be_bytes());
    out.extend_from_slice(&meta.epoch.to_be_bytes());
    out.extend_from_slice(&meta.timeout_ms.to_be_bytes());
    out.push(meta.state.code() as u8);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in &meta.partitions {
        by_topic.entry(topic).or_default().push(*p);
    }
    out.extend_from_slice(&(by_topic.len() as i32).to_be_bytes());
    for (topic, partitions) in by_topic {
        put_string(&mut out, topic);
        out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&meta.update_ms.to_be_bytes());
    out.extend_from_slice(&meta.start_ms.to_be_bytes());
    out
}

fn parse_key(key: &[u8]) -> Option<String> {
    let mut r = Reader(key);
    (r.i16()? == 0).then_some(())?;
    r.string()
}

fn parse_value(value: &[u8]) -> Option<TxnMeta> {
    let mut r = Reader(value);
    (r.i16()? == 0).then_some(())?;
    let producer_id = r.i64()?;
    let epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_code(r.take(1)?[0] as i8)?;
    let topics = r.i32()?;
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = r.string()?;
        let n = r.i32()?;
        for _ in 0..n.max(0) {
            partitions.insert((topic.clone(), r.i32()?));
        }
    }
    let update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Some(TxnMeta {
        producer_id,
        epoch,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(state: TxnState) -> TxnMeta {
        TxnMeta {
            producer_id: 1000,
            epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 2),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 10,
            update_ms: 20,
        }
    }

    #[test]
    fn records_round_trip_and_the_last_one_wins() {
        for state in TxnState::ALL {
            let m = meta(state);
            assert_eq!(parse_value(&value(&m)), Some(m));
            assert_eq!(TxnState::from_name(state.name()), Some(state));
        }
        let mut c = TxnCoordinator::default();
        let preparing = c.load(
            4,
            7,
            vec![
                (key("x"), Some(value(&meta(TxnState::Ongoing)))),
                (key("x"), Some(value(&meta(TxnState::PrepareCommit)))),
                (key("y"), Some(value(&meta(TxnState::Ongoing)))),
                (key("z"), Some(value(&meta(TxnState::Empty)))),
                (key("z"), None),
            ],
        );
        assert_eq!(preparing, vec!["x".to_string()]);
        assert_eq!(c.txns.len(), 2);
        assert!(c.coordinates(4, 7) && !c.coordinates(4, 8));
        assert_eq!(c.timed_out(60_011), vec!["y".to_string()]);
        assert!(c.timed_out(60_010).is_empty());
        c.unload(4);
        assert!(c.txns.is_empty() && !c.coordinates(4, 7));
    }

    #[test]
    fn the_partition_of_an_id_follows_kafkas_rule() {
        // abs(javaHash) % partitions, as for consumer groups.
        assert_eq!(
            txn_partition("my-txn", 50),
            crate::group::offsets_partition("my-txn", 50)
        );
        assert!((0..50).contains(&txn_partition("", 50)));
    }
}

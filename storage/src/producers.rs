//! Producer state of one partition: what an idempotent producer wrote, so a
//! retried batch is written once and a lost one is noticed (KIP-98).
//!
//! Per producer id the partition keeps the producer epoch and the sequence
//! ranges (with their offsets) of the last [`BATCHES_KEPT`] batches, as
//! Kafka does: a client has at most five batches in flight per partition, so
//! a retry always names one of them.
//!
//! A batch from the client is checked against that state before it is
//! appended ([`ProducerStates::check`]):
//! - an epoch older than the producer's current one is refused
//!   ([`SequenceCheck::StaleEpoch`]: INVALID_PRODUCER_EPOCH);
//! - a newer epoch starts afresh and must begin at sequence 0;
//! - the same epoch: a batch whose sequence range is one of the kept ones
//!   is a duplicate (answered with the offsets it got the first time,
//!   nothing written); otherwise it must start right after the last kept
//!   batch ([`SequenceCheck::OutOfOrder`]: OUT_OF_ORDER_SEQUENCE_NUMBER);
//! - a producer id the partition does not know is accepted at any sequence
//!   (its state may have expired, or been deleted with old segments; since
//!   KIP-360 Kafka accepts it too).
//!
//! Batches a follower copies from its leader are not checked, only
//! recorded: the leader checked them, and followers thus hold the same
//! state. The log snapshots the state at every segment roll and at a clean
//! close (`<offset>.producers`, see [`ProducerStates::encode_snapshot`]);
//! when the log opens or is truncated, the state is the newest snapshot at
//! or below the log end plus the batch headers after it (all of them when
//! there is no snapshot), so it survives restarts and leader changes. An
//! idle producer is forgotten after `producer.id.expiration.ms`
//! ([`ProducerStates::expire`]).

use crate::batch::{BatchHeader, Marker};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Batches remembered per producer (Kafka's NUM_BATCHES_TO_RETAIN).
pub const BATCHES_KEPT: usize = 5;

/// One batch of an idempotent producer: its sequence range and offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What a partition knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first; at most [`BATCHES_KEPT`].
    pub batches: VecDeque<BatchSequence>,
    /// Largest batch timestamp seen (ms), for expiry.
    pub last_timestamp: i64,
    /// The first offset of the producer's open transaction on this
    /// partition, if one is open (a transactional batch was written and no
    /// marker since).
    pub txn_first_offset: Option<i64>,
    /// The coordinator epoch of the newest marker (-1: none yet): a marker
    /// from an older coordinator is refused.
    pub coordinator_epoch: i32,
}

impl ProducerEntry {
    /// A producer the partition has no state for: any epoch is newer, any
    /// sequence accepted.
    fn unknown() -> ProducerEntry {
        ProducerEntry {
            epoch: -1,
            batches: VecDeque::new(),
            last_timestamp: -1,
            txn_first_offset: None,
            coordinator_epoch: -1,
        }
    }

    /// The last sequence written, if any.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// The outcome of checking a client's batch before it is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New: append it.
    Append,
    /// Already written, at these offsets: answer with them, write nothing.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// Not the next sequence: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32, got: i32 },
    /// An epoch older than the producer's current one: INVALID_PRODUCER_EPOCH.
    StaleEpoch { current: i16, got: i16 },
}

/// The sequence after `seq`, `by` further on (sequences wrap from
/// `i32::MAX` to 0, as Kafka's do).
pub fn advance_sequence(seq: i32, by: i32) -> i32 {
    if seq > i32::MAX - by {
        by - (i32::MAX - seq) - 1
    } else {
        seq + by
    }
}

/// The last sequence of a batch.
pub fn last_sequence(header: &BatchHeader) -> i32 {
    advance_sequence(header.base_sequence, header.last_offset_delta)
}

/// Whether a batch carries idempotent producer state (a producer id and a
/// sequence; control batches carry markers, not sequences).
pub fn is_idempotent(header: &BatchHeader) -> bool {
    header.producer_id >= 0 && header.base_sequence >= 0 && !header.is_control()
}

/// A transaction a marker ended on this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub marker: Marker,
}

/// Why a marker is refused (see [`ProducerStates::check_marker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerRefused {
    /// INVALID_PRODUCER_EPOCH.
    StaleEpoch { current: i16 },
    /// TRANSACTION_COORDINATOR_FENCED.
    StaleCoordinator { current: i32 },
}

/// Producer state of a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// (first offset, producer id) of every open transaction: the last
    /// stable offset without a walk over every producer on each fetch.
    open: BTreeSet<(i64, i64)>,
}

impl ProducerStates {
    pub fn new() -> ProducerStates {
        ProducerStates::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer id known here, with its entry.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Checks the batches of one produce request for this partition, in
    /// order, as if each were appended before the next is checked. They are
    /// all new ([`SequenceCheck::Append`]), all duplicates (the offsets of
    /// the first to the last), or the first problem found. A mix of
    /// duplicates and new batches is out of order: a client retries whole
    /// batches, never part of a request.
    pub fn check(&self, headers: &[BatchHeader]) -> SequenceCheck {
        let mut batches = headers.iter().filter(|h| is_idempotent(h)).peekable();
        let Some(first) = batches.next() else {
            return SequenceCheck::Append;
        };
        if batches.peek().is_none() {
            // One batch per partition, as clients send: no copy of the state.
            return self
                .producers
                .get(&first.producer_id)
                .map_or(SequenceCheck::Append, |entry| check_one(entry, first));
        }
        let mut scratch: HashMap<i64, ProducerEntry> = HashMap::new();
        let mut duplicate: Option<(i64, i64)> = None;
        let mut appended = false;
        for header in std::iter::once(first).chain(batches) {
            let entry = scratch.entry(header.producer_id).or_insert_with(|| {
                self.producers
                    .get(&header.producer_id)
                    .cloned()
                    .unwrap_or_else(ProducerEntry::unknown)
            });
            match check_one(entry, header) {
                SequenceCheck::Append => {
                    if duplicate.is_some() {
                        return out_of_order(entry, header);
                    }
                    appended = true;
                    push(entry, header, -1);
                }
                SequenceCheck::Duplicate {
                    base_offset,
                    last_offset,
                } => {
                    if appended {
                        return out_of_order(entry, header);
                    }
                    duplicate = Some(match duplicate {
                        Some((first, _)) => (first, last_offset),
                        None => (base_offset, last_offset),
                    });
                }
                problem => return problem,
            }
        }
        match duplicate {
            Some((base_offset, last_offset)) => SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            },
            None => SequenceCheck::Append,
        }
    }

    /// Records batches written to the log, at the offsets they carry
    /// (no control batches among them).
    pub fn record(&mut self, headers: &[BatchHeader]) {
        for header in headers {
            self.record_at(header, header.base_offset, None);
        }
    }

    /// Records one batch written at `base_offset` (a leader's append knows
    /// the offsets before the header does); `marker` is what a control
    /// batch carries. A transactional batch opens its producer's
    /// transaction here if none is open; a marker ends it, and the ended
    /// transaction is returned (`None` if the producer had none open here).
    /// Batches without producer state are skipped.
    pub fn record_at(
        &mut self,
        header: &BatchHeader,
        base_offset: i64,
        marker: Option<(Marker, i32)>,
    ) -> Option<EndedTxn> {
        if header.producer_id < 0 {
            return None;
        }
        if header.is_control() {
            let (marker, coordinator_epoch) = marker?;
            // A producer this partition never saw still gets an entry: the
            // marker's epoch fences a late batch of the old epoch.
            let entry = self
                .producers
                .entry(header.producer_id)
                .or_insert_with(ProducerEntry::unknown);
            entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
            if header.producer_epoch > entry.epoch {
                // The coordinator bumped the epoch to end the transaction
                // (a fenced or timed-out producer): the next batches start
                // a new sequence.
                entry.epoch = header.producer_epoch;
                entry.batches.clear();
            }
            entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
            let first_offset = entry.txn_first_offset.take()?;
            self.open.remove(&(first_offset, header.producer_id));
            return Some(EndedTxn {
                producer_id: header.producer_id,
                first_offset,
                last_offset: base_offset,
                marker,
            });
        }
        if is_idempotent(header) {
            let entry = self
                .producers
                .entry(header.producer_id)
                .or_insert_with(ProducerEntry::unknown);
            push(entry, header, base_offset);
            if header.is_transactional() && entry.txn_first_offset.is_none() {
                entry.txn_first_offset = Some(base_offset);
                self.open.insert((base_offset, header.producer_id));
            }
        }
        None
    }

    /// Checks a marker the coordinator is about to write: one from an epoch
    /// older than the producer's current one, or from an older coordinator,
    /// is refused (it would end a transaction it does not belong to).
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), MarkerRefused> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < entry.epoch {
            return Err(MarkerRefused::StaleEpoch {
                current: entry.epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(MarkerRefused::StaleCoordinator {
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// The first offset of the oldest transaction still open on this
    /// partition: the last stable offset can be no higher.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open.first().map(|(first, _)| *first)
    }

    /// How many producers have a transaction open here.
    pub fn open_transactions(&self) -> usize {
        self.open.len()
    }

    /// Forgets producers whose last batch is older than `expiration_ms`
    /// before `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction stays until its coordinator
        // ends it (by marker), however long that takes.
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || e.last_timestamp.saturating_add(expiration_ms) > now_ms
        });
        before - self.producers.len()
    }

    /// Forgets everything (the log was emptied).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.open.clear();
    }
}

/// First bytes of a producer state snapshot file (version 2 adds each
/// producer's open transaction; version 1 files still load).
const SNAPSHOT_MAGIC: &[u8; 4] = b"SPS2";
const SNAPSHOT_MAGIC_V1: &[u8; 4] = b"SPS1";

impl ProducerStates {
    /// The state as of log offset `offset`, as bytes: magic, offset,
    /// producers (id, epoch, last timestamp, batches), CRC-32C of it all.
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp.to_be_bytes());
            out.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot written by [`Self::encode_snapshot`]: its offset and
    /// state, or `None` if it is torn, corrupt or not a snapshot.
    pub fn decode_snapshot(buf: &[u8]) -> Option<(i64, ProducerStates)> {
        let (body, crc) = buf.split_at_checked(buf.len().checked_sub(4)?)?;
        if crc32c::crc32c(body).to_be_bytes() != crc[..] {
            return None;
        }
        let mut r = Reader { buf: body, at: 0 };
        let magic = r.take(4)?;
        let v2 = magic == SNAPSHOT_MAGIC;
        if !v2 && magic != SNAPSHOT_MAGIC_V1 {
            return None;
        }
        let offset = r.i64()?;
        let count = r.u32()?;
        let mut states = ProducerStates::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let last_timestamp = r.i64()?;
            let (txn_first_offset, coordinator_epoch) = if v2 {
                (Some(r.i64()?).filter(|o| *o >= 0), r.i32()?)
            } else {
                (None, -1)
            };
            let n = r.take(1)?[0] as usize;
            if n > BATCHES_KEPT {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchSequence {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    base_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
            let entry = ProducerEntry {
                epoch,
                batches,
                last_timestamp,
                txn_first_offset,
                coordinator_epoch,
            };
            if let Some(first) = entry.txn_first_offset {
                states.open.insert((first, id));
            }
            states.producers.insert(id, entry);
        }
        (r.at == body.len()).then_some((offset, states))
    }
}

/// Big-endian reads over a snapshot; `None` past the end.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let bytes = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

fn check_one(entry: &ProducerEntry, header: &BatchHeader) -> SequenceCheck {
    let epoch = header.producer_epoch;
    if epoch < entry.epoch {
        return SequenceCheck::StaleEpoch {
            current: entry.epoch,
            got: epoch,
        };
    }
    let first = header.base_sequence;
    let last = last_sequence(header);
    if epoch > entry.epoch {
        // A new epoch starts at 0, except for a producer this partition
        // never saw (its state expired or was never here).
        return if first == 0 || entry.batches.is_empty() {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: first,
            }
        };
    }
    if let Some(b) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first && b.last_seq == last)
    {
        return SequenceCheck::Duplicate {
            base_offset: b.base_offset,
            last_offset: b.last_offset,
        };
    }
    match entry.last_seq() {
        None => SequenceCheck::Append,
        Some(seq) if advance_sequence(seq, 1) == first => SequenceCheck::Append,
        Some(seq) => SequenceCheck::OutOfOrder {
            expected: advance_sequence(seq, 1),
            got: first,
        },
    }
}

fn out_of_order(entry: &ProducerEntry, header: &BatchHeader) -> SequenceCheck {
    SequenceCheck::OutOfOrder {
        expected: entry.last_seq().map_or(0, |s| advance_sequence(s, 1)),
        got: header.base_sequence,
    }
}

/// Adds a batch to an entry (a newer epoch starts it afresh).
fn push(entry: &mut ProducerEntry, header: &BatchHeader, base_offset: i64) {
    if header.producer_epoch != entry.epoch {
        entry.epoch = header.producer_epoch;
        entry.batches.clear();
    }
    if entry.batches.len() == BATCHES_KEPT {
        entry.batches.pop_front();
    }
    entry.batches.push_back(BatchSequence {
        first_seq: header.base_sequence,
        last_seq: last_sequence(header),
        base_offset,
        last_offset: base_offset + i64::from(header.last_offset_delta),
    });
    entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, first_seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000 + base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: first_seq,
            records_count: records,
        }
    }

    fn written(states: &mut ProducerStates, h: BatchHeader) {
        assert_eq!(states.check(&[h]), SequenceCheck::Append, "{h:?}");
        states.record(&[h]);
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_with_its_first_offsets() {
        let mut s = ProducerStates::new();
        written(&mut s, batch(7, 0, 0, 3, 10));
        written(&mut s, batch(7, 0, 3, 2, 13));
        assert_eq!(
            s.check(&[batch(7, 0, 0, 3, 99)]),
            SequenceCheck::Duplicate {
                base_offset: 10,
                last_offset: 12
            }
        );
        assert_eq!(
            s.check(&[batch(7, 0, 3, 2, 99)]),
            SequenceCheck::Duplicate {
                base_offset: 13,
                last_offset: 14
            }
        );
        assert_eq!(s.check(&[batch(7, 0, 5, 1, 99)]), SequenceCheck::Append);
    }

    #[test]
    fn a_gap_or_a_partial_overlap_is_out_of_order() {
        let mut s = ProducerStates::new();
        written(&mut s, batch(7, 0, 0, 3, 0));
        assert_eq!(
            s.check(&[batch(7, 0, 4, 1, 0)]),
            SequenceCheck::OutOfOrder {
                expected: 3,
                got: 4
            }
        );
        assert_eq!(
            s.check(&[batch(7, 0, 1, 3, 0)]),
            SequenceCheck::OutOfOrder {
                expected: 3,
                got: 1
            }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::new();
        for i in 0..7 {
            written(&mut s, batch(1, 0, i, 1, i64::from(i)));
        }
        assert_eq!(s.get(1).unwrap().batches.len(), BATCHES_KEPT);
        // Sequence 1 is forgotten: neither new nor a known duplicate.
        assert!(matches!(
            s.check(&[batch(1, 0, 1, 1, 0)]),
            SequenceCheck::OutOfOrder { .. }
        ));
        assert!(matches!(
            s.check(&[batch(1, 0, 2, 1, 0)]),
            SequenceCheck::Duplicate { base_offset: 2, .. }
        ));
    }

    #[test]
    fn older_epochs_are_fenced_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerStates::new();
        written(&mut s, batch(1, 3, 0, 2, 0));
        assert_eq!(
            s.check(&[batch(1, 2, 2, 1, 0)]),
            SequenceCheck::StaleEpoch { current: 3, got: 2 }
        );
        assert_eq!(
            s.check(&[batch(1, 4, 5, 1, 0)]),
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: 5
            }
        );
        written(&mut s, batch(1, 4, 0, 1, 2));
        assert_eq!(s.get(1).unwrap().epoch, 4);
        assert_eq!(s.get(1).unwrap().batches.len(), 1);
    }

    #[test]
    fn an_unknown_producer_is_accepted_at_any_sequence() {
        let s = ProducerStates::new();
        assert_eq!(s.check(&[batch(9, 0, 42, 1, 0)]), SequenceCheck::Append);
    }

    #[test]
    fn sequences_wrap_after_the_largest_int() {
        assert_eq!(advance_sequence(i32::MAX, 1), 0);
        assert_eq!(advance_sequence(i32::MAX - 1, 3), 1);
        let mut s = ProducerStates::new();
        written(&mut s, batch(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(s.get(1).unwrap().last_seq(), Some(i32::MAX));
        assert_eq!(s.check(&[batch(1, 0, 0, 1, 0)]), SequenceCheck::Append);
    }

    #[test]
    fn batches_of_one_request_are_checked_in_order() {
        let mut s = ProducerStates::new();
        let two = [batch(1, 0, 0, 2, 0), batch(1, 0, 2, 2, 2)];
        assert_eq!(s.check(&two), SequenceCheck::Append);
        s.record(&two);
        assert_eq!(
            s.check(&two),
            SequenceCheck::Duplicate {
                base_offset: 0,
                last_offset: 3
            }
        );
        // A retried batch with a new one behind it: never half-written.
        assert!(matches!(
            s.check(&[batch(1, 0, 2, 2, 0), batch(1, 0, 4, 1, 0)]),
            SequenceCheck::OutOfOrder { .. }
        ));
    }

    #[test]
    fn plain_batches_and_control_batches_carry_no_state() {
        let mut s = ProducerStates::new();
        let mut plain = batch(-1, -1, -1, 3, 0);
        plain.producer_id = -1;
        let mut control = batch(5, 0, -1, 1, 3);
        control.attributes = 0x20;
        s.record(&[plain, control]);
        assert!(s.is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let mut s = ProducerStates::new();
        written(&mut s, batch(1, 2, 0, 3, 10));
        written(&mut s, batch(1, 2, 3, 1, 13));
        written(&mut s, batch(5, 0, 7, 2, 14));
        let bytes = s.encode_snapshot(16);
        assert_eq!(
            ProducerStates::decode_snapshot(&bytes),
            Some((16, s.clone()))
        );
        assert_eq!(
            ProducerStates::decode_snapshot(&ProducerStates::new().encode_snapshot(0)),
            Some((0, ProducerStates::new()))
        );
        for cut in 0..bytes.len() {
            assert_eq!(
                ProducerStates::decode_snapshot(&bytes[..cut]),
                None,
                "torn at {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(ProducerStates::decode_snapshot(&flipped), None);
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerStates::new();
        written(&mut s, batch(1, 0, 0, 1, 0)); // max timestamp 1000
        written(&mut s, batch(2, 0, 0, 1, 5_000)); // 6000
        assert_eq!(s.expire(7_000, 5_500), 1);
        assert!(s.get(1).is_none());
        assert!(s.get(2).is_some());
    }

    #[test]
    fn a_transaction_is_open_from_its_first_batch_to_its_marker() {
        let mut s = ProducerStates::new();
        let mut t = batch(7, 0, 0, 2, 10);
        t.attributes = 0x10;
        let mut t2 = batch(7, 0, 2, 1, 12);
        t2.attributes = 0x10;
        assert_eq!(s.record_at(&t, 10, None), None);
        assert_eq!(s.record_at(&t2, 12, None), None);
        written(&mut s, batch(8, 0, 0, 1, 13));
        assert_eq!(s.first_unstable_offset(), Some(10));
        // Open transactions survive a snapshot and expiry.
        let bytes = s.encode_snapshot(14);
        assert_eq!(
            ProducerStates::decode_snapshot(&bytes),
            Some((14, s.clone()))
        );
        assert_eq!(s.expire(i64::MAX, 1), 1);
        let mut marker = batch(7, 1, -1, 1, 14);
        marker.attributes = 0x30;
        let ended = s.record_at(&marker, 14, Some((Marker::Abort, 3)));
        assert_eq!(
            ended,
            Some(EndedTxn {
                producer_id: 7,
                first_offset: 10,
                last_offset: 14,
                marker: Marker::Abort
            })
        );
        assert_eq!(s.first_unstable_offset(), None);
        // The marker's bumped epoch fences the old one.
        assert!(matches!(
            s.check(&[t]),
            SequenceCheck::StaleEpoch { current: 1, got: 0 }
        ));
        // A second marker ends nothing.
        assert_eq!(s.record_at(&marker, 15, Some((Marker::Abort, 3))), None);
        // Markers of an older epoch or an older coordinator are refused.
        assert_eq!(
            s.check_marker(7, 0, 3),
            Err(MarkerRefused::StaleEpoch { current: 1 })
        );
        assert_eq!(
            s.check_marker(7, 1, 2),
            Err(MarkerRefused::StaleCoordinator { current: 3 })
        );
        assert_eq!(s.check_marker(7, 1, 3), Ok(()));
        // A marker for a producer never seen here records its epoch, so a
        // late batch of the old epoch is fenced.
        let mut unseen = batch(9, 4, -1, 1, 16);
        unseen.attributes = 0x30;
        assert_eq!(s.record_at(&unseen, 16, Some((Marker::Abort, 3))), None);
        let late = batch(9, 3, 0, 1, 17);
        assert!(matches!(
            s.check(&[late]),
            SequenceCheck::StaleEpoch { current: 4, got: 3 }
        ));
    }
}

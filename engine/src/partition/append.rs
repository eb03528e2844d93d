//! A produce's batches appended to one partition: the checks a leader makes
//! (role, `min.insync.replicas`, disk space, producer sequences), the
//! append, and what the shard must do next, returned rather than done (the
//! group-commit queue, the acks=all wait, the disk-full flag, fail-stop).

use super::role::Role;
use super::Partition;
use crate::errors::{KafkaCode, DISK_FULL_MESSAGE};
use crate::messages::{AppendItem, AppendOutcome};
use futures::channel::oneshot;
use std::path::PathBuf;
use strom_storage::producers::SequenceCheck;
use strom_storage::StorageError;
use strom_tuning::config::TimestampType;

/// One append's answer and what the caller does with it.
pub(crate) struct Appended {
    pub outcome: AppendOutcome,
    /// Queue the partition for the next group-commit round.
    pub sync: bool,
    /// acks=all: answer once this fires (the in-sync replicas have the
    /// records and, without write caching, synced them).
    pub wait: Option<oneshot::Receiver<KafkaCode>>,
    /// What went wrong in the log, for the shard to act on.
    pub failure: Option<AppendFailure>,
}

/// A storage failure of an append.
pub(crate) enum AppendFailure {
    /// Out of space: nothing of the append remains; produce is refused until
    /// the space check sees room again.
    NoSpace { path: PathBuf, reason: String },
    /// Any other write failure leaves the log in an unknown state: the
    /// broker must stop (fail-stop).
    Fatal(StorageError),
}

/// The shard-wide facts an append depends on.
#[derive(Clone, Copy)]
pub(crate) struct AppendContext {
    pub now_ms: i64,
    /// acks=all: `min.insync.replicas` is checked and a wait is returned.
    pub wait_synced: bool,
    /// The data directory is below its free-space floor.
    pub disk_full: bool,
}

impl Appended {
    /// A refused append: `error` and its message.
    pub(crate) fn refused(error: KafkaCode, message: &str) -> Appended {
        Appended {
            outcome: AppendOutcome {
                error,
                message: Some(message.to_string()),
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: -1,
            },
            sync: false,
            wait: None,
            failure: None,
        }
    }
}

impl Partition {
    /// Appends `item` if this replica leads and may take it.
    pub(crate) fn append(&mut self, item: &mut AppendItem, context: AppendContext) -> Appended {
        let Role::Leader(leader) = &self.role else {
            return Appended::refused(
                KafkaCode::NOT_LEADER_OR_FOLLOWER,
                "This broker is not the leader of this partition",
            );
        };
        let leader_epoch = leader.leader_epoch;
        let replicated = leader.replicas.len() > 1;
        if context.wait_synced {
            let in_sync = self.in_sync_replicas();
            let wanted = self.config.min_insync_replicas.max(1) as usize;
            if in_sync < wanted {
                let message = format!(
                    "The size of the current ISR ({in_sync}) is insufficient to satisfy \
                     the min.isr requirement of {wanted} for partition {}-{}",
                    item.tp.topic, item.tp.partition
                );
                return Appended::refused(KafkaCode::NOT_ENOUGH_REPLICAS, &message);
            }
        }
        if context.disk_full {
            return Appended::refused(KafkaCode::KAFKA_STORAGE_ERROR, DISK_FULL_MESSAGE);
        }
        if let Some(refused) = self.check_sequences(item, context) {
            return refused;
        }
        let append_time = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => Some(context.now_ms),
            TimestampType::CreateTime => None,
        };
        let segments_before = self.log.segment_count();
        let info = match self.log.append(
            &mut item.records,
            &item.headers,
            leader_epoch.0,
            append_time,
            context.now_ms,
        ) {
            Ok(info) => info,
            Err(StorageError::NoSpace { path, source }) => {
                let mut refused =
                    Appended::refused(KafkaCode::KAFKA_STORAGE_ERROR, DISK_FULL_MESSAGE);
                refused.failure = Some(AppendFailure::NoSpace {
                    path,
                    reason: source.to_string(),
                });
                return refused;
            }
            Err(err) => {
                let mut refused = Appended::refused(KafkaCode::KAFKA_STORAGE_ERROR, "");
                refused.failure = Some(AppendFailure::Fatal(err));
                return refused;
            }
        };
        self.counters.bytes_in += item.records.len() as u64;
        self.counters.records_in += (info.last_offset + 1 - info.base_offset).max(0) as u64;
        let caching = self.config.write_caching;
        self.wake_replica_fetches();
        if caching {
            // The log end moved: with write caching that is the high
            // watermark (alone) or its bound.
            self.on_progress();
        }
        // With write caching, a rolled segment is synced soon anyway (as
        // Kafka does): retention only deletes synced segments.
        let rolled = self.log.segment_count() > segments_before;
        let sync = self.wants_sync(caching, rolled);
        let acked = info.last_offset + 1;
        let wait =
            (context.wait_synced && (replicated || !caching) && self.log.high_watermark() < acked)
                .then(|| self.wait_for_ack(acked));
        Appended {
            outcome: AppendOutcome {
                error: KafkaCode::NONE,
                message: None,
                base_offset: info.base_offset,
                log_append_time_ms: info.log_append_time_ms.unwrap_or(-1),
                log_start_offset: self.log.log_start_offset(),
            },
            sync,
            wait,
            failure: None,
        }
    }

    /// Idempotent and transactional producers' sequence and epoch checks:
    /// the answer when the batch is not to be appended (a duplicate is
    /// answered with the offsets it got, once acknowledged).
    fn check_sequences(&mut self, item: &AppendItem, context: AppendContext) -> Option<Appended> {
        let producer = || item.headers[0].producer_id;
        match self.log.check_producers(&item.headers) {
            SequenceCheck::Append => None,
            SequenceCheck::Duplicate {
                base_offset,
                last_offset,
            } => {
                self.counters.duplicate_batches += 1;
                let acked = last_offset + 1;
                let wait = (context.wait_synced && self.log.high_watermark() < acked)
                    .then(|| self.wait_for_ack(acked));
                Some(Appended {
                    outcome: AppendOutcome {
                        error: KafkaCode::NONE,
                        message: None,
                        base_offset,
                        log_append_time_ms: -1,
                        log_start_offset: self.log.log_start_offset(),
                    },
                    sync: false,
                    wait,
                    failure: None,
                })
            }
            SequenceCheck::OutOfOrder { expected, got } => {
                let message = format!(
                    "Out of order sequence number for producer {} at {}-{}: {got} \
                     (expected {expected})",
                    producer(),
                    item.tp.topic,
                    item.tp.partition
                );
                Some(Appended::refused(
                    KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
                    &message,
                ))
            }
            SequenceCheck::StaleEpoch { current, got } => {
                let message = format!(
                    "Producer {} has epoch {got}, older than the current epoch \
                     {current} at {}-{}",
                    producer(),
                    item.tp.topic,
                    item.tp.partition
                );
                Some(Appended::refused(
                    KafkaCode::INVALID_PRODUCER_EPOCH,
                    &message,
                ))
            }
        }
    }

    /// Whether an append queues the partition for the group commit: always
    /// without write caching; with it, at a rolled segment or past
    /// `flush.messages` / `flush.ms` 0. Queued at most once per round.
    fn wants_sync(&mut self, caching: bool, rolled: bool) -> bool {
        let unsynced = self.log.log_end_offset() - self.log.synced_offset();
        let due = !caching
            || rolled
            || unsynced >= self.config.flush_messages
            || self.config.flush_ms == 0;
        if due && !self.sync_queued {
            self.sync_queued = true;
            true
        } else {
            false
        }
    }
}

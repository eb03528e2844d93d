//! A fetch's read of one partition: the leader's checks (role, leader
//! epoch, a follower's place in the replica set and its offset), the read
//! bound (high watermark for consumers, last stable offset for
//! read_committed, log end for followers), and what the shard does next,
//! returned: a follower's progress may call for an ISR change.

use super::role::{IsrRequest, Role};
use super::Partition;
use crate::errors::{storage_error_code, KafkaCode};
use crate::ids::NodeId;
use crate::messages::{ReadItem, ReadOutcome};
use strom_net::FileSlice;

/// One read's answer and what the caller does with it.
pub(crate) struct Read {
    pub outcome: ReadOutcome,
    /// A follower caught up: the ISR should grow.
    pub isr_request: Option<IsrRequest>,
    /// A read that failed for another reason than its offset (to log).
    pub failure: Option<String>,
}

impl Read {
    /// An answer without records: `error`, with `partition`'s offsets if
    /// known.
    pub(crate) fn refused(error: KafkaCode, partition: Option<&Partition>) -> Read {
        Read {
            outcome: ReadOutcome {
                error,
                high_watermark: partition.map_or(-1, |p| p.log.high_watermark()),
                last_stable_offset: partition.map_or(-1, |p| p.log.last_stable_offset()),
                log_start_offset: partition.map_or(-1, |p| p.log.log_start_offset()),
                records: None,
                aborted: Vec::new(),
            },
            isr_request: None,
            failure: None,
        }
    }
}

impl Partition {
    /// Reads for a consumer or (`item.replica_id` set) for follower
    /// `replica_id`, as broker `me` at monotonic time `now_ms`
    /// (`clock::monotonic_ms`, for the follower's ISR progress).
    pub(crate) fn read(&mut self, item: &ReadItem, me: NodeId, now_ms: i64) -> Read {
        let Role::Leader(leader) = &self.role else {
            return Read::refused(KafkaCode::NOT_LEADER_OR_FOLLOWER, None);
        };
        if item.current_leader_epoch.is_known() && item.current_leader_epoch != leader.leader_epoch
        {
            let code = if item.current_leader_epoch < leader.leader_epoch {
                KafkaCode::FENCED_LEADER_EPOCH
            } else {
                KafkaCode::UNKNOWN_LEADER_EPOCH
            };
            return Read::refused(code, None);
        }
        let replica = item.replica_id.is_some();
        let mut isr_request = None;
        if replica {
            if !leader.replicas.contains(&item.replica_id) {
                return Read::refused(KafkaCode::NOT_LEADER_OR_FOLLOWER, None);
            }
            let log = &self.log;
            if item.offset > log.log_end_offset() || item.offset < log.log_start_offset() {
                return Read::refused(KafkaCode::OFFSET_OUT_OF_RANGE, Some(self));
            }
            isr_request = self.follower_fetched(me, item.replica_id, item.offset, now_ms);
        }
        let log = &self.log;
        let read = if replica {
            log.read_to_end(item.offset, item.max_bytes)
        } else if item.read_committed {
            log.read_committed(item.offset, item.max_bytes)
        } else {
            log.read(item.offset, item.max_bytes)
        };
        let region = match read {
            Ok(region) => region,
            Err(err) => {
                let code = storage_error_code(&err);
                let mut refused = Read::refused(code, Some(self));
                refused.isr_request = isr_request;
                if code != KafkaCode::OFFSET_OUT_OF_RANGE {
                    refused.failure = Some(err.to_string());
                }
                return refused;
            }
        };
        if let Some(r) = &region {
            if replica {
                self.counters.replica_bytes_out += r.len;
            } else {
                self.counters.bytes_out += r.len;
                self.counters.records_out += (r.next_offset - item.offset).max(0) as u64;
            }
        }
        let log = &self.log;
        let aborted = match &region {
            Some(r) if item.read_committed => log
                .aborted_transactions(item.offset, r.next_offset)
                .into_iter()
                .map(|a| (a.producer_id, a.first_offset))
                .collect(),
            _ => Vec::new(),
        };
        Read {
            outcome: ReadOutcome {
                error: KafkaCode::NONE,
                high_watermark: log.high_watermark(),
                last_stable_offset: log.last_stable_offset(),
                log_start_offset: log.log_start_offset(),
                aborted,
                records: region.map(|r| FileSlice {
                    file: r.file,
                    position: r.position,
                    len: r.len,
                }),
            },
            isr_request,
            failure: None,
        }
    }
}

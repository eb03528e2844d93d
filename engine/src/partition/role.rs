//! A partition's role on this broker (leader, follower, or offline) and what
//! changes with it: who may produce, what the high watermark is, who waits.
//!
//! Who touches it: the shard that owns the partition, when it applies a new
//! metadata image (`Shard::apply_table`), when a follower fetches from it
//! (leader), and when its own fetcher appends (follower). Pure bookkeeping on
//! the `Partition`; I/O (syncs, controller requests, fetches) is the
//! caller's.

use super::isr::{self, FollowerProgress};
use super::Partition;
use crate::errors::KafkaCode;
use crate::ids::{LeaderEpoch, NodeId};
use crate::metadata::{PartitionState, NO_LEADER};
use std::collections::BTreeMap;

/// What this broker does for a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader(LeaderState),
    /// Copies `leader`'s log.
    Follower {
        leader: NodeId,
        leader_epoch: LeaderEpoch,
    },
    /// No leader is elected: nobody may produce or consume.
    Offline {
        leader_epoch: LeaderEpoch,
    },
}

/// How long a leader waits after a refused ISR change before asking again.
pub const ISR_RETRY_BACKOFF_MS: i64 = 500;

/// What the leader tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch of the metadata state it leads under (an ISR
    /// change must name it).
    pub partition_epoch: i32,
    pub replicas: Vec<NodeId>,
    /// The ISR as the metadata says.
    pub isr: Vec<NodeId>,
    /// An ISR change sent to the controller and not yet in the metadata.
    pub pending_isr: Option<Vec<NodeId>>,
    pub followers: BTreeMap<NodeId, FollowerProgress>,
    /// After a refused ISR change, none is asked before this time (ms): a
    /// follower fetching every few milliseconds must not turn a refusal
    /// (say, of a fenced broker) into a request storm on the controller.
    pub isr_retry_after_ms: i64,
    /// The log end offset when it became leader: a replica joins the ISR
    /// only once it has everything from before this epoch.
    pub epoch_start_offset: i64,
}

/// What applying a new partition state changed, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    /// Leads now (newly, or at a new epoch).
    BecameLeader {
        leader_epoch: LeaderEpoch,
    },
    /// Follows `leader` now (newly, or at a new epoch): truncate, then fetch.
    BecameFollower {
        leader: NodeId,
        leader_epoch: LeaderEpoch,
    },
    /// No leader is elected.
    WentOffline,
    /// Still leads; the ISR changed.
    IsrChanged,
}

/// An ISR change the leader asks the controller for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrRequest {
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
    pub isr: Vec<NodeId>,
}

impl Role {
    pub fn leader_epoch(&self) -> LeaderEpoch {
        match self {
            Role::Leader(l) => l.leader_epoch,
            Role::Follower { leader_epoch, .. } | Role::Offline { leader_epoch } => *leader_epoch,
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader(_))
    }

    /// The leader this broker knows of ([`NO_LEADER`] when none).
    pub fn leader(&self, me: NodeId) -> NodeId {
        match self {
            Role::Leader(_) => me,
            Role::Follower { leader, .. } => *leader,
            Role::Offline { .. } => NO_LEADER,
        }
    }
}

impl Partition {
    /// Takes up the role `state` gives this broker (`me`).
    pub(crate) fn apply_state(
        &mut self,
        me: NodeId,
        state: &PartitionState,
        now_ms: i64,
    ) -> Transition {
        let replicated = state.replicas.len() > 1;
        self.replica_count = state.replicas.len();
        if state.leader == me {
            if let Role::Leader(current) = &mut self.role {
                if current.leader_epoch == state.leader_epoch {
                    let isr_changed = current.isr != state.isr;
                    current.partition_epoch = state.partition_epoch;
                    current.replicas = state.replicas.clone();
                    current.isr = state.isr.clone();
                    if current.pending_isr.as_ref() == Some(&state.isr) || isr_changed {
                        current.pending_isr = None;
                    }
                    let known: Vec<NodeId> = current.followers.keys().copied().collect();
                    for r in &state.replicas {
                        if *r != me && !known.contains(r) {
                            current.followers.insert(*r, FollowerProgress::new(now_ms));
                        }
                    }
                    current.followers.retain(|r, _| state.replicas.contains(r));
                    self.recompute_high_watermark(me);
                    return if isr_changed {
                        Transition::IsrChanged
                    } else {
                        Transition::Unchanged
                    };
                }
            }
            let followers = state
                .replicas
                .iter()
                .filter(|r| **r != me)
                .map(|r| (*r, FollowerProgress::new(now_ms)))
                .collect();
            self.role = Role::Leader(LeaderState {
                leader_epoch: state.leader_epoch,
                partition_epoch: state.partition_epoch,
                replicas: state.replicas.clone(),
                isr: state.isr.clone(),
                pending_isr: None,
                followers,
                isr_retry_after_ms: 0,
                epoch_start_offset: self.log.log_end_offset(),
            });
            if !replicated {
                self.log.set_replicated_high_watermark(None);
            }
            self.recompute_high_watermark(me);
            return Transition::BecameLeader {
                leader_epoch: state.leader_epoch,
            };
        }
        let was_leader = self.role.is_leader();
        if was_leader {
            self.lose_leadership();
        }
        // Not leading: hold what consumers could see where it is.
        let hw = self.log.high_watermark();
        self.log.set_replicated_high_watermark(Some(hw));
        if state.leader == NO_LEADER {
            if matches!(self.role, Role::Offline { leader_epoch } if leader_epoch == state.leader_epoch)
            {
                return Transition::Unchanged;
            }
            self.role = Role::Offline {
                leader_epoch: state.leader_epoch,
            };
            return Transition::WentOffline;
        }
        let same = matches!(self.role, Role::Follower { leader, leader_epoch }
            if leader == state.leader && leader_epoch == state.leader_epoch);
        if same {
            return Transition::Unchanged;
        }
        self.role = Role::Follower {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
        };
        Transition::BecameFollower {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
        }
    }

    /// Producers still waiting are told to find the new leader.
    pub(crate) fn lose_leadership(&mut self) {
        for (_, waiter) in self.ack_waiters.drain(..) {
            let _ = waiter.send(KafkaCode::NOT_LEADER_OR_FOLLOWER);
        }
        self.wake_replica_fetches();
        self.wake_fetches();
    }

    /// Leader: the high watermark from the followers' progress (never
    /// backwards), then answers producers and wakes consumers.
    pub(crate) fn recompute_high_watermark(&mut self, me: NodeId) {
        let Role::Leader(leader) = &self.role else {
            self.on_progress();
            return;
        };
        let members = isr::maximal_isr(&leader.isr, leader.pending_isr.as_deref(), me);
        match isr::followers_bound(&members, &leader.followers) {
            None => self.log.set_replicated_high_watermark(None),
            Some(bound) => {
                let floor = self.log.high_watermark();
                self.log
                    .set_replicated_high_watermark(Some(bound.max(floor)));
            }
        }
        self.on_progress();
    }

    /// After the high watermark or the synced offset may have moved:
    /// answers acks=all producers and followers waiting for a sync, wakes
    /// consumers.
    pub(crate) fn on_progress(&mut self) {
        let hw = self.log.high_watermark();
        // As Kafka answers an acks=all produce whose records reached the
        // high watermark: NONE only while the ISR (with a pending change,
        // the larger of the two) still has `min.insync.replicas` members;
        // otherwise the records are written but have too few copies.
        // Decided once per call, and only when a waiter is answered.
        let mut answer = None;
        let mut i = 0;
        while i < self.ack_waiters.len() {
            if self.ack_waiters[i].0 <= hw {
                let code = *answer.get_or_insert_with(|| {
                    if self.isr_meets_min_insync() {
                        KafkaCode::NONE
                    } else {
                        KafkaCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                    }
                });
                let (_, waiter) = self.ack_waiters.swap_remove(i);
                let _ = waiter.send(code);
            } else {
                i += 1;
            }
        }
        let synced = self.log.synced_offset();
        self.release_sync_waits(|offset| offset <= synced);
        if hw > self.last_high_watermark {
            self.last_high_watermark = hw;
            self.wake_fetches();
        }
    }

    /// Leader: a follower fetched at `fetch_offset`. Returns an ISR change to
    /// ask for when the follower may join the ISR now.
    pub(crate) fn follower_fetched(
        &mut self,
        me: NodeId,
        replica: NodeId,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<IsrRequest> {
        let leader_end = self.log.log_end_offset();
        let Role::Leader(leader) = &mut self.role else {
            return None;
        };
        let progress = leader
            .followers
            .entry(replica)
            .or_insert_with(|| FollowerProgress::new(now_ms));
        progress.fetched(fetch_offset.min(leader_end), leader_end, now_ms);
        self.recompute_high_watermark(me);
        let hw = self.log.high_watermark();
        let Role::Leader(leader) = &mut self.role else {
            return None;
        };
        if leader.pending_isr.is_some() || now_ms < leader.isr_retry_after_ms {
            return None;
        }
        // Only the replica fetching now may join (as in Kafka): another
        // one's progress may be stale (a dead broker's last fetch looks
        // caught up while nothing is written), and asking for it would be
        // refused again and again.
        let joining: Vec<NodeId> = isr::ready_to_join(
            &leader.replicas,
            &leader.isr,
            &leader.followers,
            hw,
            leader.epoch_start_offset,
        )
        .into_iter()
        .filter(|r| *r == replica)
        .collect();
        if joining.is_empty() {
            return None;
        }
        let isr: Vec<NodeId> = leader
            .replicas
            .iter()
            .copied()
            .filter(|r| leader.isr.contains(r) || joining.contains(r))
            .collect();
        leader.pending_isr = Some(isr.clone());
        Some(IsrRequest {
            leader_epoch: leader.leader_epoch,
            partition_epoch: leader.partition_epoch,
            isr,
        })
    }

    /// Leader: ISR members that fell behind for longer than `lag_max_ms`
    /// leave it (asked of the controller; they count until it agrees).
    pub(crate) fn shrink_lagging(
        &mut self,
        me: NodeId,
        now_ms: i64,
        lag_max_ms: i64,
    ) -> Option<IsrRequest> {
        let Role::Leader(leader) = &mut self.role else {
            return None;
        };
        if leader.pending_isr.is_some() || now_ms < leader.isr_retry_after_ms {
            return None;
        }
        let lagging = isr::lagging(&leader.isr, me, &leader.followers, now_ms, lag_max_ms);
        if lagging.is_empty() {
            return None;
        }
        let isr: Vec<NodeId> = leader
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        leader.pending_isr = Some(isr.clone());
        Some(IsrRequest {
            leader_epoch: leader.leader_epoch,
            partition_epoch: leader.partition_epoch,
            isr,
        })
    }

    /// Leader: the controller refused or did not answer an ISR change; it may
    /// be asked again after [`ISR_RETRY_BACKOFF_MS`].
    pub(crate) fn isr_request_failed(&mut self, now_ms: i64) {
        if let Role::Leader(leader) = &mut self.role {
            leader.pending_isr = None;
            leader.isr_retry_after_ms = now_ms + ISR_RETRY_BACKOFF_MS;
        }
    }

    /// Whether a leader's maximal ISR (KIP-497: the metadata's, and a
    /// pending change's members) reaches the topic's `min.insync.replicas`.
    fn isr_meets_min_insync(&self) -> bool {
        let Role::Leader(leader) = &self.role else {
            return true;
        };
        let members = isr::maximal_isr_size(&leader.isr, leader.pending_isr.as_deref());
        members.max(1) >= self.config.min_insync_replicas.max(1) as usize
    }

    /// Replicas in sync as the metadata says (1 for a partition led here
    /// without followers; 0 when not leading).
    pub(crate) fn in_sync_replicas(&self) -> usize {
        match &self.role {
            Role::Leader(leader) => leader.isr.len().max(1),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{nodes, raw};

    fn leader_of(dir: &std::path::Path, replicas: Vec<i32>, isr: Vec<i32>) -> Partition {
        let mut partition = Partition::empty_for_test(dir);
        let state = PartitionState {
            leader: NodeId(replicas[0]),
            replicas: nodes(&replicas),
            isr: nodes(&isr),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
        };
        partition.apply_state(NodeId(1), &state, 0);
        partition
    }

    /// Appends one record as the leader, for an acks=all producer: its wait.
    fn append_one(p: &mut Partition) -> futures::channel::oneshot::Receiver<KafkaCode> {
        use crate::partition::append::AppendContext;
        let mut records = strom_storage::batch::encode_batch(0, 1, &[(None, Some(b"v"))]);
        let headers = strom_storage::batch::validate_batches(&records).unwrap();
        let mut item = crate::messages::AppendItem {
            tp: crate::messages::TopicPartition {
                topic: std::sync::Arc::from("t"),
                partition: 0,
            },
            records: bytes::BytesMut::from(&records[..]),
            headers,
        };
        records.clear();
        let context = AppendContext {
            now_ms: 1,
            wait_synced: true,
            disk_full: false,
        };
        let appended = p.append(&mut item, context);
        assert_eq!(appended.outcome.error, KafkaCode::NONE);
        appended.wait.expect("acks=all waits")
    }

    /// Issue 17, defect 4: an acks=all produce in flight when the ISR
    /// shrinks below `min.insync.replicas` is answered
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND once the high watermark passes it,
    /// not acknowledged with the leader's copy alone.
    #[test]
    fn an_ack_after_the_isr_fell_below_min_insync_is_not_enough_replicas() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = leader_of(tmp.path(), vec![1, 2, 3], vec![1, 2, 3]);
        let mut config = (*p.config).clone();
        config.min_insync_replicas = 2;
        p.config = std::sync::Arc::new(config);
        let mut waiting = append_one(&mut p);
        // The followers died; the controller shrank the ISR to the leader.
        let shrunk = PartitionState {
            leader: NodeId(1),
            replicas: vec![NodeId(1), NodeId(2), NodeId(3)],
            isr: vec![NodeId(1)],
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 1,
        };
        p.apply_state(NodeId(1), &shrunk, 2);
        p.log.sync_now().unwrap();
        p.recompute_high_watermark(NodeId(1));
        assert_eq!(p.log.high_watermark(), 1);
        assert_eq!(
            waiting.try_recv().unwrap(),
            Some(KafkaCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        );
        // With the ISR at min.insync.replicas, an ack is an ack.
        let grown = PartitionState {
            isr: vec![NodeId(1), NodeId(2)],
            partition_epoch: 2,
            ..shrunk
        };
        p.apply_state(NodeId(1), &grown, 3);
        let mut second = append_one(&mut p);
        p.follower_fetched(NodeId(1), NodeId(2), 2, 4);
        p.log.sync_now().unwrap();
        p.recompute_high_watermark(NodeId(1));
        assert_eq!(second.try_recv().unwrap(), Some(KafkaCode::NONE));
    }

    /// A refused ISR change (say, adding a fenced broker) is asked again
    /// only after a pause, not at the follower's next fetch a millisecond
    /// later: no request storm on the controller.
    #[test]
    fn a_refused_isr_change_is_asked_again_only_after_the_backoff() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = leader_of(tmp.path(), vec![1, 2], vec![1]);
        let first = p
            .follower_fetched(NodeId(1), NodeId(2), 0, 1_000)
            .expect("replica 2 caught up");
        assert_eq!(first.isr, vec![1, 2]);
        assert_eq!(
            p.follower_fetched(NodeId(1), NodeId(2), 0, 1_001),
            None,
            "one request in flight"
        );
        p.isr_request_failed(1_002);
        assert_eq!(p.follower_fetched(NodeId(1), NodeId(2), 0, 1_003), None);
        assert_eq!(
            p.follower_fetched(NodeId(1), NodeId(2), 0, 1_002 + ISR_RETRY_BACKOFF_MS - 1),
            None
        );
        let again = p.follower_fetched(NodeId(1), NodeId(2), 0, 1_002 + ISR_RETRY_BACKOFF_MS);
        assert_eq!(again.map(|r| raw(&r.isr)), Some(vec![1, 2]));
    }

    /// A replica outside the ISR joins when it fetches caught up, not when
    /// another follower fetches: its last known progress may be a dead
    /// broker's (the ISR change would be refused, again and again).
    #[test]
    fn only_the_fetching_replica_may_join_the_isr() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = leader_of(tmp.path(), vec![1, 2, 3], vec![1, 3]);
        // Replica 2 fetched caught up once, then its broker died.
        let asked = p
            .follower_fetched(NodeId(1), NodeId(2), 0, 1_000)
            .expect("2 caught up");
        assert_eq!(asked.isr, vec![1, 2, 3]);
        p.isr_request_failed(1_001);
        // Replica 3 keeps fetching: no ISR change for 2 on its behalf.
        for t in [2_000, 3_000, 4_000] {
            assert_eq!(
                p.follower_fetched(NodeId(1), NodeId(3), 0, t),
                None,
                "at {t}"
            );
        }
        // Replica 2 back and fetching: it joins.
        let back = p
            .follower_fetched(NodeId(1), NodeId(2), 0, 5_000)
            .map(|r| raw(&r.isr));
        assert_eq!(back, Some(vec![1, 2, 3]));
    }

    /// A truncation releases the sync waits for the records it discards: a
    /// follower's fetch task waiting on one would otherwise wait forever
    /// and stop replicating every partition of its leader (issue 17,
    /// defect 6). Records kept still wait for their sync.
    #[test]
    fn a_truncation_releases_the_sync_waits_of_the_records_it_discards() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = leader_of(tmp.path(), vec![1], vec![1]);
        let _first = append_one(&mut p);
        let _second = append_one(&mut p);
        assert_eq!(p.log.log_end_offset(), 2);
        let (tx, mut discarded) = futures::channel::oneshot::channel();
        p.sync_waiters.push((2, tx));
        let (tx, mut kept) = futures::channel::oneshot::channel();
        p.sync_waiters.push((1, tx));
        p.truncate_to(1).unwrap();
        assert_eq!(discarded.try_recv(), Ok(Some(())), "offset 1 is gone");
        assert_eq!(
            kept.try_recv(),
            Ok(None),
            "offset 0 still waits for its sync"
        );
        p.restart_at(10).unwrap();
        assert_eq!(kept.try_recv(), Ok(Some(())), "nothing is left to sync");
    }
}

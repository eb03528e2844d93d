//! The leader's rules for its followers (Kafka's ISR model), as pure
//! functions over what the leader knows: each follower's log end offset as
//! its last fetch reported it, and when it last caught up.
//!
//! - The high watermark is the smallest log end offset among the in-sync
//!   replicas, the leader's own durable end included (synced offset, or the
//!   log end with write caching). While an ISR change is pending at the
//!   controller, the *maximal* ISR counts (current members plus those being
//!   added), so a follower the controller may already have added can never
//!   miss a record acknowledged to a producer (KIP-497's rule).
//! - A follower is caught up when its fetch asks for the leader's log end
//!   offset, or for the log end offset the leader had at the follower's
//!   previous fetch. A member that has not caught up for
//!   `replica.lag.time.max.ms` leaves the ISR.
//! - A replica outside the ISR joins it once its log end offset reaches the
//!   high watermark and the start of the leader's current epoch.

use crate::ids::NodeId;
use std::collections::BTreeMap;

/// What the leader knows about one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// Its log end offset as its last fetch said; -1 before its first fetch.
    pub log_end_offset: i64,
    /// When it was last caught up (monotonic ms, `clock::monotonic_ms`: a
    /// wall-clock step must not move ISR membership).
    pub caught_up_ms: i64,
    /// When it last fetched (monotonic ms) and the leader's log end offset
    /// then.
    pub last_fetch_ms: i64,
    pub leader_end_at_last_fetch: i64,
}

impl FollowerProgress {
    /// A follower just learned about: counted as caught up now, so it has
    /// `replica.lag.time.max.ms` to fetch before it may be dropped.
    pub fn new(now_ms: i64) -> FollowerProgress {
        FollowerProgress {
            log_end_offset: -1,
            caught_up_ms: now_ms,
            last_fetch_ms: now_ms,
            leader_end_at_last_fetch: -1,
        }
    }

    /// Records a fetch at `fetch_offset` while the leader's log ends at
    /// `leader_end`.
    pub fn fetched(&mut self, fetch_offset: i64, leader_end: i64, now_ms: i64) {
        if fetch_offset >= leader_end {
            self.caught_up_ms = now_ms;
        } else if self.leader_end_at_last_fetch >= 0
            && fetch_offset >= self.leader_end_at_last_fetch
        {
            self.caught_up_ms = self.caught_up_ms.max(self.last_fetch_ms);
        }
        self.log_end_offset = fetch_offset;
        self.last_fetch_ms = now_ms;
        self.leader_end_at_last_fetch = leader_end;
    }
}

/// The followers that bound the high watermark: the maximal ISR without
/// the leader itself.
pub fn maximal_isr(isr: &[NodeId], pending: Option<&[NodeId]>, leader: NodeId) -> Vec<NodeId> {
    let mut members: Vec<NodeId> = isr.iter().copied().filter(|r| *r != leader).collect();
    if let Some(pending) = pending {
        for r in pending {
            if *r != leader && !members.contains(r) {
                members.push(*r);
            }
        }
    }
    members
}

/// How many replicas the maximal ISR has, the leader included: the ISR and
/// the members a pending change adds (without allocating; ISRs are small).
pub fn maximal_isr_size(isr: &[NodeId], pending: Option<&[NodeId]>) -> usize {
    let added = pending.map_or(0, |p| p.iter().filter(|r| !isr.contains(r)).count());
    isr.len() + added
}

/// The cap the followers put on the high watermark: the smallest log end
/// offset among `members` (`None` with no other member: the leader alone
/// decides). A member that has not fetched yet counts as -1.
pub fn followers_bound(
    members: &[NodeId],
    followers: &BTreeMap<NodeId, FollowerProgress>,
) -> Option<i64> {
    members
        .iter()
        .map(|r| followers.get(r).map_or(-1, |f| f.log_end_offset))
        .min()
}

/// ISR members (not the leader) that have not caught up within `lag_max_ms`.
pub fn lagging(
    isr: &[NodeId],
    leader: NodeId,
    followers: &BTreeMap<NodeId, FollowerProgress>,
    now_ms: i64,
    lag_max_ms: i64,
) -> Vec<NodeId> {
    isr.iter()
        .copied()
        .filter(|r| *r != leader)
        .filter(|r| {
            followers
                .get(r)
                .is_some_and(|f| now_ms.saturating_sub(f.caught_up_ms) > lag_max_ms)
        })
        .collect()
}

/// Replicas outside the ISR that may join it: log end offset at or past the
/// high watermark and the start of the leader's epoch.
pub fn ready_to_join(
    replicas: &[NodeId],
    isr: &[NodeId],
    followers: &BTreeMap<NodeId, FollowerProgress>,
    high_watermark: i64,
    epoch_start_offset: i64,
) -> Vec<NodeId> {
    replicas
        .iter()
        .copied()
        .filter(|r| !isr.contains(r))
        .filter(|r| {
            followers.get(r).is_some_and(|f| {
                f.log_end_offset >= high_watermark && f.log_end_offset >= epoch_start_offset
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(leo: i64, caught_up_ms: i64) -> FollowerProgress {
        FollowerProgress {
            log_end_offset: leo,
            caught_up_ms,
            last_fetch_ms: caught_up_ms,
            leader_end_at_last_fetch: leo,
        }
    }

    #[test]
    fn the_slowest_in_sync_follower_bounds_the_high_watermark() {
        let followers = BTreeMap::from([(NodeId(2), progress(10, 0)), (NodeId(3), progress(7, 0))]);
        assert_eq!(
            followers_bound(
                &maximal_isr(&[NodeId(1), NodeId(2), NodeId(3)], None, NodeId(1)),
                &followers
            ),
            Some(7)
        );
        // Broker 3 out of the ISR: only 2 counts.
        assert_eq!(
            followers_bound(
                &maximal_isr(&[NodeId(1), NodeId(2)], None, NodeId(1)),
                &followers
            ),
            Some(10)
        );
        // Being added: counts already.
        assert_eq!(
            followers_bound(
                &maximal_isr(
                    &[NodeId(1), NodeId(2)],
                    Some(&[NodeId(1), NodeId(2), NodeId(3)]),
                    NodeId(1)
                ),
                &followers
            ),
            Some(7)
        );
        // A follower that never fetched holds the watermark back.
        assert_eq!(
            followers_bound(
                &maximal_isr(&[NodeId(1), NodeId(4)], None, NodeId(1)),
                &followers
            ),
            Some(-1)
        );
        // Alone: no bound from followers.
        assert_eq!(
            followers_bound(&maximal_isr(&[NodeId(1)], None, NodeId(1)), &followers),
            None
        );
    }

    #[test]
    fn catching_up_follows_kafkas_definition() {
        let mut f = FollowerProgress::new(0);
        f.fetched(5, 10, 100);
        assert_eq!(f.caught_up_ms, 0, "behind the log end");
        // The next fetch reaches what the leader had at the previous one.
        f.fetched(10, 20, 200);
        assert_eq!(f.caught_up_ms, 100);
        f.fetched(20, 20, 300);
        assert_eq!(f.caught_up_ms, 300);
        assert_eq!(f.log_end_offset, 20);
    }

    #[test]
    fn laggards_leave_and_caught_up_replicas_join() {
        let followers = BTreeMap::from([
            (NodeId(2), progress(10, 1_000)),
            (NodeId(3), progress(9, 40_000)),
        ]);
        assert_eq!(
            lagging(
                &[NodeId(1), NodeId(2), NodeId(3)],
                NodeId(1),
                &followers,
                41_500,
                30_000
            ),
            vec![2]
        );
        assert!(lagging(
            &[NodeId(1), NodeId(2), NodeId(3)],
            NodeId(1),
            &followers,
            30_000,
            30_000
        )
        .is_empty());
        assert_eq!(
            ready_to_join(
                &[NodeId(1), NodeId(2), NodeId(3)],
                &[NodeId(1)],
                &followers,
                10,
                0
            ),
            vec![2]
        );
        assert_eq!(
            ready_to_join(
                &[NodeId(1), NodeId(2), NodeId(3)],
                &[NodeId(1)],
                &followers,
                9,
                0
            ),
            vec![2, 3]
        );
        assert!(ready_to_join(
            &[NodeId(1), NodeId(2), NodeId(3)],
            &[NodeId(1)],
            &followers,
            9,
            11
        )
        .is_empty());
    }
}

//! The active controller's decisions about brokers, ISRs and leaders: pure
//! functions that change a copy of the image (`TopicTable`); the controller
//! proposes `records::diff(old, new)`.
//!
//! Kafka's rules (KRaft, without eligible leader replicas):
//! - A live broker is registered, not fenced and not shutting down. Only a
//!   live broker becomes leader or joins an ISR.
//! - Fencing a broker (no heartbeat within `broker.session.timeout.ms`)
//!   removes it from every ISR it is in, unless it is the last member, and
//!   gives the partitions it led a new leader from the rest of the ISR, in
//!   replica order; with none left the partition has no leader
//!   (`NO_LEADER`) and its ISR stays as it was, so the last in-sync replica
//!   leads again when it comes back.
//! - With `unclean.leader.election.enable`, a partition without a live ISR
//!   member gets any live replica as leader and that replica as its ISR.
//! - A controlled shutdown moves leaderships to other live ISR members and
//!   leaves ISRs that have other members; the broker may stop once it leads
//!   nothing that another replica could lead.
//! - Every change of a partition's state bumps its `partition_epoch`; every
//!   change of its leader bumps its `leader_epoch`.

use crate::errors::KafkaCode;
use crate::ids::{LeaderEpoch, NodeId};
use crate::metadata::{PartitionState, TopicTable, NO_LEADER};
use std::sync::Arc;

/// Rewrites partition states: `change` returns the new state of a partition,
/// or `None` to leave it. Only topics with a change are copied.
fn update_partitions(
    table: &mut TopicTable,
    mut change: impl FnMut(&str, i32, &PartitionState) -> Option<PartitionState>,
) -> usize {
    let mut changed = 0;
    let names: Vec<String> = table.topics.keys().cloned().collect();
    for name in names {
        let topic = &table.topics[&name];
        let updates: Vec<(usize, PartitionState)> = topic
            .assignments
            .iter()
            .enumerate()
            .filter_map(|(p, state)| change(&name, p as i32, state).map(|s| (p, s)))
            .collect();
        if updates.is_empty() {
            continue;
        }
        changed += updates.len();
        let topic = Arc::make_mut(table.topics.get_mut(&name).expect("listed above"));
        for (p, state) in updates {
            topic.assignments[p] = state;
        }
    }
    changed
}

fn is_live(table: &TopicTable, broker: NodeId) -> bool {
    table.brokers.get(&broker).is_some_and(|b| b.is_live())
}

/// The first replica (in replica order) that is in the ISR, live, and not
/// `except`.
fn isr_candidate(table: &TopicTable, state: &PartitionState, except: NodeId) -> Option<NodeId> {
    state
        .replicas
        .iter()
        .copied()
        .find(|r| *r != except && state.isr.contains(r) && is_live(table, *r))
}

fn with_leader(state: &PartitionState, leader: NodeId) -> PartitionState {
    let mut next = state.clone();
    if next.leader != leader {
        next.leader = leader;
        next.leader_epoch = next.leader_epoch.next();
    }
    next.partition_epoch += 1;
    next
}

/// Fences `broker`: out of every ISR it is not the last member of, and its
/// leaderships to other live ISR members (or no leader). Returns the
/// partitions changed.
pub fn fence(table: &mut TopicTable, broker: NodeId) -> usize {
    if let Some(b) = table.brokers.get_mut(&broker) {
        b.fenced = true;
    }
    let snapshot = table.clone();
    update_partitions(table, |_, _, state| {
        let in_isr = state.isr.contains(&broker);
        if !in_isr && state.leader != broker {
            return None;
        }
        let mut next = state.clone();
        if in_isr && next.isr.len() > 1 {
            next.isr.retain(|r| *r != broker);
        }
        if state.leader == broker {
            let leader = isr_candidate(&snapshot, &next, broker).unwrap_or(NO_LEADER);
            next = with_leader(&next, leader);
        } else if next.isr == state.isr {
            return None;
        } else {
            next.partition_epoch += 1;
        }
        Some(next)
    })
}

/// Unfences `broker` and gives it the leaderless partitions whose ISR it is in.
pub fn unfence(table: &mut TopicTable, broker: NodeId, unclean: &dyn Fn(&str) -> bool) -> usize {
    if let Some(b) = table.brokers.get_mut(&broker) {
        b.fenced = false;
        b.shutting_down = false;
    }
    elect_offline(table, unclean)
}

/// Gives a leader to every partition whose leader is missing or fenced:
/// a live ISR member, else (with unclean election for its topic) any live
/// replica, which becomes the whole ISR.
pub fn elect_offline(table: &mut TopicTable, unclean: &dyn Fn(&str) -> bool) -> usize {
    let snapshot = table.clone();
    update_partitions(table, |topic, _, state| {
        let leader_ok = state.leader != NO_LEADER
            && snapshot
                .brokers
                .get(&state.leader)
                .is_some_and(|b| !b.fenced);
        if leader_ok {
            return None;
        }
        if let Some(candidate) = isr_candidate(&snapshot, state, NO_LEADER) {
            let mut next = with_leader(state, candidate);
            if state.leader != NO_LEADER && next.isr.len() > 1 {
                next.isr.retain(|r| *r != state.leader);
            }
            return Some(next);
        }
        if unclean(topic) {
            if let Some(candidate) = state
                .replicas
                .iter()
                .copied()
                .find(|r| is_live(&snapshot, *r))
            {
                let mut next = with_leader(state, candidate);
                next.isr = vec![candidate];
                return Some(next);
            }
        }
        (state.leader != NO_LEADER).then(|| with_leader(state, NO_LEADER))
    })
}

/// Starts a controlled shutdown of `broker`: its leaderships move to other
/// live ISR members, and it leaves the ISRs that have other members.
pub fn begin_shutdown(table: &mut TopicTable, broker: NodeId) -> usize {
    if let Some(b) = table.brokers.get_mut(&broker) {
        b.shutting_down = true;
    }
    let snapshot = table.clone();
    update_partitions(table, |_, _, state| {
        let mut next = state.clone();
        if state.leader == broker {
            match isr_candidate(&snapshot, state, broker) {
                Some(candidate) => next = with_leader(state, candidate),
                None => return None,
            }
        }
        if next.isr.contains(&broker) && next.isr.len() > 1 {
            next.isr.retain(|r| *r != broker);
            if next.partition_epoch == state.partition_epoch {
                next.partition_epoch += 1;
            }
        }
        (next != *state).then_some(next)
    })
}

/// Partitions `broker` leads that another live ISR member could lead.
pub fn movable_leaderships(table: &TopicTable, broker: NodeId) -> usize {
    table
        .topics
        .values()
        .flat_map(|t| t.assignments.iter())
        .filter(|s| s.leader == broker && isr_candidate(table, s, broker).is_some())
        .count()
}

/// Preferred-leader election (the first replica leads when it is live and in
/// sync) for the given partitions, or all when `only` is `None`. Returns the
/// outcome per partition asked for (all: only the ones moved).
pub fn elect_preferred(
    table: &mut TopicTable,
    only: Option<&[(String, i32)]>,
) -> Vec<((String, i32), KafkaCode)> {
    let snapshot = table.clone();
    let mut outcomes = Vec::new();
    let wanted = |topic: &str, p: i32| {
        only.is_none_or(|list| list.iter().any(|(t, q)| t == topic && *q == p))
    };
    update_partitions(table, |topic, p, state| {
        if !wanted(topic, p) {
            return None;
        }
        let preferred = *state.replicas.first()?;
        let code = if state.leader == preferred {
            KafkaCode::ELECTION_NOT_NEEDED
        } else if state.isr.contains(&preferred) && is_live(&snapshot, preferred) {
            KafkaCode::NONE
        } else {
            KafkaCode::PREFERRED_LEADER_NOT_AVAILABLE
        };
        if only.is_some() || code.is_ok() {
            outcomes.push(((topic.to_string(), p), code));
        }
        code.is_ok().then(|| with_leader(state, preferred))
    });
    if let Some(list) = only {
        for (topic, p) in list {
            if table.partition(topic, *p).is_none() {
                outcomes.push(((topic.clone(), *p), KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
            }
        }
    }
    outcomes
}

/// Unclean election asked for by an operator (ElectLeaders type 1) for the
/// given partitions: a partition whose leader is live needs none.
pub fn elect_unclean(
    table: &mut TopicTable,
    only: &[(String, i32)],
) -> Vec<((String, i32), KafkaCode)> {
    let snapshot = table.clone();
    let mut outcomes = Vec::new();
    update_partitions(table, |topic, p, state| {
        if !only.iter().any(|(t, q)| t == topic && *q == p) {
            return None;
        }
        if state.leader != NO_LEADER && is_live(&snapshot, state.leader) {
            outcomes.push(((topic.to_string(), p), KafkaCode::ELECTION_NOT_NEEDED));
            return None;
        }
        let from_isr = isr_candidate(&snapshot, state, NO_LEADER);
        let candidate = from_isr.or_else(|| {
            state
                .replicas
                .iter()
                .copied()
                .find(|r| is_live(&snapshot, *r))
        });
        match candidate {
            Some(c) => {
                outcomes.push(((topic.to_string(), p), KafkaCode::NONE));
                let mut next = with_leader(state, c);
                if from_isr.is_none() {
                    next.isr = vec![c];
                }
                Some(next)
            }
            None => {
                outcomes.push((
                    (topic.to_string(), p),
                    KafkaCode::ELIGIBLE_LEADERS_NOT_AVAILABLE,
                ));
                None
            }
        }
    });
    for (topic, p) in only {
        if table.partition(topic, *p).is_none() {
            outcomes.push(((topic.clone(), *p), KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
        }
    }
    outcomes
}

/// An ISR change asked for by a partition's leader (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IsrChange {
    pub leader: NodeId,
    pub topic: String,
    pub partition: i32,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: i32,
    pub isr: Vec<NodeId>,
}

/// Checks and applies an ISR change: it must come from the current leader at
/// the current epochs, keep the leader, name only replicas, and add only live
/// brokers. Returns the new state.
pub fn alter_isr(table: &mut TopicTable, change: &IsrChange) -> Result<PartitionState, KafkaCode> {
    let state = table
        .partition(&change.topic, change.partition)
        .ok_or(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION)?
        .clone();
    if state.leader != change.leader {
        return Err(KafkaCode::NOT_LEADER_OR_FOLLOWER);
    }
    if state.leader_epoch != change.leader_epoch {
        return Err(KafkaCode::FENCED_LEADER_EPOCH);
    }
    if state.partition_epoch != change.partition_epoch {
        return Err(KafkaCode::INVALID_UPDATE_VERSION);
    }
    let mut isr: Vec<NodeId> = state
        .replicas
        .iter()
        .copied()
        .filter(|r| change.isr.contains(r))
        .collect();
    isr.dedup();
    if isr.len() != change.isr.len() || !isr.contains(&change.leader) {
        return Err(KafkaCode::INVALID_REQUEST);
    }
    if isr
        .iter()
        .any(|r| !state.isr.contains(r) && !is_live(table, *r))
    {
        return Err(KafkaCode::INELIGIBLE_REPLICA);
    }
    let mut next = state.clone();
    next.isr = isr;
    next.partition_epoch += 1;
    let topic = Arc::make_mut(
        table
            .topics
            .get_mut(&change.topic)
            .expect("partition found above"),
    );
    topic.assignments[change.partition as usize] = next.clone();
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{nodes, raw};
    use crate::metadata::{BrokerMeta, TopicMeta};
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn table(partitions: Vec<Vec<i32>>) -> TopicTable {
        let mut table = TopicTable::default();
        for id in 1..=3 {
            table.brokers.insert(
                NodeId(id),
                BrokerMeta {
                    id: NodeId(id),
                    epoch: 1,
                    incarnation: String::new(),
                    host: String::new(),
                    port: 9092,
                    rack: None,
                    fenced: false,
                    shutting_down: false,
                },
            );
        }
        table.topics.insert(
            "t".into(),
            Arc::new(TopicMeta {
                name: "t".into(),
                id: Uuid::new_v4(),
                partitions: partitions.len() as i32,
                configs: BTreeMap::new(),
                assignments: partitions
                    .iter()
                    .map(|replicas| PartitionState::new(nodes(replicas)))
                    .collect(),
            }),
        );
        table
    }

    fn state(table: &TopicTable, p: i32) -> PartitionState {
        table.partition("t", p).unwrap().clone()
    }

    const NO_UNCLEAN: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn fencing_the_leader_elects_the_next_isr_member_and_shrinks_isrs() {
        let mut t = table(vec![vec![1, 2, 3], vec![2, 3, 1]]);
        assert_eq!(fence(&mut t, NodeId(1)), 2);
        let p0 = state(&t, 0);
        assert_eq!((p0.leader.0, raw(&p0.isr)), (2, vec![2, 3]));
        assert_eq!((p0.leader_epoch.0, p0.partition_epoch), (1, 1));
        let p1 = state(&t, 1);
        assert_eq!((p1.leader.0, raw(&p1.isr)), (2, vec![2, 3]));
        assert_eq!((p1.leader_epoch.0, p1.partition_epoch), (0, 1));
        // Fence the rest: the last ISR member stays, without a leader.
        fence(&mut t, NodeId(2));
        fence(&mut t, NodeId(3));
        let p0 = state(&t, 0);
        assert_eq!((p0.leader.0, raw(&p0.isr)), (NO_LEADER.0, vec![3]));
        // Fencing again changes nothing.
        assert_eq!(fence(&mut t, NodeId(3)), 0);
        // Broker 1 returns: not in the ISR, so no leader yet (no unclean).
        unfence(&mut t, NodeId(1), NO_UNCLEAN);
        assert_eq!(state(&t, 0).leader, NO_LEADER);
        // Broker 3, the last in-sync replica, returns and leads again.
        let epoch = state(&t, 0).leader_epoch;
        unfence(&mut t, NodeId(3), NO_UNCLEAN);
        let p0 = state(&t, 0);
        assert_eq!((p0.leader.0, raw(&p0.isr)), (3, vec![3]));
        assert_eq!(p0.leader_epoch, epoch.next());
    }

    #[test]
    fn unclean_election_takes_any_live_replica() {
        let mut t = table(vec![vec![1, 2]]);
        fence(&mut t, NodeId(2));
        fence(&mut t, NodeId(1));
        assert_eq!(state(&t, 0).isr, vec![1]);
        unfence(&mut t, NodeId(2), &|_| true);
        let p0 = state(&t, 0);
        assert_eq!((p0.leader.0, raw(&p0.isr)), (2, vec![2]));
    }

    #[test]
    fn controlled_shutdown_moves_leaders_and_leaves_isrs() {
        let mut t = table(vec![vec![1, 2, 3], vec![2, 1, 3], vec![1]]);
        assert_eq!(movable_leaderships(&t, NodeId(1)), 1);
        begin_shutdown(&mut t, NodeId(1));
        let p0 = state(&t, 0);
        assert_eq!((p0.leader.0, raw(&p0.isr)), (2, vec![2, 3]));
        let p1 = state(&t, 1);
        assert_eq!((p1.leader.0, raw(&p1.isr)), (2, vec![2, 3]));
        // A partition only broker 1 has stays with it.
        let p2 = state(&t, 2);
        assert_eq!((p2.leader.0, raw(&p2.isr)), (1, vec![1]));
        assert_eq!(movable_leaderships(&t, NodeId(1)), 0);
        // Shutting down, broker 1 gets no leadership back.
        assert_eq!(elect_preferred(&mut t, None).len(), 0);
    }

    #[test]
    fn preferred_leaders_come_back_when_in_sync() {
        let mut t = table(vec![vec![1, 2, 3], vec![2, 3, 1]]);
        fence(&mut t, NodeId(1));
        unfence(&mut t, NodeId(1), NO_UNCLEAN);
        // Not in the ISR yet: no preferred election.
        let all = [("t".to_string(), 0), ("t".to_string(), 1), ("x".into(), 0)];
        let outcomes = elect_preferred(&mut t, Some(&all));
        assert_eq!(
            outcomes,
            vec![
                (("t".into(), 0), KafkaCode::PREFERRED_LEADER_NOT_AVAILABLE),
                (("t".into(), 1), KafkaCode::ELECTION_NOT_NEEDED),
                (("x".into(), 0), KafkaCode::UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        let p0 = state(&t, 0);
        let change = IsrChange {
            leader: p0.leader,
            topic: "t".into(),
            partition: 0,
            leader_epoch: p0.leader_epoch,
            partition_epoch: p0.partition_epoch,
            isr: vec![NodeId(1), NodeId(2), NodeId(3)],
        };
        alter_isr(&mut t, &change).unwrap();
        let outcomes = elect_preferred(&mut t, None);
        assert_eq!(outcomes, vec![(("t".into(), 0), KafkaCode::NONE)]);
        assert_eq!(state(&t, 0).leader, NodeId(1));
    }

    #[test]
    fn isr_changes_are_checked_like_alter_partition() {
        let mut t = table(vec![vec![1, 2, 3]]);
        let base = IsrChange {
            leader: NodeId(1),
            topic: "t".into(),
            partition: 0,
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
            isr: vec![NodeId(1), NodeId(2)],
        };
        let wrong = |f: &dyn Fn(&mut IsrChange)| {
            let mut c = base.clone();
            f(&mut c);
            alter_isr(&mut t.clone(), &c).unwrap_err()
        };
        assert_eq!(
            wrong(&|c| c.leader = NodeId(2)),
            KafkaCode::NOT_LEADER_OR_FOLLOWER
        );
        assert_eq!(
            wrong(&|c| c.leader_epoch = LeaderEpoch(1)),
            KafkaCode::FENCED_LEADER_EPOCH
        );
        assert_eq!(
            wrong(&|c| c.partition_epoch = 3),
            KafkaCode::INVALID_UPDATE_VERSION
        );
        assert_eq!(
            wrong(&|c| c.isr = vec![NodeId(2), NodeId(3)]),
            KafkaCode::INVALID_REQUEST
        );
        assert_eq!(
            wrong(&|c| c.isr = vec![NodeId(1), NodeId(9)]),
            KafkaCode::INVALID_REQUEST
        );
        let shrunk = alter_isr(&mut t, &base).unwrap();
        assert_eq!((raw(&shrunk.isr), shrunk.partition_epoch), (vec![1, 2], 1));
        // Adding a fenced broker back is refused.
        t.brokers.get_mut(&NodeId(3)).unwrap().fenced = true;
        let grow = IsrChange {
            partition_epoch: 1,
            isr: vec![NodeId(3), NodeId(1), NodeId(2)],
            ..base.clone()
        };
        assert_eq!(
            alter_isr(&mut t.clone(), &grow).unwrap_err(),
            KafkaCode::INELIGIBLE_REPLICA
        );
        t.brokers.get_mut(&NodeId(3)).unwrap().fenced = false;
        let grown = alter_isr(&mut t, &grow).unwrap();
        assert_eq!(grown.isr, vec![1, 2, 3], "kept in replica order");
    }
}

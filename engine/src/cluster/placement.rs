//! Where new partitions' replicas go (pure functions; the active controller
//! calls them while planning CreateTopics and CreatePartitions).
//!
//! Kafka's rack-unaware scheme: partition `p`'s replica list starts at live
//! broker `(start + p) mod n` and takes the next `rf - 1` brokers in id order,
//! so leaders (the first replica) rotate over the brokers and every broker
//! follows the same number of partitions. Within a broker, the partition's
//! shard is `metadata::shard_for`, which spreads partitions over cores.

use crate::errors::KafkaCode;
use std::fmt;

/// Why replicas could not be placed: the Kafka error and its message.
pub type PlacementError = (KafkaCode, String);

/// Replica lists for `count` new partitions, starting at partition number
/// `first_partition`, over `live` brokers (any order). `start` picks the
/// broker leading partition 0 (a topic's existing partitions keep the
/// rotation going when it grows).
pub fn place<B: Copy + Ord>(
    live: &[B],
    first_partition: i32,
    count: i32,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<B>>, PlacementError> {
    let mut brokers = live.to_vec();
    brokers.sort_unstable();
    brokers.dedup();
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf == 0 {
        return Err((
            KafkaCode::INVALID_REPLICATION_FACTOR,
            format!("Replication factor must be larger than 0, got {replication_factor}."),
        ));
    }
    if rf > brokers.len() {
        return Err((
            KafkaCode::INVALID_REPLICATION_FACTOR,
            format!(
                "Replication factor: {rf} larger than available brokers: {}.",
                brokers.len()
            ),
        ));
    }
    let n = brokers.len();
    Ok((first_partition..first_partition + count.max(0))
        .map(|p| {
            let first = (start + p as usize) % n;
            (0..rf).map(|j| brokers[(first + j) % n]).collect()
        })
        .collect())
}

/// Checks replica lists given by a client (CreateTopics assignments,
/// CreatePartitions assignments): every list non-empty, the same length, no
/// broker twice, every broker registered (`known`).
pub fn check_assignment<B: Copy + Ord + fmt::Debug + fmt::Display>(
    lists: &[Vec<B>],
    known: &dyn Fn(B) -> bool,
) -> Result<(), PlacementError> {
    let invalid = |message: String| Err((KafkaCode::INVALID_REPLICA_ASSIGNMENT, message));
    let Some(first) = lists.first() else {
        return Ok(());
    };
    for list in lists {
        if list.is_empty() {
            return invalid("A partition's replica list must not be empty.".into());
        }
        if list.len() != first.len() {
            return invalid(format!(
                "All partitions must have the same number of replicas; got {first:?} and {list:?}."
            ));
        }
        let mut sorted = list.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return invalid(format!("Replica list {list:?} names a broker twice."));
        }
        if let Some(unknown) = list.iter().find(|b| !known(**b)) {
            return invalid(format!(
                "Replica list {list:?} names broker {unknown}, which is not registered."
            ));
        }
    }
    Ok(())
}

/// Where a topic's rotation continues: the position of partition 0's leader
/// among the sorted live brokers (0 if it is not live).
pub fn rotation_start<B: Copy + Ord>(live: &[B], first_leader: Option<B>) -> usize {
    let mut brokers = live.to_vec();
    brokers.sort_unstable();
    first_leader
        .and_then(|leader| brokers.iter().position(|b| *b == leader))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_rotate_and_followers_are_the_next_brokers() {
        let lists = place(&[3, 1, 2], 0, 6, 3, 0).unwrap();
        assert_eq!(
            lists,
            vec![
                vec![1, 2, 3],
                vec![2, 3, 1],
                vec![3, 1, 2],
                vec![1, 2, 3],
                vec![2, 3, 1],
                vec![3, 1, 2]
            ]
        );
        let leaders: Vec<i32> = place(&[1, 2, 3], 0, 9, 2, 1)
            .unwrap()
            .iter()
            .map(|l| l[0])
            .collect();
        for b in [1, 2, 3] {
            assert_eq!(leaders.iter().filter(|l| **l == b).count(), 3);
        }
        // Growing a topic continues the rotation.
        assert_eq!(place(&[1, 2, 3], 4, 1, 1, 0).unwrap(), vec![vec![2]]);
        assert_eq!(rotation_start(&[1, 2, 3], Some(2)), 1);
        assert_eq!(rotation_start(&[1, 3], Some(2)), 0);
    }

    #[test]
    fn too_few_brokers_or_a_bad_factor_is_refused_as_kafka_does() {
        let (code, message) = place(&[1, 2], 0, 1, 3, 0).unwrap_err();
        assert_eq!(code, KafkaCode::INVALID_REPLICATION_FACTOR);
        assert_eq!(
            message,
            "Replication factor: 3 larger than available brokers: 2."
        );
        assert_eq!(
            place(&[1], 0, 1, 0, 0).unwrap_err().0,
            KafkaCode::INVALID_REPLICATION_FACTOR
        );
    }

    #[test]
    fn manual_assignments_are_checked() {
        let known = |b: i32| (1..=3).contains(&b);
        assert!(check_assignment(&[vec![1, 2], vec![2, 3]], &known).is_ok());
        for bad in [
            vec![vec![1, 2], vec![3]],
            vec![vec![1, 1]],
            vec![vec![1, 9]],
            vec![vec![]],
        ] {
            let (code, _) = check_assignment(&bad, &known).unwrap_err();
            assert_eq!(code, KafkaCode::INVALID_REPLICA_ASSIGNMENT, "{bad:?}");
        }
    }
}

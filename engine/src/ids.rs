//! Identifiers that cross the partition, replication and cluster boundaries,
//! as types of their own: a broker id is not a leader epoch, and neither is
//! a count. Both are Kafka's `int32` on the wire and in the metadata log
//! (`.0` there); serialized as the bare number, so stored metadata keeps its
//! format.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A broker's id (`node.id`); [`NodeId::NONE`] (-1) where Kafka says "no
/// broker" (no leader elected, no controller known).
///
/// Shown (`{}` and `{:?}`) as the bare number, so messages and logs read as
/// Kafka's do (`[1, 2, 3]`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub i32);

impl NodeId {
    /// No broker.
    pub const NONE: NodeId = NodeId(-1);

    /// Whether this names a broker (not [`NodeId::NONE`]).
    pub fn is_some(self) -> bool {
        self.0 >= 0
    }
}

impl From<NodeId> for kafka_protocol::messages::BrokerId {
    fn from(id: NodeId) -> Self {
        kafka_protocol::messages::BrokerId(id.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The epoch of a partition's leadership: grows with every leader change.
/// Requests carry the epoch their sender believes current, and a replica
/// refuses one from an older (FENCED_LEADER_EPOCH) or newer
/// (UNKNOWN_LEADER_EPOCH) epoch than its own. [`LeaderEpoch::UNKNOWN`] (-1)
/// is a request's "not checked".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaderEpoch(pub i32);

impl LeaderEpoch {
    /// Not known / not checked.
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);

    /// The epoch after this one.
    pub fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }

    /// Whether a request gave an epoch to check.
    pub fn is_known(self) -> bool {
        self.0 >= 0
    }
}

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Test conveniences: ids compared with, and made from, plain numbers.
#[cfg(test)]
mod test_support {
    use super::*;

    impl PartialEq<i32> for NodeId {
        fn eq(&self, other: &i32) -> bool {
            self.0 == *other
        }
    }

    impl PartialEq<i32> for LeaderEpoch {
        fn eq(&self, other: &i32) -> bool {
            self.0 == *other
        }
    }
}

/// Broker ids as plain numbers (tests compare them with literals).
#[cfg(test)]
pub fn raw(ids: &[NodeId]) -> Vec<i32> {
    ids.iter().map(|id| id.0).collect()
}

/// Broker ids from plain numbers.
#[cfg(test)]
pub fn nodes(ids: &[i32]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ids_serialize_as_bare_numbers_so_stored_metadata_keeps_its_format() {
        let mut brokers = BTreeMap::new();
        brokers.insert(NodeId(3), LeaderEpoch(7));
        let text = serde_json::to_string(&brokers).unwrap();
        assert_eq!(text, r#"{"3":7}"#);
        let back: BTreeMap<NodeId, LeaderEpoch> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, brokers);
    }
}

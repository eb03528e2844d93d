//! Which Kafka APIs and versions Strom serves, and what ApiVersions advertises.
//!
//! The ranges are Apache Kafka 4.0's for every API Strom implements; an API Strom
//! does not implement is neither advertised nor served (the connection is closed,
//! as Kafka does for an unknown key). Kafka 4.0 dropped the pre-RecordBatch-v2
//! versions (KIP-896); Produce is the one exception: Kafka 4.0 still *advertises*
//! Produce v0-v2 but rejects them, because librdkafka before 2.11.1 only enables
//! gzip/snappy/lz4 when the advertised Produce range reaches down to v0
//! (KAFKA-18659). Strom does the same. FindCoordinator is served (this single
//! node coordinates every group) although the group APIs are not yet: librdkafka
//! also gates its LZ4 support on FindCoordinator v0 being advertised.

use kafka_protocol::messages::ApiKey;

/// An inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: i16,
    pub max: i16,
}

/// One served API: what ApiVersions says, and what requests are accepted.
#[derive(Debug, Clone, Copy)]
pub struct ApiEntry {
    pub api_key: ApiKey,
    pub advertised: Range,
    pub accepted: Range,
}

/// The served API table. Built once at start-up; each shard holds a copy.
#[derive(Debug, Clone)]
pub struct ApiSupport {
    entries: Vec<ApiEntry>,
}

const fn entry(api_key: ApiKey, min: i16, max: i16) -> ApiEntry {
    ApiEntry {
        api_key,
        advertised: Range { min, max },
        accepted: Range { min, max },
    }
}

impl ApiSupport {
    /// Apache Kafka 4.0.0's ranges for the APIs Strom serves.
    pub fn kafka_4_0() -> ApiSupport {
        let mut produce = entry(ApiKey::Produce, 0, 12);
        produce.accepted.min = 3;
        ApiSupport {
            entries: vec![
                produce,
                entry(ApiKey::Fetch, 4, 17),
                entry(ApiKey::ListOffsets, 1, 10),
                entry(ApiKey::Metadata, 0, 13),
                entry(ApiKey::ApiVersions, 0, 4),
                entry(ApiKey::CreateTopics, 2, 7),
                entry(ApiKey::DeleteTopics, 1, 6),
                entry(ApiKey::FindCoordinator, 0, 6),
                entry(ApiKey::DeleteRecords, 0, 2),
                entry(ApiKey::OffsetCommit, 2, 9),
                entry(ApiKey::OffsetFetch, 1, 9),
                entry(ApiKey::JoinGroup, 0, 9),
                entry(ApiKey::Heartbeat, 0, 4),
                entry(ApiKey::LeaveGroup, 0, 5),
                entry(ApiKey::SyncGroup, 0, 5),
                entry(ApiKey::DescribeGroups, 0, 5),
                entry(ApiKey::ListGroups, 0, 5),
                entry(ApiKey::DeleteGroups, 0, 2),
                entry(ApiKey::OffsetDelete, 0, 0),
                entry(ApiKey::DescribeConfigs, 1, 4),
                entry(ApiKey::AlterConfigs, 0, 2),
                entry(ApiKey::IncrementalAlterConfigs, 0, 1),
                entry(ApiKey::CreatePartitions, 0, 3),
                entry(ApiKey::DescribeCluster, 0, 2),
                entry(ApiKey::DescribeLogDirs, 1, 4),
                entry(ApiKey::DescribeTopicPartitions, 0, 0),
                entry(ApiKey::OffsetForLeaderEpoch, 2, 4),
                entry(ApiKey::ElectLeaders, 0, 2),
                entry(ApiKey::DescribeQuorum, 0, 2),
                entry(ApiKey::InitProducerId, 0, 4),
                entry(ApiKey::DescribeProducers, 0, 0),
                entry(ApiKey::AddPartitionsToTxn, 0, 3),
                entry(ApiKey::AddOffsetsToTxn, 0, 3),
                entry(ApiKey::EndTxn, 0, 3),
                entry(ApiKey::TxnOffsetCommit, 0, 3),
                entry(ApiKey::WriteTxnMarkers, 1, 1),
                entry(ApiKey::DescribeTransactions, 0, 0),
                entry(ApiKey::ListTransactions, 0, 1),
            ],
        }
    }

    pub fn entries(&self) -> &[ApiEntry] {
        &self.entries
    }

    /// The advertised range, or None when the API is not served.
    pub fn range(&self, api_key: ApiKey) -> Option<Range> {
        self.entries
            .iter()
            .find(|e| e.api_key == api_key)
            .map(|e| e.advertised)
    }

    /// Whether a request of this API and version is served.
    pub fn accepts(&self, api_key: ApiKey, api_version: i16) -> bool {
        self.entries
            .iter()
            .find(|e| e.api_key == api_key)
            .is_some_and(|e| e.accepted.min <= api_version && api_version <= e.accepted.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_is_advertised_from_v0_but_served_from_v3() {
        let support = ApiSupport::kafka_4_0();
        assert_eq!(support.range(ApiKey::Produce).unwrap().min, 0);
        assert!(!support.accepts(ApiKey::Produce, 2));
        assert!(support.accepts(ApiKey::Produce, 3));
    }

    #[test]
    fn every_served_version_is_known_to_the_codec() {
        for e in ApiSupport::kafka_4_0().entries() {
            let codec = e.api_key.valid_versions();
            assert!(
                e.accepted.min >= codec.min && e.accepted.max <= codec.max,
                "{e:?}"
            );
        }
    }
}

//! The topic table: which topics exist, their ids, partition counts and config
//! overrides, and which shard owns each partition.
//!
//! Who touches it: shard 0 is the only writer (CreateTopics / DeleteTopics are
//! forwarded to it); it persists the new table, then sends an immutable copy
//! (`Arc<TopicTable>`, with a higher revision) to every shard, which applies it by
//! opening or removing the partitions it owns. Readers never lock anything.
//!
//! On disk: `<data_dir>/meta/topics.json`, replaced atomically (temp file, fsync,
//! rename, fsync of the directory):
//! ```json
//! {"revision": 3, "cluster_id": "…", "topics": [
//!   {"name": "orders", "id": "uuid", "partitions": 8, "configs": {"segment.bytes": "1048576"}}],
//!  "broker_defaults": {"log.retention.ms": "3600000"},
//!  "node_configs": {"1": {"message.max.bytes": "2000000"}}}
//! ```
//! Topic `configs` are the topic's overrides; `broker_defaults` and
//! `node_configs` are the broker configs changed at run time (AlterConfigs on
//! resource BROKER), layered over the static configuration (see
//! `strom_tuning::catalog`).
//! A later version replaces this file with the replicated metadata log of the
//! controller quorum.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides, by Kafka key name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// An immutable, revisioned snapshot of all topics.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopicTable {
    pub revision: u64,
    pub cluster_id: String,
    #[serde(with = "topics_as_list")]
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    /// Broker configs set at run time for every broker (resource BROKER
    /// with the empty name), by Kafka key name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub broker_defaults: BTreeMap<String, String>,
    /// Broker configs set at run time for one broker, by node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
}

mod topics_as_list {
    use super::TopicMeta;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(
        topics: &BTreeMap<String, Arc<TopicMeta>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<&TopicMeta> = topics.values().map(|t| t.as_ref()).collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Arc<TopicMeta>>, D::Error> {
        let list = Vec::<TopicMeta>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|t| (t.name.clone(), Arc::new(t)))
            .collect())
    }
}

/// Errors loading or saving the table.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid topic table: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl TopicTable {
    pub fn by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    /// Path of the table file under a data dir.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("meta").join("topics.json")
    }

    /// Loads the table, or creates an empty one with a fresh cluster id.
    pub fn load_or_create(data_dir: &Path) -> Result<TopicTable, MetadataError> {
        let path = Self::path(data_dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| MetadataError::Parse {
                path: path.clone(),
                source,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let table = TopicTable {
                    cluster_id: cluster_id_from(Uuid::new_v4()),
                    ..TopicTable::default()
                };
                table.save(data_dir)?;
                Ok(table)
            }
            Err(source) => Err(MetadataError::Io { path, source }),
        }
    }

    /// Atomically replaces the table file.
    pub fn save(&self, data_dir: &Path) -> Result<(), MetadataError> {
        let path = Self::path(data_dir);
        let dir = data_dir.join("meta");
        let io = |source| MetadataError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let temp = dir.join("topics.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = fs::File::create(&temp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temp, &path).map_err(io)?;
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok(())
    }
}

/// Kafka cluster ids are 22-character URL-safe base64 of a UUID.
fn cluster_id_from(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = id.as_u128();
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let index = if shift >= 0 {
                (bits >> shift) & 63
            } else {
                (bits << -shift) & 63
            };
            ALPHABET[index as usize] as char
        })
        .collect()
}

/// Which shard owns a partition: partitions of one topic are spread round-robin,
/// starting at a shard derived from the topic name so that many small topics do
/// not all start on shard 0. Pure function of (name, partition, shard count):
/// every shard computes the same answer without asking anyone.
pub fn shard_for(topic: &str, partition: i32, shard_count: usize) -> usize {
    // FNV-1a: stable across runs and platforms (std's hasher is not).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ((hash.wrapping_add(partition as u64)) % shard_count as u64) as usize
}

/// Directory of one partition: Kafka's `<topic>-<partition>`.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_a_topic_spread_over_shards() {
        let mut counts = [0usize; 4];
        for p in 0..8 {
            counts[shard_for("orders", p, 4)] += 1;
        }
        assert_eq!(counts, [2, 2, 2, 2]);
        assert_eq!(shard_for("x", 3, 1), 0);
    }

    #[test]
    fn table_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = TopicTable::load_or_create(dir.path()).unwrap();
        assert_eq!(table.cluster_id.len(), 22);
        table.revision = 7;
        table.topics.insert(
            "a".into(),
            Arc::new(TopicMeta {
                name: "a".into(),
                id: Uuid::new_v4(),
                partitions: 3,
                configs: BTreeMap::from([("segment.bytes".into(), "1000".into())]),
            }),
        );
        table.save(dir.path()).unwrap();
        let again = TopicTable::load_or_create(dir.path()).unwrap();
        assert_eq!(again.revision, 7);
        assert_eq!(again.topics, table.topics);
        assert_eq!(again.cluster_id, table.cluster_id);
    }
}

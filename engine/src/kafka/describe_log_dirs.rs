//! DescribeLogDirs: the data directory, the bytes each partition holds on
//! disk (every segment's log file), and the file system's total and usable
//! bytes (v4). Sizes come from every shard (each reports the partitions it
//! owns).

use crate::errors::KafkaCode;
use crate::messages::TopicPartition;
use crate::shard::Shard;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use strom_net::response::str_bytes;
use tracing::warn;

pub async fn handle(shard: &Rc<Shard>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted: Option<HashSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let calls = (0..shard.count).map(|owner| {
        let shard = shard.clone();
        async move { shard.call(owner, |s| async move { s.log_sizes() }).await }
    });
    let mut sizes: BTreeMap<String, BTreeMap<i32, u64>> = BTreeMap::new();
    for answer in futures::future::join_all(calls).await {
        match answer {
            Ok(list) => {
                for (TopicPartition { topic, partition }, size) in list {
                    let keep = wanted
                        .as_ref()
                        .is_none_or(|w| w.contains(&(topic.to_string(), partition)));
                    if keep {
                        sizes
                            .entry(topic.to_string())
                            .or_default()
                            .insert(partition, size);
                    }
                }
            }
            Err(err) => warn!("DescribeLogDirs: {err}"),
        }
    }
    let dir = shard.broker.data_dir();
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = str_bytes(&shown.display().to_string());
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stat) => {
            let block = stat.fragment_size() as i64;
            result.total_bytes = stat.blocks() as i64 * block;
            result.usable_bytes = stat.blocks_available() as i64 * block;
        }
        Err(err) => {
            warn!("DescribeLogDirs: statvfs {}: {err}", dir.display());
            result.error_code = KafkaCode::KAFKA_STORAGE_ERROR.0;
            result.total_bytes = -1;
            result.usable_bytes = -1;
        }
    }
    result.topics = sizes
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = DescribeLogDirsTopic::default();
            topic.name = TopicName(str_bytes(&name));
            topic.partitions = partitions
                .into_iter()
                .map(|(index, size)| {
                    let mut p = DescribeLogDirsPartition::default();
                    p.partition_index = index;
                    p.partition_size = size as i64;
                    p.offset_lag = 0;
                    p
                })
                .collect();
            topic
        })
        .collect();
    let mut response = DescribeLogDirsResponse::default();
    response.results = vec![result];
    response
}

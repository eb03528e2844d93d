//! DescribeTopicPartitions (KIP-966): topics and their partitions, paged by
//! `response_partition_limit` with a cursor, as Kafka 3.8+ admin clients
//! ask for them. Answered from the shard's copy of the topic table.

use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use std::rc::Rc;
use strom_net::response::str_bytes;
use strom_tuning::validate_topic_name;
use uuid::Uuid;

/// Kafka's cap on partitions per response.
const PARTITION_LIMIT_MAX: i32 = 2000;

pub fn handle(
    shard: &Rc<Shard>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let table = shard.table();
    let mut names: Vec<String> = if request.topics.is_empty() {
        table.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index.max(0)),
        None => (None, 0),
    };
    let mut budget = request
        .response_partition_limit
        .clamp(1, PARTITION_LIMIT_MAX);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if start_topic.as_ref().is_some_and(|s| name < *s) {
            continue;
        }
        let mut topic = DescribeTopicPartitionsResponseTopic::default();
        topic.name = Some(TopicName(str_bytes(&name)));
        topic.topic_authorized_operations = i32::MIN;
        let Some(meta) = table.topics.get(&name) else {
            topic.error_code = if validate_topic_name(&name).is_err() {
                KafkaCode::INVALID_TOPIC_EXCEPTION.0
            } else {
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION.0
            };
            topic.topic_id = Uuid::nil();
            response.topics.push(topic);
            continue;
        };
        if budget == 0 {
            response.next_cursor = Some(cursor(&name, 0));
            break;
        }
        topic.topic_id = meta.id;
        topic.is_internal = name == crate::group::OFFSETS_TOPIC;
        let first = if start_topic.as_deref() == Some(name.as_str()) {
            start_partition
        } else {
            0
        };
        let mut p = first;
        while p < meta.partitions && budget > 0 {
            let Some(state) = meta.partition(p) else {
                break;
            };
            let mut partition = DescribeTopicPartitionsResponsePartition::default();
            partition.partition_index = p;
            if state.leader == crate::metadata::NO_LEADER {
                partition.error_code = KafkaCode::LEADER_NOT_AVAILABLE.0;
            }
            partition.leader_id = state.leader.into();
            partition.leader_epoch = state.leader_epoch.0;
            partition.replica_nodes = state.replicas.iter().map(|b| (*b).into()).collect();
            partition.isr_nodes = state.isr.iter().map(|b| (*b).into()).collect();
            partition.offline_replicas = crate::metadata::offline_replicas(state, &table)
                .into_iter()
                .map(BrokerId::from)
                .collect();
            partition.eligible_leader_replicas = Some(Vec::new());
            partition.last_known_elr = Some(Vec::new());
            topic.partitions.push(partition);
            p += 1;
            budget -= 1;
        }
        response.topics.push(topic);
        if p < meta.partitions {
            response.next_cursor = Some(cursor(&name, p));
            break;
        }
    }
    response
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    let mut c = Cursor::default();
    c.topic_name = TopicName(str_bytes(topic));
    c.partition_index = partition;
    c
}

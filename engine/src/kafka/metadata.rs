//! Metadata: the live brokers, the active controller, and topics with their
//! partitions (leader, leader epoch, replicas, ISR, offline replicas) as this
//! broker's metadata image has them. Unknown topics are created when
//! auto-creation is enabled on the broker and allowed by the request (v4+),
//! as Kafka does.

use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::kafka::create_topics::auto_create;
use crate::metadata::{TopicMeta, TopicTable, NO_LEADER};
use crate::shard::Shard;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use std::rc::Rc;
use strom_net::response::str_bytes;
use strom_tuning::validate_topic_name;
use uuid::Uuid;

/// Kafka's "authorized operations not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// The brokers clients may connect to: every registered broker that is not
/// fenced. Before this broker has any metadata (no broker registered yet),
/// itself, so a client can come back later.
pub fn live_brokers(
    shard: &Shard,
    table: &TopicTable,
) -> Vec<(NodeId, String, u16, Option<String>)> {
    if table.brokers.is_empty() {
        let (host, port) = shard.broker.advertised();
        return vec![(shard.node_id(), host, port, None)];
    }
    table
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| (b.id, b.host.clone(), b.port, b.rack.clone()))
        .collect()
}

pub async fn handle(shard: &Rc<Shard>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let broker = &shard.broker;
    let mut response = MetadataResponse::default();
    response.cluster_authorized_operations = OPERATIONS_NOT_REQUESTED;

    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested = match request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    let mut table = shard.table();
    response.cluster_id = Some(str_bytes(&table.cluster_id));
    let Some(requested) = requested else {
        fill_brokers(&mut response, shard, &table);
        response.topics = table
            .topics
            .values()
            .map(|t| topic_entry(t, &table))
            .collect();
        return response;
    };

    let allow_create =
        broker.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
    if allow_create {
        let missing: Vec<String> = requested
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .filter(|n| !table.topics.contains_key(n) && validate_topic_name(n).is_ok())
            .collect();
        if !missing.is_empty() {
            auto_create(shard, missing).await;
            table = shard.table();
        }
    }
    for wanted in requested {
        let entry = match wanted.name {
            Some(name) => {
                let name = name.0.to_string();
                match table.topics.get(&name) {
                    Some(meta) => topic_entry(meta, &table),
                    None => {
                        let code = if validate_topic_name(&name).is_err() {
                            KafkaCode::INVALID_TOPIC_EXCEPTION
                        } else {
                            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                        };
                        error_entry(Some(name), Uuid::nil(), code)
                    }
                }
            }
            None => match table.by_id(wanted.topic_id) {
                Some(meta) => topic_entry(meta, &table),
                None => error_entry(None, wanted.topic_id, KafkaCode::UNKNOWN_TOPIC_ID),
            },
        };
        response.topics.push(entry);
    }
    fill_brokers(&mut response, shard, &table);
    response
}

fn fill_brokers(response: &mut MetadataResponse, shard: &Shard, table: &TopicTable) {
    response.brokers = live_brokers(shard, table)
        .into_iter()
        .map(|(id, host, port, rack)| {
            let mut node = MetadataResponseBroker::default();
            node.node_id = id.into();
            node.host = str_bytes(&host);
            node.port = i32::from(port);
            node.rack = rack.map(|r| str_bytes(&r));
            node
        })
        .collect();
    response.controller_id = table.controller_id.into();
}

fn error_entry(name: Option<String>, id: Uuid, code: KafkaCode) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.error_code = code.0;
    topic.name = name.map(|n| TopicName(str_bytes(&n)));
    topic.topic_id = id;
    topic.topic_authorized_operations = OPERATIONS_NOT_REQUESTED;
    topic
}

fn topic_entry(meta: &TopicMeta, table: &TopicTable) -> MetadataResponseTopic {
    let mut topic = error_entry(Some(meta.name.clone()), meta.id, KafkaCode::NONE);
    topic.is_internal =
        meta.name == crate::group::OFFSETS_TOPIC || meta.name == crate::txn::TXN_TOPIC;
    topic.partitions = meta
        .assignments
        .iter()
        .enumerate()
        .map(|(p, state)| {
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = p as i32;
            if state.leader == NO_LEADER {
                partition.error_code = KafkaCode::LEADER_NOT_AVAILABLE.0;
            }
            partition.leader_id = state.leader.into();
            partition.leader_epoch = state.leader_epoch.0;
            partition.replica_nodes = state.replicas.iter().map(|b| (*b).into()).collect();
            partition.isr_nodes = state.isr.iter().map(|b| (*b).into()).collect();
            partition.offline_replicas = crate::metadata::offline_replicas(state, table)
                .into_iter()
                .map(BrokerId::from)
                .collect();
            partition
        })
        .collect();
    topic
}

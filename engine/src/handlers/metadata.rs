//! Metadata: brokers (this one), the controller (this one), and topics with their
//! partitions. Unknown topics are created when auto-creation is enabled on the
//! broker and allowed by the request (v4+), as Kafka does.

use crate::errors::KafkaCode;
use crate::handlers::create_topics::auto_create;
use crate::metadata::TopicMeta;
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

pub async fn handle(shard: &Rc<Shard>, request: MetadataRequest, version: i16) -> MetadataResponse {
    let broker = &shard.broker;
    let node_id = broker.node_id;
    let (host, port) = broker.advertised();
    let mut response = MetadataResponse::default();
    let mut node = MetadataResponseBroker::default();
    node.node_id = BrokerId(broker.node_id);
    node.host = str_bytes(&host);
    node.port = i32::from(port);
    response.brokers = vec![node];
    response.controller_id = BrokerId(broker.node_id);
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
        response.topics = table
            .topics
            .values()
            .map(|t| topic_entry(t, node_id))
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
                    Some(meta) => topic_entry(meta, node_id),
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
                Some(meta) => topic_entry(meta, node_id),
                None => error_entry(None, wanted.topic_id, KafkaCode::UNKNOWN_TOPIC_ID),
            },
        };
        response.topics.push(entry);
    }
    response
}

fn error_entry(name: Option<String>, id: Uuid, code: KafkaCode) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.error_code = code.0;
    topic.name = name.map(|n| TopicName(str_bytes(&n)));
    topic.topic_id = id;
    topic.topic_authorized_operations = OPERATIONS_NOT_REQUESTED;
    topic
}

fn topic_entry(meta: &TopicMeta, node_id: i32) -> MetadataResponseTopic {
    let mut topic = error_entry(Some(meta.name.clone()), meta.id, KafkaCode::NONE);
    topic.is_internal = meta.name == crate::group::OFFSETS_TOPIC;
    topic.partitions = (0..meta.partitions)
        .map(|p| {
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = p;
            partition.leader_id = BrokerId(node_id);
            partition.leader_epoch = 0;
            partition.replica_nodes = vec![BrokerId(node_id)];
            partition.isr_nodes = vec![BrokerId(node_id)];
            partition
        })
        .collect();
    topic
}

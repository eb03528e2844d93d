//! CreateTopics, and auto-creation on Metadata/Produce.
//!
//! Any shard may receive the request; it is forwarded to shard 0, the single
//! writer of the topic table, which validates every topic, persists the new table
//! and installs it on all shards before answering, so a client that sees success
//! can produce to the topic on any connection right away.

use crate::cluster::topics::failed;
use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::messages::{CreateOutcome, CreateSpec};
use crate::shard::Shard;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use std::rc::Rc;
use strom_net::response::str_bytes;
use tracing::{info, warn};

/// Kafka's config source code for a default value / a topic override.
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_TOPIC: i8 = 1;

pub async fn handle(
    shard: &Rc<Shard>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let specs: Vec<CreateSpec> = request
        .topics
        .into_iter()
        .map(|t| CreateSpec {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .into_iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.into_iter().map(|b| NodeId(b.0)).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .into_iter()
                .map(|c| (c.name.to_string(), c.value.map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let validate_only = request.validate_only;
    let outcomes = match shard
        .call(0, move |zero| async move {
            crate::cluster::client::create_topics(&zero, specs, validate_only).await
        })
        .await
    {
        Ok(outcomes) => outcomes,
        Err(err) => {
            warn!("CreateTopics not completed: {err}");
            names
                .into_iter()
                .map(|name| failed(name, KafkaCode::UNKNOWN_SERVER_ERROR, err.to_string()))
                .collect()
        }
    };
    let mut response = CreateTopicsResponse::default();
    response.topics = outcomes
        .into_iter()
        .map(|o| result_entry(o, version))
        .collect();
    response
}

fn result_entry(outcome: CreateOutcome, version: i16) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default();
    result.name = TopicName(str_bytes(&outcome.name));
    result.topic_id = outcome.id;
    result.error_code = outcome.error.0;
    result.error_message = outcome.message.map(|m| str_bytes(&m));
    result.num_partitions = outcome.num_partitions;
    result.replication_factor = outcome.replication_factor;
    if version >= 5 && outcome.error.is_ok() {
        result.configs = Some(
            outcome
                .configs
                .into_iter()
                .map(|(key, value, is_default)| {
                    let mut entry = CreatableTopicConfigs::default();
                    entry.name = str_bytes(&key);
                    entry.value = Some(str_bytes(&value));
                    entry.config_source = if is_default {
                        SOURCE_DEFAULT
                    } else {
                        SOURCE_TOPIC
                    };
                    entry
                })
                .collect(),
        );
    }
    result
}

/// Creates topics with the broker defaults (auto-creation). A topic that another
/// connection created meanwhile counts as success.
pub async fn auto_create(shard: &Rc<Shard>, names: Vec<String>) {
    let specs = names
        .iter()
        .map(|name| CreateSpec {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        })
        .collect();
    match shard
        .call(0, move |zero| async move {
            crate::cluster::client::create_topics(&zero, specs, false).await
        })
        .await
    {
        Ok(outcomes) => {
            for outcome in outcomes {
                if outcome.error.is_ok() {
                    info!(topic = %outcome.name, partitions = outcome.num_partitions, "auto-created topic");
                }
            }
        }
        Err(err) => warn!("auto-creating topics failed: {err}"),
    }
}

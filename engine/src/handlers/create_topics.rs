//! CreateTopics, and auto-creation on Metadata/Produce.
//!
//! Any shard may receive the request; it is forwarded to shard 0, the single
//! writer of the topic table, which validates every topic, persists the new table
//! and installs it on all shards before answering, so a client that sees success
//! can produce to the topic on any connection right away.

use crate::errors::KafkaCode;
use crate::messages::{CreateOutcome, CreateSpec, ShardMsg};
use crate::metadata::{TopicMeta, TopicTable};
use crate::shard::Shard;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use std::collections::BTreeMap;
use std::rc::Rc;
use strom_net::response::str_bytes;
use strom_tuning::config::{BrokerConfig, TopicConfig};
use strom_tuning::limits::PARTITIONS_PER_TOPIC_MAX;
use strom_tuning::validate_topic_name;
use tracing::{info, warn};
use uuid::Uuid;

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
                        a.broker_ids.into_iter().map(|b| b.0).collect(),
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
    let outcomes = match shard
        .call(0, |reply| {
            ShardMsg::CreateTopics(specs, request.validate_only, reply)
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

fn failed(name: String, error: KafkaCode, message: String) -> CreateOutcome {
    CreateOutcome {
        name,
        id: Uuid::nil(),
        error,
        message: Some(message),
        num_partitions: -1,
        replication_factor: -1,
        configs: Vec::new(),
    }
}

/// Files a partition keeps open: the active segment's `.log`, `.index`, `.timeindex`.
const FILES_PER_PARTITION: u64 = 3;
/// Files kept free for connections, the metadata file and older segments.
const FILES_RESERVED: u64 = 512;

/// The process's soft open-file limit (raised to the hard limit at start).
fn open_files_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(u64::MAX, |(soft, _)| soft)
}

/// Whether `extra` more partitions fit in the open-file limit; the error
/// says why not and what to do.
pub fn check_open_files(table: &TopicTable, extra: i64) -> Result<(), String> {
    let partitions_after = table
        .topics
        .values()
        .map(|t| i64::from(t.partitions))
        .sum::<i64>()
        + extra;
    let files_needed = partitions_after as u64 * FILES_PER_PARTITION + FILES_RESERVED;
    let files_limit = open_files_limit();
    if files_needed > files_limit {
        return Err(format!(
            "{extra} more partitions would need about {files_needed} open files \
             ({FILES_PER_PARTITION} per partition), over this broker's open-file limit of \
             {files_limit}; raise the limit (ulimit -n) and restart the broker"
        ));
    }
    Ok(())
}

/// Validates one topic against the current table (runs on shard 0). Returns the
/// topic to add and its success outcome, or a failure outcome.
pub fn plan_topic(
    broker: &BrokerConfig,
    table: &TopicTable,
    spec: CreateSpec,
    duplicate_in_request: bool,
) -> Result<(TopicMeta, CreateOutcome), CreateOutcome> {
    let name = spec.name;
    if duplicate_in_request {
        return Err(failed(
            name,
            KafkaCode::INVALID_REQUEST,
            "Topic appears more than once in the request".into(),
        ));
    }
    if let Err(reason) = validate_topic_name(&name) {
        return Err(failed(name, KafkaCode::INVALID_TOPIC_EXCEPTION, reason));
    }
    if table.topics.contains_key(&name) {
        let message = format!("Topic '{name}' already exists.");
        return Err(failed(name, KafkaCode::TOPIC_ALREADY_EXISTS, message));
    }
    if let Some(existing) = crate::admin::colliding_topic(table, &name) {
        let message = format!(
            "Topic '{name}' collides with existing topic: {existing} ('.' and '_' are \
             interchangeable in metric names, so Kafka refuses such pairs)"
        );
        return Err(failed(name, KafkaCode::INVALID_TOPIC_EXCEPTION, message));
    }
    let mut num_partitions = spec.num_partitions;
    let mut replication_factor = spec.replication_factor;
    let live = table.live_brokers();
    let assignments: Vec<Vec<i32>> = if !spec.assignments.is_empty() {
        if num_partitions != -1 || replication_factor != -1 {
            return Err(failed(
                name,
                KafkaCode::INVALID_REQUEST,
                "Both numPartitions or replicationFactor and replicasAssignments were set; only one may be".into(),
            ));
        }
        if let Some((index, (partition, _))) = spec
            .assignments
            .iter()
            .enumerate()
            .find(|(index, (partition, _))| *partition != *index as i32)
        {
            return Err(failed(
                name,
                KafkaCode::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "replica assignments must list partitions 0..n in order; entry {index} is partition {partition}"
                ),
            ));
        }
        let lists: Vec<Vec<i32>> = spec.assignments.iter().map(|(_, b)| b.clone()).collect();
        let known = |b: i32| table.brokers.contains_key(&b);
        if let Err((code, message)) = crate::cluster::placement::check_assignment(&lists, &known) {
            return Err(failed(name, code, message));
        }
        num_partitions = lists.len() as i32;
        replication_factor = lists[0].len() as i16;
        lists
    } else {
        Vec::new()
    };
    if num_partitions == -1 {
        num_partitions = broker.num_partitions;
    }
    if num_partitions < 1 || num_partitions as usize > PARTITIONS_PER_TOPIC_MAX {
        return Err(failed(
            name,
            KafkaCode::INVALID_PARTITIONS,
            format!("Number of partitions must be in 1..={PARTITIONS_PER_TOPIC_MAX}, got {num_partitions}."),
        ));
    }
    if let Err(message) = check_open_files(table, i64::from(num_partitions)) {
        return Err(failed(name, KafkaCode::INVALID_PARTITIONS, message));
    }
    if replication_factor == -1 {
        replication_factor = broker.default_replication_factor;
    }
    let assignments = if assignments.is_empty() {
        // Start the rotation anywhere, so single-partition topics spread.
        let start = (Uuid::new_v4().as_u128() % 65_521) as usize;
        match crate::cluster::placement::place(&live, 0, num_partitions, replication_factor, start)
        {
            Ok(lists) => lists,
            Err((code, message)) => return Err(failed(name, code, message)),
        }
    } else {
        assignments
    };
    let mut config = TopicConfig::defaults_from(broker);
    if let Err(err) = config.apply(&spec.configs) {
        return Err(failed(name, KafkaCode::INVALID_CONFIG, err.to_string()));
    }
    let overrides: BTreeMap<String, String> = config.overrides().clone();
    let configs = config
        .describe()
        .into_iter()
        .map(|(key, value)| {
            let is_default = !overrides.contains_key(&key);
            (key, value, is_default)
        })
        .collect();
    let meta = TopicMeta {
        name: name.clone(),
        id: Uuid::new_v4(),
        partitions: num_partitions,
        configs: overrides,
        assignments: assignments
            .into_iter()
            .map(crate::metadata::PartitionState::new)
            .collect(),
    };
    let outcome = CreateOutcome {
        name,
        id: meta.id,
        error: KafkaCode::NONE,
        message: None,
        num_partitions,
        replication_factor,
        configs,
    };
    Ok((meta, outcome))
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
        .call(0, |reply| ShardMsg::CreateTopics(specs, false, reply))
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

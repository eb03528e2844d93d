//! Topic planning on shard 0 (the controller's single writer): validates one
//! CreateTopics entry against the current table and places its replicas;
//! the open-file budget every new partition must fit in.

use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::messages::{CreateOutcome, CreateSpec};
use crate::metadata::{TopicMeta, TopicTable};
use std::collections::BTreeMap;
use strom_tuning::config::{BrokerConfig, TopicConfig};
use strom_tuning::limits::PARTITIONS_PER_TOPIC_MAX;
use strom_tuning::validate_topic_name;
use uuid::Uuid;

/// A failed CreateTopics entry.
pub fn failed(name: String, error: KafkaCode, message: String) -> CreateOutcome {
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
    if let Some(existing) = colliding_topic(table, &name) {
        let message = format!(
            "Topic '{name}' collides with existing topic: {existing} ('.' and '_' are \
             interchangeable in metric names, so Kafka refuses such pairs)"
        );
        return Err(failed(name, KafkaCode::INVALID_TOPIC_EXCEPTION, message));
    }
    let mut num_partitions = spec.num_partitions;
    let mut replication_factor = spec.replication_factor;
    let live = table.live_brokers();
    let assignments: Vec<Vec<NodeId>> = if !spec.assignments.is_empty() {
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
        let lists: Vec<Vec<NodeId>> = spec.assignments.iter().map(|(_, b)| b.clone()).collect();
        let known = |b: NodeId| table.brokers.contains_key(&b);
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

/// Kafka refuses a topic whose name differs from an existing one only by
/// '.' versus '_' (both map to the same metric names). Returns the
/// existing topic it collides with.
pub fn colliding_topic<'a>(table: &'a TopicTable, name: &str) -> Option<&'a str> {
    let norm = |s: &str| s.replace('.', "_");
    let wanted = norm(name);
    table
        .topics
        .keys()
        .find(|existing| existing.as_str() != name && norm(existing) == wanted)
        .map(String::as_str)
}

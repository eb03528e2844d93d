//! Changes to the topic table other than creating and deleting topics:
//! config changes (AlterConfigs, IncrementalAlterConfigs) and partition
//! growth (CreatePartitions).
//!
//! Pure functions over a [`TopicTable`]: shard 0 (the table's single writer)
//! applies each resource of a request to a copy of the table, then persists
//! and installs the copy once (see `Shard::alter_table`). A resource that
//! fails leaves the copy untouched; the others still apply, as in Kafka.

use crate::errors::KafkaCode;
use crate::ids::NodeId;
use crate::messages::{AdminOutcome, ConfigAlteration, ConfigOp, ConfigResource, PartitionGrowth};
use crate::metadata::layers_of;
use crate::metadata::TopicTable;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use strom_tuning::catalog::{check_dynamic_keys, is_list_broker_key, is_list_topic_key};
use strom_tuning::config::{is_known_topic_key, BrokerConfig, ConfigError, TopicConfig};
use strom_tuning::limits::PARTITIONS_PER_TOPIC_MAX;

/// A config error as one line for a Kafka error message.
pub fn one_line(err: &ConfigError) -> String {
    match err {
        ConfigError::Invalid(problems) => problems.join("; "),
        other => other.to_string(),
    }
}

/// Applies one resource's changes to `table` (static broker config in
/// `broker`). On error the table is unchanged.
pub fn alter_configs(
    broker: &BrokerConfig,
    table: &mut TopicTable,
    alteration: &ConfigAlteration,
) -> AdminOutcome {
    let mut seen = HashSet::new();
    if let Some(op) = alteration.ops.iter().find(|op| !seen.insert(op.key())) {
        return AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!("Error due to duplicate config keys: {}", op.key()),
        );
    }
    match &alteration.resource {
        ConfigResource::Topic(name) => alter_topic(broker, table, name, alteration),
        ConfigResource::Broker(name) => alter_broker(broker, table, name, alteration),
    }
}

fn alter_topic(
    broker: &BrokerConfig,
    table: &mut TopicTable,
    name: &str,
    alteration: &ConfigAlteration,
) -> AdminOutcome {
    let Some(meta) = table.topics.get(name).cloned() else {
        return AdminOutcome::failed(
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic '{name}' does not exist."),
        );
    };
    if let Some(op) = alteration
        .ops
        .iter()
        .find(|op| !is_known_topic_key(op.key()))
    {
        return AdminOutcome::failed(
            KafkaCode::INVALID_CONFIG,
            format!("Unknown topic config name: {}", op.key()),
        );
    }
    let effective = match layers_of(broker, table).effective() {
        Ok(effective) => effective,
        Err(err) => return AdminOutcome::failed(KafkaCode::INVALID_CONFIG, one_line(&err)),
    };
    let defaults = TopicConfig::defaults_from(&effective).describe();
    let start = if alteration.replace {
        BTreeMap::new()
    } else {
        meta.configs.clone()
    };
    let next = match apply_ops(&start, &alteration.ops, is_list_topic_key, |key| {
        defaults.get(key).cloned()
    }) {
        Ok(next) => next,
        Err(outcome) => return outcome,
    };
    let normalized = match TopicConfig::from_overrides(&effective, &next) {
        Ok(config) => config.overrides().clone(),
        Err(err) => return AdminOutcome::failed(KafkaCode::INVALID_CONFIG, one_line(&err)),
    };
    if normalized != meta.configs {
        let mut updated = (*meta).clone();
        updated.configs = normalized;
        table.topics.insert(name.to_string(), Arc::new(updated));
    }
    AdminOutcome::OK
}

fn alter_broker(
    broker: &BrokerConfig,
    table: &mut TopicTable,
    name: &str,
    alteration: &ConfigAlteration,
) -> AdminOutcome {
    let node = match broker_resource(broker, name) {
        Ok(node) => node,
        Err(outcome) => return outcome,
    };
    let layers = layers_of(broker, table);
    let current = match node {
        None => layers.cluster_default.clone(),
        Some(_) => layers.node.clone(),
    };
    let start = if alteration.replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    let effective = layers.effective().unwrap_or_else(|_| broker.clone());
    let next = match apply_ops(&start, &alteration.ops, is_list_broker_key, |key| {
        effective.value_of(key)
    }) {
        Ok(next) => next,
        Err(outcome) => return outcome,
    };
    if let Err(err) = check_dynamic_keys(next.keys()) {
        return AdminOutcome::failed(KafkaCode::INVALID_CONFIG, one_line(&err));
    }
    let mut candidate = layers;
    match node {
        None => candidate.cluster_default = next.clone(),
        Some(_) => candidate.node = next.clone(),
    }
    let checked = match candidate.effective() {
        Ok(checked) => checked,
        Err(err) => return AdminOutcome::failed(KafkaCode::INVALID_CONFIG, one_line(&err)),
    };
    // Stored normalized, as the effective configuration shows them.
    let next: BTreeMap<String, String> = next
        .into_keys()
        .map(|key| {
            let value = checked.value_of(&key).unwrap_or_default();
            (key, value)
        })
        .collect();
    match node {
        None => table.broker_defaults = next,
        Some(id) if next.is_empty() => {
            table.node_configs.remove(&id);
        }
        Some(id) => {
            table.node_configs.insert(id, next);
        }
    }
    AdminOutcome::OK
}

/// The node a BROKER resource names: `None` for the cluster default (`""`),
/// this node's id, or an error for anything else.
pub fn broker_resource(broker: &BrokerConfig, name: &str) -> Result<Option<i32>, AdminOutcome> {
    if name.is_empty() {
        return Ok(None);
    }
    match name.parse::<i32>() {
        Ok(id) if id == broker.node_id => Ok(Some(id)),
        Ok(id) => Err(AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {id}",
                broker.node_id
            ),
        )),
        Err(_) => Err(AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!("Broker id must be an integer or the empty string, got '{name}'"),
        )),
    }
}

/// The overrides after `ops`. `current(key)`: the value in force when the
/// map has none (for APPEND / SUBTRACT).
fn apply_ops(
    start: &BTreeMap<String, String>,
    ops: &[ConfigOp],
    is_list: fn(&str) -> bool,
    current: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, AdminOutcome> {
    let mut next = start.clone();
    for op in ops {
        match op {
            ConfigOp::Set(key, Some(value)) => {
                next.insert(key.clone(), value.clone());
            }
            ConfigOp::Set(key, None)
            | ConfigOp::Append(key, None)
            | ConfigOp::Subtract(key, None) => {
                return Err(AdminOutcome::failed(
                    KafkaCode::INVALID_CONFIG,
                    format!(
                        "{key}: a null value is not allowed (use DELETE to remove an override)"
                    ),
                ))
            }
            ConfigOp::Delete(key) => {
                next.remove(key);
            }
            ConfigOp::Append(key, Some(items)) | ConfigOp::Subtract(key, Some(items)) => {
                if !is_list(key) {
                    let verb = if matches!(op, ConfigOp::Append(..)) {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    return Err(AdminOutcome::failed(
                        KafkaCode::INVALID_CONFIG,
                        format!(
                            "{key}: {verb} is allowed only on list configs, and {key} is not one"
                        ),
                    ));
                }
                let base = next
                    .get(key)
                    .cloned()
                    .or_else(|| current(key))
                    .unwrap_or_default();
                let mut list = split_list(&base);
                let given = split_list(items);
                if matches!(op, ConfigOp::Append(..)) {
                    for item in given {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                } else {
                    list.retain(|item| !given.contains(item));
                }
                next.insert(key.clone(), list.join(","));
            }
        }
    }
    Ok(next)
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Grows one topic (CreatePartitions) in `table`: new partitions get the
/// replication factor of partition 0, placed over the live brokers, unless
/// the request assigns them. On error the table is unchanged.
pub fn grow_partitions(
    table: &mut TopicTable,
    growth: &PartitionGrowth,
    duplicate_in_request: bool,
) -> AdminOutcome {
    let name = &growth.topic;
    if duplicate_in_request {
        return AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!("Duplicate topic in request: {name}"),
        );
    }
    let Some(meta) = table.topics.get(name).cloned() else {
        return AdminOutcome::failed(
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic '{name}' does not exist."),
        );
    };
    if name == crate::metadata::OFFSETS_TOPIC || name == crate::metadata::TXN_TOPIC {
        return AdminOutcome::failed(
            KafkaCode::INVALID_REQUEST,
            format!(
                "Cannot add partitions to the internal topic {name}: groups and transactional \
                 ids are mapped to its partitions by their count \
                 (offsets.topic.num.partitions, transaction.state.log.num.partitions)"
            ),
        );
    }
    let current = meta.partitions;
    if growth.count < current {
        return AdminOutcome::failed(
            KafkaCode::INVALID_PARTITIONS,
            format!(
                "Topic currently has {current} partitions, which is higher than the requested {}.",
                growth.count
            ),
        );
    }
    if growth.count == current {
        return AdminOutcome::failed(
            KafkaCode::INVALID_PARTITIONS,
            format!("Topic already has {current} partitions."),
        );
    }
    if growth.count as usize > PARTITIONS_PER_TOPIC_MAX {
        return AdminOutcome::failed(
            KafkaCode::INVALID_PARTITIONS,
            format!(
                "Number of partitions must be at most {PARTITIONS_PER_TOPIC_MAX}, got {}.",
                growth.count
            ),
        );
    }
    let added = growth.count - current;
    let lists = if let Some(assignments) = &growth.assignments {
        if assignments.len() != added as usize {
            return AdminOutcome::failed(
                KafkaCode::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    assignments.len()
                ),
            );
        }
        let known = |b: NodeId| table.brokers.contains_key(&b);
        if let Err((code, message)) =
            crate::cluster::placement::check_assignment(assignments, &known)
        {
            return AdminOutcome::failed(code, message);
        }
        assignments.clone()
    } else {
        let live = table.live_brokers();
        let rf = meta
            .assignments
            .first()
            .map_or(1, |a| a.replicas.len() as i16);
        let start = crate::cluster::placement::rotation_start(
            &live,
            meta.assignments
                .first()
                .and_then(|a| a.replicas.first().copied()),
        );
        match crate::cluster::placement::place(&live, current, added, rf, start) {
            Ok(lists) => lists,
            Err((code, message)) => return AdminOutcome::failed(code, message),
        }
    };
    let extra = i64::from(added);
    if let Err(message) = crate::cluster::topics::check_open_files(table, extra) {
        return AdminOutcome::failed(KafkaCode::INVALID_PARTITIONS, message);
    }
    let mut updated = (*meta).clone();
    updated.partitions = growth.count;
    updated
        .assignments
        .extend(lists.into_iter().map(crate::metadata::PartitionState::new));
    table.topics.insert(name.clone(), Arc::new(updated));
    AdminOutcome::OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topics::colliding_topic;
    use uuid::Uuid;

    fn table_with(name: &str, partitions: i32) -> TopicTable {
        let mut table = TopicTable::default();
        table.topics.insert(
            name.into(),
            Arc::new(crate::metadata::TopicMeta {
                name: name.into(),
                id: Uuid::new_v4(),
                partitions,
                configs: BTreeMap::new(),
                assignments: vec![
                    crate::metadata::PartitionState::new(vec![NodeId(1)]);
                    partitions as usize
                ],
            }),
        );
        table.brokers.insert(
            NodeId(1),
            crate::metadata::BrokerMeta {
                id: NodeId(1),
                epoch: 1,
                incarnation: String::new(),
                host: "127.0.0.1".into(),
                port: 9092,
                rack: None,
                fenced: false,
                shutting_down: false,
            },
        );
        table
    }

    fn alter(resource: ConfigResource, ops: Vec<ConfigOp>) -> ConfigAlteration {
        ConfigAlteration {
            resource,
            replace: false,
            ops,
        }
    }

    fn set(k: &str, v: &str) -> ConfigOp {
        ConfigOp::Set(k.into(), Some(v.into()))
    }

    #[test]
    fn incremental_ops_on_a_topic() {
        let broker = BrokerConfig::default();
        let mut table = table_with("t", 1);
        let topic = || ConfigResource::Topic("t".into());
        let ok = alter_configs(
            &broker,
            &mut table,
            &alter(topic(), vec![set("retention.ms", " 1000 ")]),
        );
        assert_eq!(ok, AdminOutcome::OK);
        assert_eq!(table.topics["t"].configs["retention.ms"], "1000");

        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                topic(),
                vec![ConfigOp::Append(
                    "cleanup.policy".into(),
                    Some("compact".into()),
                )],
            ),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert_eq!(
            table.topics["t"].configs["cleanup.policy"],
            "delete,compact"
        );
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                topic(),
                vec![ConfigOp::Subtract(
                    "cleanup.policy".into(),
                    Some("delete".into()),
                )],
            ),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert_eq!(table.topics["t"].configs["cleanup.policy"], "compact");

        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                topic(),
                vec![ConfigOp::Append("retention.ms".into(), Some("5".into()))],
            ),
        );
        assert_eq!(out.error, KafkaCode::INVALID_CONFIG);
        assert!(out.message.unwrap().contains("retention.ms"));

        let out = alter_configs(
            &broker,
            &mut table,
            &alter(topic(), vec![set("segment.bytes", "abc")]),
        );
        assert_eq!(out.error, KafkaCode::INVALID_CONFIG);
        assert!(out.message.unwrap().starts_with("segment.bytes:"));
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(topic(), vec![set("no.such.key", "1")]),
        );
        assert_eq!(out.error, KafkaCode::INVALID_CONFIG);
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                topic(),
                vec![
                    set("retention.ms", "1"),
                    ConfigOp::Delete("retention.ms".into()),
                ],
            ),
        );
        assert_eq!(out.error, KafkaCode::INVALID_REQUEST);

        let out = alter_configs(
            &broker,
            &mut table,
            &alter(topic(), vec![ConfigOp::Delete("retention.ms".into())]),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert!(!table.topics["t"].configs.contains_key("retention.ms"));
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(ConfigResource::Topic("nope".into()), vec![]),
        );
        assert_eq!(out.error, KafkaCode::UNKNOWN_TOPIC_OR_PARTITION);
    }

    #[test]
    fn legacy_alter_replaces_every_override() {
        let broker = BrokerConfig::default();
        let mut table = table_with("t", 1);
        let topic = ConfigResource::Topic("t".into());
        alter_configs(
            &broker,
            &mut table,
            &alter(topic.clone(), vec![set("retention.ms", "1000")]),
        );
        let replace = ConfigAlteration {
            resource: topic,
            replace: true,
            ops: vec![set("segment.ms", "5000")],
        };
        assert_eq!(
            alter_configs(&broker, &mut table, &replace),
            AdminOutcome::OK
        );
        assert_eq!(
            table.topics["t"].configs,
            BTreeMap::from([("segment.ms".to_string(), "5000".to_string())])
        );
    }

    #[test]
    fn broker_resources() {
        let broker = BrokerConfig::default();
        let mut table = TopicTable::default();
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                ConfigResource::Broker(String::new()),
                vec![set("log.retention.ms", "1000")],
            ),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert_eq!(table.broker_defaults["log.retention.ms"], "1000");
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                ConfigResource::Broker("1".into()),
                vec![set("message.max.bytes", "2000")],
            ),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert_eq!(table.node_configs[&1]["message.max.bytes"], "2000");
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(ConfigResource::Broker("2".into()), vec![]),
        );
        assert_eq!(out.error, KafkaCode::INVALID_REQUEST);
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                ConfigResource::Broker(String::new()),
                vec![set("log.dirs", "/x")],
            ),
        );
        assert_eq!(out.error, KafkaCode::INVALID_CONFIG);
        assert!(out.message.unwrap().contains("log.dirs"));
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                ConfigResource::Broker(String::new()),
                vec![set("log.retention.ms", "x")],
            ),
        );
        assert_eq!(out.error, KafkaCode::INVALID_CONFIG);
        assert_eq!(table.broker_defaults["log.retention.ms"], "1000");
        let out = alter_configs(
            &broker,
            &mut table,
            &alter(
                ConfigResource::Broker("1".into()),
                vec![ConfigOp::Delete("message.max.bytes".into())],
            ),
        );
        assert_eq!(out, AdminOutcome::OK);
        assert!(table.node_configs.is_empty());
    }

    #[test]
    fn partitions_only_grow() {
        let mut table = table_with("t", 3);
        let grow = |count, assignments| PartitionGrowth {
            topic: "t".into(),
            count,
            assignments,
        };
        assert_eq!(
            grow_partitions(&mut table, &grow(2, None), false).error,
            KafkaCode::INVALID_PARTITIONS
        );
        assert_eq!(
            grow_partitions(&mut table, &grow(3, None), false).error,
            KafkaCode::INVALID_PARTITIONS
        );
        assert_eq!(
            grow_partitions(&mut table, &grow(5, Some(vec![vec![NodeId(1)]])), false).error,
            KafkaCode::INVALID_REPLICA_ASSIGNMENT
        );
        assert_eq!(
            grow_partitions(
                &mut table,
                &grow(5, Some(vec![vec![NodeId(1)], vec![NodeId(2)]])),
                false
            )
            .error,
            KafkaCode::INVALID_REPLICA_ASSIGNMENT
        );
        assert_eq!(table.topics["t"].partitions, 3);
        assert_eq!(
            grow_partitions(&mut table, &grow(5, None), false),
            AdminOutcome::OK
        );
        assert_eq!(table.topics["t"].partitions, 5);
        assert_eq!(table.topics["t"].assignments.len(), 5);
        assert_eq!(table.topics["t"].assignments[4].replicas, vec![1]);
        let missing = PartitionGrowth {
            topic: "x".into(),
            count: 2,
            assignments: None,
        };
        assert_eq!(
            grow_partitions(&mut table, &missing, false).error,
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
        );
    }

    #[test]
    fn dot_and_underscore_collide() {
        let table = table_with("a.b", 1);
        assert_eq!(colliding_topic(&table, "a_b"), Some("a.b"));
        assert_eq!(colliding_topic(&table, "a.b"), None);
        assert_eq!(colliding_topic(&table, "ab"), None);
    }
}

//! Metadata records: FlatBuffers encoding (schema `engine/schema/metadata.fbs`,
//! code in `metadata_generated.rs`), how a record changes the image
//! ([`apply`]), the records that turn one image into another ([`diff`]), and
//! snapshots (the image written as records).
//!
//! Pure functions: the quorum driver on shard 0 applies committed entries with
//! them; the active controller plans changes on a copy of the image with the
//! admin functions (`topics::plan_topic`, `admin::*`) and
//! proposes `diff(old, new)`.

use super::metadata_generated::strom::metadata as fb;
use crate::ids::{LeaderEpoch, NodeId};
use crate::metadata::{BrokerMeta, PartitionState, TopicMeta, TopicTable};
use planus::ReadAsRoot;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

pub use fb::Payload;

/// Why bytes are not a valid record batch or snapshot.
#[derive(Debug, thiserror::Error)]
#[error("invalid metadata {what}: {reason}")]
pub struct DecodeError {
    what: &'static str,
    reason: String,
}

fn uuid_to_fb(id: Uuid) -> fb::Uuid {
    let bits = id.as_u128();
    fb::Uuid {
        high: (bits >> 64) as u64,
        low: bits as u64,
    }
}

fn uuid_from_fb(id: &fb::Uuid) -> Uuid {
    Uuid::from_u128((u128::from(id.high) << 64) | u128::from(id.low))
}

fn key_values(map: &BTreeMap<String, String>) -> Vec<fb::KeyValue> {
    map.iter()
        .map(|(key, value)| fb::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

fn map_of(list: &[fb::KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

/// The data of one raft entry: records applied together.
pub fn encode_batch(records: &[Payload]) -> Vec<u8> {
    let batch = fb::RecordBatch {
        records: records
            .iter()
            .map(|payload| fb::Record {
                payload: payload.clone(),
            })
            .collect(),
    };
    planus::Builder::new().finish(&batch, None).to_vec()
}

/// Reads one raft entry's records (every offset is checked by planus).
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Payload>, DecodeError> {
    let invalid = |e: planus::Error| DecodeError {
        what: "record batch",
        reason: e.to_string(),
    };
    let batch: fb::RecordBatch = fb::RecordBatchRef::read_as_root(bytes)
        .and_then(fb::RecordBatch::try_from)
        .map_err(invalid)?;
    Ok(batch.records.into_iter().map(|r| r.payload).collect())
}

/// The image as one snapshot document (`Snapshot` table).
pub fn encode_snapshot(table: &TopicTable, last_index: u64, last_term: u64) -> Vec<u8> {
    let snapshot = fb::Snapshot {
        last_index,
        last_term,
        records: image_records(table)
            .into_iter()
            .map(|payload| fb::Record { payload })
            .collect(),
    };
    planus::Builder::new().finish(&snapshot, None).to_vec()
}

/// Rebuilds an image from a snapshot document.
pub fn decode_snapshot(bytes: &[u8]) -> Result<TopicTable, DecodeError> {
    let snapshot: fb::Snapshot = fb::SnapshotRef::read_as_root(bytes)
        .and_then(fb::Snapshot::try_from)
        .map_err(|e| DecodeError {
            what: "snapshot",
            reason: e.to_string(),
        })?;
    let mut table = TopicTable::default();
    for record in &snapshot.records {
        apply(&mut table, &record.payload);
    }
    table.metadata_offset = snapshot.last_index;
    Ok(table)
}

/// Every record needed to rebuild `table` from nothing.
pub fn image_records(table: &TopicTable) -> Vec<Payload> {
    diff(&TopicTable::default(), table)
}

/// The registration record of a broker (it applies as fenced).
pub fn registration(broker: &BrokerMeta) -> Payload {
    Payload::BrokerRegistration(Box::new(fb::BrokerRegistration {
        broker_id: broker.id.0,
        epoch: broker.epoch,
        incarnation: broker.incarnation.clone(),
        endpoints: vec![fb::Endpoint {
            name: "PLAINTEXT".to_string(),
            host: broker.host.clone(),
            port: broker.port,
        }],
        rack: broker.rack.clone(),
    }))
}

/// The state record of a broker (fenced, shutting down).
pub fn broker_state(broker: &BrokerMeta) -> Payload {
    Payload::BrokerState(Box::new(fb::BrokerState {
        broker_id: broker.id.0,
        epoch: broker.epoch,
        fenced: broker.fenced,
        shutting_down: broker.shutting_down,
    }))
}

/// Broker ids as the records hold them.
fn ids(nodes: &[NodeId]) -> Vec<i32> {
    nodes.iter().map(|n| n.0).collect()
}

/// The record of one partition's state.
pub fn partition_record(topic_id: Uuid, partition: i32, state: &PartitionState) -> Payload {
    Payload::Partition(Box::new(fb::Partition {
        topic_id: uuid_to_fb(topic_id),
        partition,
        replicas: ids(&state.replicas),
        isr: ids(&state.isr),
        leader: state.leader.0,
        leader_epoch: state.leader_epoch.0,
        partition_epoch: state.partition_epoch,
    }))
}

/// The records that turn `old` into `new`: the cluster id, brokers (a
/// broker is never removed), topics, partitions and dynamic broker configs.
pub fn diff(old: &TopicTable, new: &TopicTable) -> Vec<Payload> {
    let mut out = Vec::new();
    if old.cluster_id != new.cluster_id {
        out.push(Payload::ClusterId(Box::new(fb::ClusterId {
            id: new.cluster_id.clone(),
        })));
    }
    for (id, broker) in &new.brokers {
        let same_registration = old.brokers.get(id).filter(|o| {
            o.epoch == broker.epoch
                && o.incarnation == broker.incarnation
                && o.host == broker.host
                && o.port == broker.port
                && o.rack == broker.rack
        });
        match same_registration {
            Some(o) => {
                if o.fenced != broker.fenced || o.shutting_down != broker.shutting_down {
                    out.push(broker_state(broker));
                }
            }
            None => {
                out.push(registration(broker));
                // A registration applies as fenced and not shutting down.
                if !broker.fenced || broker.shutting_down {
                    out.push(broker_state(broker));
                }
            }
        }
    }
    for (name, topic) in &old.topics {
        if new.topics.get(name).is_none_or(|t| t.id != topic.id) {
            out.push(Payload::RemoveTopic(Box::new(fb::RemoveTopic {
                id: uuid_to_fb(topic.id),
            })));
        }
    }
    for (name, topic) in &new.topics {
        let before = old.topics.get(name).filter(|t| t.id == topic.id);
        if before.is_none_or(|b| b.configs != topic.configs) {
            out.push(Payload::Topic(Box::new(fb::Topic {
                name: topic.name.clone(),
                id: uuid_to_fb(topic.id),
                configs: key_values(&topic.configs),
            })));
        }
        for (p, state) in topic.assignments.iter().enumerate() {
            let unchanged = before
                .and_then(|b| b.assignments.get(p))
                .is_some_and(|s| s == state);
            if !unchanged {
                out.push(partition_record(topic.id, p as i32, state));
            }
        }
    }
    if old.next_producer_id != new.next_producer_id {
        out.push(Payload::ProducerIds(Box::new(fb::ProducerIds {
            next_producer_id: new.next_producer_id,
        })));
    }
    if old.broker_defaults != new.broker_defaults {
        out.push(Payload::BrokerConfigs(Box::new(fb::BrokerConfigs {
            node: -1,
            configs: key_values(&new.broker_defaults),
        })));
    }
    let nodes: std::collections::BTreeSet<i32> = old
        .node_configs
        .keys()
        .chain(new.node_configs.keys())
        .copied()
        .collect();
    for node in nodes {
        let before = old.node_configs.get(&node);
        let after = new.node_configs.get(&node);
        if before != after {
            out.push(Payload::BrokerConfigs(Box::new(fb::BrokerConfigs {
                node,
                configs: after.map(key_values).unwrap_or_default(),
            })));
        }
    }
    out
}

/// Applies one record to the image. Records carry whole states, so applying
/// one twice changes nothing. A record naming something that does not exist
/// (a partition of a deleted topic, the state of an unknown broker) is
/// ignored: it was overtaken by a later change in the same log.
pub fn apply(table: &mut TopicTable, payload: &Payload) {
    match payload {
        Payload::ClusterId(c) => table.cluster_id = c.id.clone(),
        Payload::BrokerRegistration(r) => {
            let endpoint = r.endpoints.iter().find(|e| e.name == "PLAINTEXT");
            table.brokers.insert(
                NodeId(r.broker_id),
                BrokerMeta {
                    id: NodeId(r.broker_id),
                    epoch: r.epoch,
                    incarnation: r.incarnation.clone(),
                    host: endpoint.map(|e| e.host.clone()).unwrap_or_default(),
                    port: endpoint.map_or(0, |e| e.port),
                    rack: r.rack.clone(),
                    fenced: true,
                    shutting_down: false,
                },
            );
        }
        Payload::BrokerState(s) => {
            if let Some(broker) = table.brokers.get_mut(&NodeId(s.broker_id)) {
                if broker.epoch == s.epoch {
                    broker.fenced = s.fenced;
                    broker.shutting_down = s.shutting_down;
                }
            }
        }
        Payload::Topic(t) => {
            let id = uuid_from_fb(&t.id);
            let configs = map_of(&t.configs);
            match table.topics.get_mut(&t.name) {
                Some(existing) if existing.id == id => Arc::make_mut(existing).configs = configs,
                _ => {
                    table.topics.insert(
                        t.name.clone(),
                        Arc::new(TopicMeta {
                            name: t.name.clone(),
                            id,
                            partitions: 0,
                            configs,
                            assignments: Vec::new(),
                        }),
                    );
                }
            }
        }
        Payload::RemoveTopic(r) => {
            let id = uuid_from_fb(&r.id);
            table.topics.retain(|_, t| t.id != id);
        }
        Payload::Partition(p) => {
            let id = uuid_from_fb(&p.topic_id);
            let Some(topic) = table.topics.values_mut().find(|t| t.id == id) else {
                return;
            };
            let Ok(index) = usize::try_from(p.partition) else {
                return;
            };
            let topic = Arc::make_mut(topic);
            let state = PartitionState {
                replicas: p.replicas.iter().copied().map(NodeId).collect(),
                isr: p.isr.iter().copied().map(NodeId).collect(),
                leader: NodeId(p.leader),
                leader_epoch: LeaderEpoch(p.leader_epoch),
                partition_epoch: p.partition_epoch,
            };
            if index < topic.assignments.len() {
                topic.assignments[index] = state;
            } else if index == topic.assignments.len() {
                topic.assignments.push(state);
            } else {
                // Partitions are created in order; a gap means a damaged log.
                tracing::error!(topic = %topic.name, partition = p.partition, "metadata: partition record skips partitions; ignored");
                return;
            }
            topic.partitions = topic.assignments.len() as i32;
        }
        Payload::ProducerIds(p) => {
            table.next_producer_id = table.next_producer_id.max(p.next_producer_id);
        }
        Payload::BrokerConfigs(c) => {
            let configs = map_of(&c.configs);
            if c.node < 0 {
                table.broker_defaults = configs;
            } else if configs.is_empty() {
                table.node_configs.remove(&c.node);
            } else {
                table.node_configs.insert(c.node, configs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32) -> BrokerMeta {
        BrokerMeta {
            id: NodeId(id),
            epoch: 10 + i64::from(id),
            incarnation: format!("inc-{id}"),
            host: format!("127.0.0.{id}"),
            port: 9092,
            rack: None,
            fenced: false,
            shutting_down: false,
        }
    }

    fn sample() -> TopicTable {
        let mut table = TopicTable {
            cluster_id: "abcdefghijklmnopqrstuv".into(),
            ..TopicTable::default()
        };
        for id in 1..=3 {
            table.brokers.insert(NodeId(id), broker(id));
        }
        table.brokers.get_mut(&NodeId(3)).unwrap().fenced = true;
        table.topics.insert(
            "orders".into(),
            Arc::new(TopicMeta {
                name: "orders".into(),
                id: Uuid::new_v4(),
                partitions: 2,
                configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
                assignments: vec![
                    PartitionState::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
                    PartitionState {
                        replicas: vec![NodeId(2), NodeId(3), NodeId(1)],
                        isr: vec![NodeId(2), NodeId(1)],
                        leader: NodeId(2),
                        leader_epoch: LeaderEpoch(4),
                        partition_epoch: 7,
                    },
                ],
            }),
        );
        table
            .broker_defaults
            .insert("log.retention.ms".into(), "5".into());
        table.node_configs.insert(
            2,
            BTreeMap::from([("message.max.bytes".into(), "9".into())]),
        );
        table
    }

    fn records_len(a: &TopicTable, b: &TopicTable) -> usize {
        diff(a, b).len()
    }

    fn same_image(a: &TopicTable, b: &TopicTable) {
        assert_eq!(a.cluster_id, b.cluster_id);
        assert_eq!(a.brokers, b.brokers);
        assert_eq!(a.topics, b.topics);
        assert_eq!(a.broker_defaults, b.broker_defaults);
        assert_eq!(a.node_configs, b.node_configs);
        assert_eq!(a.next_producer_id, b.next_producer_id);
    }

    #[test]
    fn a_snapshot_rebuilds_the_image() {
        let table = sample();
        let bytes = encode_snapshot(&table, 42, 3);
        let back = decode_snapshot(&bytes).unwrap();
        same_image(&table, &back);
        assert_eq!(back.metadata_offset, 42);
    }

    #[test]
    fn records_of_a_diff_turn_the_old_image_into_the_new_one() {
        let old = sample();
        let mut new = old.clone();
        {
            let orders = Arc::make_mut(new.topics.get_mut("orders").unwrap());
            orders.configs.insert("segment.bytes".into(), "100".into());
            orders.assignments[1].isr = vec![NodeId(2), NodeId(3), NodeId(1)];
            orders.assignments[1].partition_epoch += 1;
            orders
                .assignments
                .push(PartitionState::new(vec![NodeId(3), NodeId(1), NodeId(2)]));
            orders.partitions = 3;
        }
        new.topics.insert(
            "new".into(),
            Arc::new(TopicMeta {
                name: "new".into(),
                id: Uuid::new_v4(),
                partitions: 1,
                configs: BTreeMap::new(),
                assignments: vec![PartitionState::new(vec![NodeId(1)])],
            }),
        );
        new.broker_defaults.clear();
        new.node_configs.remove(&2);
        new.node_configs.insert(
            1,
            BTreeMap::from([("compression.type".into(), "zstd".into())]),
        );
        new.brokers.get_mut(&NodeId(3)).unwrap().fenced = false;
        // Only what changed: broker 3's state, the orders config, partitions
        // 1 and 2, the new topic and its partition, and three config scopes.
        assert_eq!(records_len(&old, &new), 1 + 1 + 2 + 2 + 3);
        let records = diff(&old, &new);
        let decoded = decode_batch(&encode_batch(&records)).unwrap();
        assert_eq!(decoded, records);
        let mut replayed = old.clone();
        for r in &decoded {
            apply(&mut replayed, r);
        }
        same_image(&replayed, &new);
        // Applying again changes nothing.
        for r in &decoded {
            apply(&mut replayed, r);
        }
        same_image(&replayed, &new);
        assert!(diff(&new, &replayed).is_empty());

        // Deleting a topic removes it and its partitions.
        let mut gone = new.clone();
        gone.topics.remove("orders");
        let mut replayed = new.clone();
        for r in &diff(&new, &gone) {
            apply(&mut replayed, r);
        }
        same_image(&replayed, &gone);
    }

    #[test]
    fn broker_records_register_fenced_and_stale_states_are_ignored() {
        let mut table = TopicTable::default();
        let mut b = broker(1);
        apply(&mut table, &registration(&b));
        assert!(
            table.brokers[&NodeId(1)].fenced,
            "a registration starts fenced"
        );
        apply(&mut table, &broker_state(&b));
        assert!(!table.brokers[&NodeId(1)].fenced);
        // A state record from an older registration does not apply.
        let old_epoch = b.epoch;
        b.epoch += 5;
        apply(&mut table, &registration(&b));
        let stale = Payload::BrokerState(Box::new(fb::BrokerState {
            broker_id: 1,
            epoch: old_epoch,
            fenced: false,
            shutting_down: false,
        }));
        apply(&mut table, &stale);
        assert!(table.brokers[&NodeId(1)].fenced);
    }

    #[test]
    fn garbage_is_refused_not_applied() {
        assert!(decode_batch(b"not a flatbuffer").is_err());
        assert!(decode_batch(&[]).is_err());
        assert!(decode_snapshot(&[0xff; 40]).is_err());
    }
}

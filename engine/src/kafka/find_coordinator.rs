//! FindCoordinator: which broker coordinates a consumer group (key type 0:
//! the leader of its `__consumer_offsets` partition) or a transactional id
//! (key type 1: the leader of its `__transaction_state` partition).
//!
//! The first lookup creates the internal topic; the group APIs are in
//! `groups.rs`, the transaction APIs in `txn.rs`. (Serving FindCoordinator also makes librdkafka enable LZ4, which
//! it gates on FindCoordinator v0.)

use crate::errors::KafkaCode;
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;
use strom_net::response::str_bytes;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The answer for one key: the coordinator, or an error and its message.
fn answer(
    shard: &Shard,
    key: &str,
    key_type: i8,
) -> Result<(i32, String, i32), (KafkaCode, String)> {
    match key_type {
        KEY_TYPE_GROUP if key.is_empty() => Err((
            KafkaCode::INVALID_REQUEST,
            "The group id must not be empty".into(),
        )),
        KEY_TYPE_TRANSACTION if key.is_empty() => Err((
            KafkaCode::INVALID_REQUEST,
            "The transactional id must not be empty".into(),
        )),
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {
            // The leader of the key's partition of the internal topic.
            let table = shard.table();
            let name = if key_type == KEY_TYPE_GROUP {
                crate::group::OFFSETS_TOPIC
            } else {
                crate::txn::TXN_TOPIC
            };
            let topic = table.topics.get(name).ok_or((
                KafkaCode::COORDINATOR_NOT_AVAILABLE,
                "The coordinator is not available".to_string(),
            ))?;
            let p = crate::group::offsets_partition(key, topic.partitions);
            let leader = topic
                .partition(p)
                .map_or(crate::metadata::NO_LEADER, |s| s.leader);
            let broker = table.brokers.get(&leader).filter(|b| !b.fenced);
            match broker {
                Some(b) => Ok((b.id.0, b.host.clone(), i32::from(b.port))),
                None if leader == shard.node_id() => {
                    let (host, port) = shard.broker.advertised();
                    Ok((leader.0, host, i32::from(port)))
                }
                None => Err((
                    KafkaCode::COORDINATOR_NOT_AVAILABLE,
                    "The coordinator is not available".to_string(),
                )),
            }
        }
        other => Err((
            KafkaCode::INVALID_REQUEST,
            format!("Unknown coordinator key type {other}"),
        )),
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    // Created on first use, like Kafka, so the coordinator is ready when
    // the client comes to it.
    let created = match request.key_type {
        KEY_TYPE_GROUP => Some(crate::group::service::ensure_offsets_topic(shard).await),
        KEY_TYPE_TRANSACTION => Some(
            crate::group::service::ensure_internal_topic(
                shard,
                crate::txn::TXN_TOPIC,
                shard.broker.transaction_state_log_num_partitions,
            )
            .await,
        ),
        _ => None,
    };
    if let Some(Err(code)) = created {
        tracing::warn!("cannot create the coordinator's internal topic ({code:?})");
    }
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                match answer(shard, key, request.key_type) {
                    Ok((node, host, port)) => {
                        c.node_id = BrokerId(node);
                        c.host = str_bytes(&host);
                        c.port = port;
                    }
                    Err((code, message)) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = code.0;
                        c.error_message = Some(str_bytes(&message));
                    }
                }
                c
            })
            .collect();
        return response;
    }
    match answer(shard, &request.key, request.key_type) {
        Ok((node, host, port)) => {
            response.node_id = BrokerId(node);
            response.host = str_bytes(&host);
            response.port = port;
        }
        Err((code, message)) => {
            response.error_code = code.0;
            response.node_id = BrokerId(-1);
            response.host = StrBytes::default();
            response.port = -1;
            if version >= 1 {
                response.error_message = Some(str_bytes(&message));
            }
        }
    }
    response
}

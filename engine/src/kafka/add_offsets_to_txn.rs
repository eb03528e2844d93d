//! AddOffsetsToTxn: a transactional producer's group offsets join its
//! transaction (the group's `__consumer_offsets` partition becomes one of its
//! partitions).

use super::fenced_for;
use crate::errors::KafkaCode;
use crate::group::OFFSETS_TOPIC;
use crate::shard::Shard;
use crate::txn::service::{call_coordinator as call, code_of, TxnCall};
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    if id.is_empty() || group.is_empty() {
        response.error_code = KafkaCode::INVALID_REQUEST.0;
        return response;
    }
    let partitions = match crate::group::service::ensure_offsets_topic(shard).await {
        Ok(n) => n,
        Err(code) => {
            response.error_code = code.0;
            return response;
        }
    };
    let add = TxnCall::Add {
        id: id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        partitions: vec![(
            OFFSETS_TOPIC.to_string(),
            crate::group::offsets_partition(&group, partitions),
        )],
    };
    response.error_code = fenced_for(code_of(call(shard, &id, add).await), version, 2).0;
    response
}

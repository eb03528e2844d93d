//! InitProducerId for idempotent producers (no `transactional.id`): a
//! producer id unique in the cluster and epoch 0 (KIP-98). Every call gets a
//! new id, as Kafka gives an idempotent producer: its state on the
//! partitions (see `strom_storage::producers`) starts afresh.
//!
//! Ids come from shard 0, which takes blocks of them from the controller
//! (`AllocateProducerIds` in the metadata log), so any broker can answer.
//! With a `transactional.id` the id's transaction coordinator answers (see
//! `crate::txn::service`): the same producer id with a bumped epoch every time.

use super::fenced_for;
use crate::errors::KafkaCode;
use crate::shard::Shard;
use crate::txn::service::{call_coordinator as call, TxnAnswer, TxnCall};
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    match request.transactional_id.as_deref() {
        None => {}
        // As Kafka: an empty transactional id is malformed, not "none".
        Some(id) if id.is_empty() => {
            response.error_code = KafkaCode::INVALID_REQUEST.0;
            return response;
        }
        Some(id) => {
            let id = id.to_string();
            return transactional(shard, &request, &id, version).await;
        }
    }
    // v3+: a producer that names its current id must name its epoch too.
    if (request.producer_id.0 == -1) != (request.producer_epoch == -1) {
        response.error_code = KafkaCode::INVALID_REQUEST.0;
        return response;
    }
    let id = shard
        .call(0, |zero| async move {
            crate::cluster::client::allocate_producer_id(&zero).await
        })
        .await
        .unwrap_or(Err(KafkaCode::COORDINATOR_NOT_AVAILABLE));
    match id {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(code) => response.error_code = code.0,
    }
    response
}

/// InitProducerId with a `transactional.id` (the caller checked it is not
/// empty).
async fn transactional(
    shard: &Rc<Shard>,
    request: &InitProducerIdRequest,
    id: &str,
    version: i16,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let timeout = request.transaction_timeout_ms;
    if timeout <= 0 || i64::from(timeout) > shard.broker.transaction_max_timeout_ms {
        response.error_code = KafkaCode::INVALID_TRANSACTION_TIMEOUT.0;
        return response;
    }
    let producer =
        (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
    let init = TxnCall::Init {
        id: id.to_string(),
        timeout_ms: timeout,
        producer,
    };
    match call(shard, id, init).await {
        Ok(TxnAnswer::Init(Ok((producer_id, epoch)))) => {
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = epoch;
        }
        Ok(TxnAnswer::Init(Err(code))) | Err(code) => {
            response.error_code = fenced_for(code, version, 4).0;
        }
        Ok(_) => response.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
    }
    response
}

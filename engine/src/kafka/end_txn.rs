//! EndTxn: commits or aborts a producer's open transaction at its coordinator
//! (see `crate::txn::service`); answered once every marker is written.

use super::fenced_for;
use crate::errors::KafkaCode;
use crate::shard::Shard;
use crate::txn::service::{call_coordinator as call, code_of, TxnCall};
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use std::rc::Rc;

pub async fn handle(shard: &Rc<Shard>, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    let id = request.transactional_id.0.to_string();
    if id.is_empty() {
        response.error_code = KafkaCode::INVALID_REQUEST.0;
        return response;
    }
    let end = TxnCall::End {
        id: id.clone(),
        producer_id: request.producer_id.0,
        epoch: request.producer_epoch,
        commit: request.committed,
    };
    response.error_code = fenced_for(code_of(call(shard, &id, end).await), version, 2).0;
    response
}

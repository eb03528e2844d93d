//! AddPartitionsToTxn (KIP-98; v4+ batched, KIP-890): the partitions a
//! transactional producer writes to join its open transaction at its
//! coordinator, which answers once the change is in `__transaction_state`.

use super::fenced_for;
use crate::errors::KafkaCode;
use crate::shard::Shard;
use crate::txn::service::{call_coordinator as call, code_of, TxnCall};
use kafka_protocol::messages::{
    add_partitions_to_txn_response, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};
use std::collections::BTreeSet;
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let table = shard.table();
    let mut wanted = Vec::new();
    let mut unknown = BTreeSet::new();
    for topic in &request.v3_and_below_topics {
        for p in &topic.partitions {
            let name = topic.name.0.to_string();
            let known = table
                .topics
                .get(&name)
                .is_some_and(|t| *p >= 0 && *p < t.partitions);
            if !known {
                unknown.insert((name.clone(), *p));
            }
            wanted.push((name, *p));
        }
    }
    // All or nothing, as Kafka: one bad partition and the others are not
    // attempted.
    let code_for = |tp: &(String, i32), shared: KafkaCode| {
        if unknown.is_empty() {
            shared
        } else if unknown.contains(tp) {
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
        } else {
            KafkaCode::OPERATION_NOT_ATTEMPTED
        }
    };
    let shared = if !unknown.is_empty() {
        KafkaCode::NONE
    } else if id.is_empty() {
        KafkaCode::INVALID_REQUEST
    } else {
        let add = TxnCall::Add {
            id: id.clone(),
            producer_id: request.v3_and_below_producer_id.0,
            epoch: request.v3_and_below_producer_epoch,
            partitions: wanted.clone(),
        };
        fenced_for(code_of(call(shard, &id, add).await), version, 2)
    };
    let mut response = AddPartitionsToTxnResponse::default();
    for topic in request.v3_and_below_topics {
        let mut t = add_partitions_to_txn_response::AddPartitionsToTxnTopicResult::default();
        let name = topic.name.0.to_string();
        t.name = topic.name;
        for p in topic.partitions {
            let mut r =
                add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult::default();
            r.partition_index = p;
            r.partition_error_code = code_for(&(name.clone(), p), shared).0;
            t.results_by_partition.push(r);
        }
        response.results_by_topic_v3_and_below.push(t);
    }
    response
}

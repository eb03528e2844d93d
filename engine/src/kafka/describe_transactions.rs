//! DescribeTransactions (KIP-664): the state of transactional ids, from their
//! coordinators.

use crate::errors::KafkaCode;
use crate::shard::Shard;
use crate::txn::service::{call_coordinator as call, TxnAnswer, TxnCall};
use kafka_protocol::messages::{
    describe_transactions_response, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ProducerId, TopicName,
};
use std::collections::BTreeMap;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let name = id.0.to_string();
        let mut state = describe_transactions_response::TransactionState::default();
        state.transactional_id = id;
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        match call(shard, &name, TxnCall::Describe(vec![name.clone()])).await {
            Ok(TxnAnswer::Described(found)) => match found.into_iter().next() {
                Some((_, Some(meta))) => {
                    state.transaction_state = str_bytes(meta.state.name());
                    state.transaction_timeout_ms = meta.timeout_ms;
                    state.transaction_start_time_ms = meta.start_ms;
                    state.producer_id = ProducerId(meta.producer_id);
                    state.producer_epoch = meta.epoch;
                    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (topic, p) in meta.partitions {
                        by_topic.entry(topic).or_default().push(p);
                    }
                    for (topic, partitions) in by_topic {
                        let mut t = describe_transactions_response::TopicData::default();
                        t.topic = TopicName(str_bytes(&topic));
                        t.partitions = partitions;
                        state.topics.push(t);
                    }
                }
                _ => state.error_code = KafkaCode::TRANSACTIONAL_ID_NOT_FOUND.0,
            },
            Ok(_) => state.error_code = KafkaCode::UNKNOWN_SERVER_ERROR.0,
            Err(code) => state.error_code = code.0,
        }
        response.transaction_states.push(state);
    }
    response
}

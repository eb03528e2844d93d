//! ListTransactions (KIP-664): the transactional ids every coordinating shard
//! of this broker knows, filtered by state and producer id.

use crate::clock::now_ms;
use crate::shard::Shard;
use crate::txn::service::{TxnAnswer, TxnCall};
use crate::txn::TxnState;
use kafka_protocol::messages::{
    list_transactions_response, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TransactionalId,
};
use std::collections::BTreeSet;
use std::rc::Rc;
use strom_net::response::str_bytes;

pub async fn handle(
    shard: &Rc<Shard>,
    request: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let mut states = BTreeSet::new();
    for name in &request.state_filters {
        match TxnState::from_name(name) {
            Some(s) => {
                states.insert(s);
            }
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    if !response.unknown_state_filters.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing can match.
        return response;
    }
    let pids: BTreeSet<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_age_ms = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let now = now_ms();
    let calls = (0..shard.count).map(|s| {
        let shard = shard.clone();
        async move {
            shard
                .call(s, |s| async move {
                    crate::txn::service::txns().serve(&s, TxnCall::List).await
                })
                .await
        }
    });
    for answer in futures::future::join_all(calls).await {
        let Ok(TxnAnswer::Listed(rows)) = answer else {
            continue;
        };
        for (id, meta) in rows {
            let keep = (states.is_empty() || states.contains(&meta.state))
                && (pids.is_empty() || pids.contains(&meta.producer_id))
                && (min_age_ms < 0
                    || (meta.state == TxnState::Ongoing && now - meta.start_ms >= min_age_ms));
            if keep {
                let mut row = list_transactions_response::TransactionState::default();
                row.transactional_id = TransactionalId(str_bytes(&id));
                row.producer_id = ProducerId(meta.producer_id);
                row.transaction_state = str_bytes(meta.state.name());
                response.transaction_states.push(row);
            }
        }
    }
    response
}

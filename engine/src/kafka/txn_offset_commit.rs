//! TxnOffsetCommit: offsets of a transaction, visible when it commits.

use super::offset_commit::{commit_codes, commit_response_topics, offset_row, offsets_of};
use super::opt;
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use std::rc::Rc;

pub async fn handle(
    shard: &Rc<Shard>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets = offsets_of!(request.topics);
    let count = offsets.len();
    let codes = if request.transactional_id.0.is_empty() {
        vec![KafkaCode::INVALID_REQUEST; count]
    } else {
        let commit = GroupCall::Commit {
            group: group.clone(),
            member: request.member_id.to_string(),
            instance: opt(&request.group_instance_id),
            generation: request.generation_id,
            offsets,
            producer: Some((request.producer_id.0, request.producer_epoch)),
        };
        commit_codes(shard, &group, commit, count).await
    };
    let codes = codes.into_iter().map(|c| {
        // Clients before v2 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
        if c == KafkaCode::PRODUCER_FENCED && version < 2 {
            KafkaCode::INVALID_PRODUCER_EPOCH
        } else {
            c
        }
    });
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = commit_response_topics!(
        request.topics,
        codes,
        txn_offset_commit_response::TxnOffsetCommitResponseTopic,
        txn_offset_commit_response::TxnOffsetCommitResponsePartition
    );
    response
}

//! OffsetCommit: a member commits offsets, written to `__consumer_offsets` with acks=all before the answer.

use super::opt;
use crate::errors::KafkaCode;
use crate::group::service::*;
use crate::shard::Shard;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// The offsets of an OffsetCommit or TxnOffsetCommit request, as
/// [`offset_row`]s (kafka-protocol gives the two requests distinct topic and
/// partition types with the same fields).
macro_rules! offsets_of {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let metadata = p.committed_metadata.as_ref();
                    offset_row(
                        &t.name,
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        metadata,
                    )
                })
            })
            .collect::<Vec<_>>()
    };
}

/// The response topics of an OffsetCommit or TxnOffsetCommit: the request's
/// partitions in order, each with the next code.
macro_rules! commit_response_topics {
    ($topics:expr, $codes:expr, $topic:ty, $partition:ty) => {{
        let mut codes = $codes;
        $topics
            .into_iter()
            .map(|topic| {
                let mut t = <$topic>::default();
                t.name = topic.name;
                t.partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut r = <$partition>::default();
                        r.partition_index = p.partition_index;
                        r.error_code = codes.next().unwrap_or(KafkaCode::UNKNOWN_SERVER_ERROR).0;
                        r
                    })
                    .collect();
                t
            })
            .collect()
    }};
}
pub(super) use {commit_response_topics, offsets_of};

pub(super) fn offset_row(
    topic: &TopicName,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<&StrBytes>,
) -> OffsetToCommit {
    OffsetToCommit {
        topic: topic.0.to_string(),
        partition,
        offset,
        leader_epoch,
        metadata: metadata.map(|m| m.to_string()).unwrap_or_default(),
    }
}

pub(super) async fn commit_codes(
    shard: &Rc<Shard>,
    group: &str,
    commit: GroupCall,
    count: usize,
) -> Vec<KafkaCode> {
    // Served in a task of its own: once written, an offset is applied even
    // if the client went away meanwhile.
    let answer = match coordinator_shard(shard, group).await {
        Ok(owner) => shard
            .call_detached(owner, move |s| async move {
                crate::group::service::groups().serve(&s, commit).await
            })
            .await
            .map_err(|_| KafkaCode::COORDINATOR_NOT_AVAILABLE),
        Err(code) => Err(code),
    };
    match answer {
        Ok(GroupAnswer::Codes(codes)) => codes,
        Ok(_) => Vec::new(),
        Err(code) => vec![code; count],
    }
}

pub async fn handle(shard: &Rc<Shard>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets = offsets_of!(request.topics);
    let commit = GroupCall::Commit {
        group: group.clone(),
        member: request.member_id.to_string(),
        instance: opt(&request.group_instance_id),
        generation: request.generation_id_or_member_epoch,
        offsets,
        producer: None,
    };
    let count = request.topics.iter().map(|t| t.partitions.len()).sum();
    let codes = commit_codes(shard, &group, commit, count).await;
    let mut response = OffsetCommitResponse::default();
    response.topics = commit_response_topics!(
        request.topics,
        codes.into_iter(),
        offset_commit_response::OffsetCommitResponseTopic,
        offset_commit_response::OffsetCommitResponsePartition
    );
    response
}

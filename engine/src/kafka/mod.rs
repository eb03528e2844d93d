//! Kafka API handlers, one file per API, each: decode → validate → route per
//! shard → execute → encode. `dispatch` is the only entry point.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod api_versions;
pub mod configs;
pub mod connection;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod routing;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use crate::metrics::ShardMetrics;
use crate::shard::Shard;
use bytes::Bytes;
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::StrBytes;
use std::rc::Rc;
use strom_net::header::RequestInfo;
use strom_net::request::{decode_request, Request};
use strom_net::response::encode_response;
use strom_net::response::str_bytes;
use strom_net::{NetError, SendItem};

/// What to write back for a request; `None` for acks=0 produce requests.
pub type Reply = Option<Vec<SendItem>>;

/// A request's answer: ready, or (acks=all produce) a future of it. The
/// connection writes answers in request order either way.
pub enum Dispatched {
    Now(Reply),
    Later(futures::future::LocalBoxFuture<'static, Result<Reply, NetError>>),
}

/// Routes a request to its handler.
pub async fn dispatch(
    shard: &Rc<Shard>,
    info: RequestInfo,
    body: Bytes,
    client_host: &str,
) -> Result<Dispatched, NetError> {
    let version = info.api_version;
    match decode_request(&info, body)? {
        Request::ApiVersions(request) => encoded(&info, &api_versions::handle(shard, &request)),
        Request::Metadata(request) => {
            encoded(&info, &metadata::handle(shard, request, version).await)
        }
        Request::CreateTopics(request) => {
            encoded(&info, &create_topics::handle(shard, request, version).await)
        }
        Request::DeleteTopics(request) => {
            encoded(&info, &delete_topics::handle(shard, request, version).await)
        }
        Request::Produce(request) => {
            let produced = {
                let _in_flight = ShardMetrics::in_flight(&shard.metrics.produce_in_flight);
                produce::handle(shard, request).await
            };
            match produced {
                produce::Produced::NoResponse => Ok(Dispatched::Now(None)),
                produce::Produced::Now(response) => encoded(&info, &response),
                produce::Produced::Later(response) => {
                    let shard = shard.clone();
                    Ok(Dispatched::Later(Box::pin(async move {
                        let _in_flight = ShardMetrics::in_flight(&shard.metrics.produce_in_flight);
                        let response = response.await;
                        encode_reply(&info, &response)
                    })))
                }
            }
        }
        Request::Fetch(request) => {
            let data = {
                let _in_flight = ShardMetrics::in_flight(&shard.metrics.fetch_in_flight);
                fetch::handle(shard, request, version).await
            };
            Ok(Dispatched::Now(Some(
                strom_net::fetch_response::encode_fetch_response(
                    version,
                    info.correlation_id,
                    &data,
                ),
            )))
        }
        Request::ListOffsets(request) => {
            encoded(&info, &list_offsets::handle(shard, request, version).await)
        }
        Request::FindCoordinator(request) => encoded(
            &info,
            &find_coordinator::handle(shard, request, version).await,
        ),
        Request::DeleteRecords(request) => {
            encoded(&info, &delete_records::handle(shard, request).await)
        }
        Request::JoinGroup(request) => {
            let client_id = info.client_id.clone().unwrap_or_default();
            let response =
                join_group::handle(shard, request, version, &client_id, client_host).await;
            encoded(&info, &response)
        }
        Request::SyncGroup(request) => encoded(&info, &sync_group::handle(shard, request).await),
        Request::Heartbeat(request) => encoded(&info, &heartbeat::handle(shard, request).await),
        Request::LeaveGroup(request) => {
            encoded(&info, &leave_group::handle(shard, request, version).await)
        }
        Request::OffsetCommit(request) => {
            encoded(&info, &offset_commit::handle(shard, request).await)
        }
        Request::OffsetFetch(request) => {
            encoded(&info, &offset_fetch::handle(shard, request, version).await)
        }
        Request::DescribeGroups(request) => {
            encoded(&info, &describe_groups::handle(shard, request).await)
        }
        Request::ListGroups(request) => encoded(&info, &list_groups::handle(shard, request).await),
        Request::DeleteGroups(request) => {
            encoded(&info, &delete_groups::handle(shard, request).await)
        }
        Request::OffsetDelete(request) => {
            encoded(&info, &offset_delete::handle(shard, request).await)
        }
        Request::DescribeConfigs(request) => {
            encoded(&info, &configs::describe_configs(shard, request, version))
        }
        Request::AlterConfigs(request) => {
            encoded(&info, &configs::alter_configs(shard, request).await)
        }
        Request::IncrementalAlterConfigs(request) => encoded(
            &info,
            &configs::incremental_alter_configs(shard, request).await,
        ),
        Request::CreatePartitions(request) => {
            encoded(&info, &create_partitions::handle(shard, request).await)
        }
        Request::DescribeCluster(request) => {
            encoded(&info, &describe_cluster::handle(shard, request))
        }
        Request::DescribeLogDirs(request) => {
            encoded(&info, &describe_log_dirs::handle(shard, request).await)
        }
        Request::DescribeTopicPartitions(request) => {
            encoded(&info, &describe_topic_partitions::handle(shard, request))
        }
        Request::OffsetForLeaderEpoch(request) => encoded(
            &info,
            &offset_for_leader_epoch::handle(shard, request).await,
        ),
        Request::ElectLeaders(request) => {
            encoded(&info, &elect_leaders::handle(shard, request, version).await)
        }
        Request::DescribeQuorum(request) => {
            encoded(&info, &describe_quorum::handle(shard, request).await)
        }
        Request::DescribeProducers(request) => {
            encoded(&info, &describe_producers::handle(shard, request).await)
        }
        Request::InitProducerId(request) => encoded(
            &info,
            &init_producer_id::handle(shard, request, version).await,
        ),
        Request::AddPartitionsToTxn(request) => encoded(
            &info,
            &add_partitions_to_txn::handle(shard, request, version).await,
        ),
        Request::AddOffsetsToTxn(request) => encoded(
            &info,
            &add_offsets_to_txn::handle(shard, request, version).await,
        ),
        Request::EndTxn(request) => encoded(&info, &end_txn::handle(shard, request, version).await),
        Request::TxnOffsetCommit(request) => encoded(
            &info,
            &txn_offset_commit::handle(shard, request, version).await,
        ),
        Request::WriteTxnMarkers(request) => {
            encoded(&info, &write_txn_markers::handle(shard, request).await)
        }
        Request::DescribeTransactions(request) => {
            encoded(&info, &describe_transactions::handle(shard, request).await)
        }
        Request::ListTransactions(request) => encoded(
            &info,
            &list_transactions::handle(shard, request, version).await,
        ),
    }
}

/// Encodes a response for the request it answers, to be written now.
fn encoded<R: Encodable>(info: &RequestInfo, response: &R) -> Result<Dispatched, NetError> {
    encode_reply(info, response).map(Dispatched::Now)
}

/// Encodes a response for the request it answers.
fn encode_reply<R: Encodable>(info: &RequestInfo, response: &R) -> Result<Reply, NetError> {
    let bytes = encode_response(
        info.api_key,
        info.api_version,
        info.correlation_id,
        response,
    )?;
    Ok(Some(vec![SendItem::Bytes(bytes)]))
}

/// An optional protocol string as ours.
pub(crate) fn opt(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.to_string())
}

/// Ours as an optional protocol string.
pub(crate) fn opt_bytes(s: Option<String>) -> Option<StrBytes> {
    s.map(|s| str_bytes(&s))
}

/// Clients before these versions know INVALID_PRODUCER_EPOCH, not
/// PRODUCER_FENCED (as Kafka converts it).
pub(crate) fn fenced_for(
    code: crate::errors::KafkaCode,
    version: i16,
    fenced_from: i16,
) -> crate::errors::KafkaCode {
    use crate::errors::KafkaCode;
    if code == KafkaCode::PRODUCER_FENCED && version < fenced_from {
        KafkaCode::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

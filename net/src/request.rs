//! The served requests as one type, and the client-side encoding of a request.
//!
//! `decode_request` is the single list of request decoders the broker serves: the
//! engine dispatches on its result, and the mutation test and the fuzz target run
//! exactly the same decoding.

use crate::header::{decode_body, RequestInfo};
use crate::NetError;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A decoded request of a served API.
#[derive(Debug)]
pub enum Request {
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    ApiVersions(ApiVersionsRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    FindCoordinator(FindCoordinatorRequest),
    DeleteRecords(DeleteRecordsRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    CreatePartitions(CreatePartitionsRequest),
    DescribeCluster(DescribeClusterRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    ElectLeaders(ElectLeadersRequest),
    DescribeQuorum(DescribeQuorumRequest),
    InitProducerId(InitProducerIdRequest),
    DescribeProducers(DescribeProducersRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    EndTxn(EndTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
}

/// Decodes the body of a classified request (bounds-checked first, see
/// `decode_body`). An API that is not served is an error closing the connection.
pub fn decode_request(info: &RequestInfo, body: Bytes) -> Result<Request, NetError> {
    let (key, version) = (info.api_key, info.api_version);
    Ok(match key {
        ApiKey::Produce => Request::Produce(decode_body(body, key, version)?),
        ApiKey::Fetch => Request::Fetch(decode_body(body, key, version)?),
        ApiKey::ListOffsets => Request::ListOffsets(decode_body(body, key, version)?),
        ApiKey::Metadata => Request::Metadata(decode_body(body, key, version)?),
        ApiKey::ApiVersions => Request::ApiVersions(decode_body(body, key, version)?),
        ApiKey::CreateTopics => Request::CreateTopics(decode_body(body, key, version)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(decode_body(body, key, version)?),
        ApiKey::FindCoordinator => Request::FindCoordinator(decode_body(body, key, version)?),
        ApiKey::DeleteRecords => Request::DeleteRecords(decode_body(body, key, version)?),
        ApiKey::JoinGroup => Request::JoinGroup(decode_body(body, key, version)?),
        ApiKey::SyncGroup => Request::SyncGroup(decode_body(body, key, version)?),
        ApiKey::Heartbeat => Request::Heartbeat(decode_body(body, key, version)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(decode_body(body, key, version)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(decode_body(body, key, version)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(decode_body(body, key, version)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(decode_body(body, key, version)?),
        ApiKey::ListGroups => Request::ListGroups(decode_body(body, key, version)?),
        ApiKey::DeleteGroups => Request::DeleteGroups(decode_body(body, key, version)?),
        ApiKey::OffsetDelete => Request::OffsetDelete(decode_body(body, key, version)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(decode_body(body, key, version)?),
        ApiKey::AlterConfigs => Request::AlterConfigs(decode_body(body, key, version)?),
        ApiKey::IncrementalAlterConfigs => {
            Request::IncrementalAlterConfigs(decode_body(body, key, version)?)
        }
        ApiKey::CreatePartitions => Request::CreatePartitions(decode_body(body, key, version)?),
        ApiKey::DescribeCluster => Request::DescribeCluster(decode_body(body, key, version)?),
        ApiKey::DescribeLogDirs => Request::DescribeLogDirs(decode_body(body, key, version)?),
        ApiKey::DescribeTopicPartitions => {
            Request::DescribeTopicPartitions(decode_body(body, key, version)?)
        }
        ApiKey::OffsetForLeaderEpoch => {
            Request::OffsetForLeaderEpoch(decode_body(body, key, version)?)
        }
        ApiKey::ElectLeaders => Request::ElectLeaders(decode_body(body, key, version)?),
        ApiKey::DescribeQuorum => Request::DescribeQuorum(decode_body(body, key, version)?),
        ApiKey::InitProducerId => Request::InitProducerId(decode_body(body, key, version)?),
        ApiKey::DescribeProducers => Request::DescribeProducers(decode_body(body, key, version)?),
        ApiKey::AddPartitionsToTxn => Request::AddPartitionsToTxn(decode_body(body, key, version)?),
        ApiKey::AddOffsetsToTxn => Request::AddOffsetsToTxn(decode_body(body, key, version)?),
        ApiKey::EndTxn => Request::EndTxn(decode_body(body, key, version)?),
        ApiKey::TxnOffsetCommit => Request::TxnOffsetCommit(decode_body(body, key, version)?),
        ApiKey::WriteTxnMarkers => Request::WriteTxnMarkers(decode_body(body, key, version)?),
        ApiKey::DescribeTransactions => {
            Request::DescribeTransactions(decode_body(body, key, version)?)
        }
        ApiKey::ListTransactions => Request::ListTransactions(decode_body(body, key, version)?),
        other => {
            return Err(NetError::UnknownApiKey {
                api_key: other as i16,
            })
        }
    })
}

/// Encodes a request as it goes on the wire (size prefix, header of the
/// version's header format, body), as a client sends it.
pub fn encode_request<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &R,
) -> Result<Bytes, NetError> {
    let encode_error = |err: &dyn std::fmt::Display| NetError::Encode {
        api_name: crate::header::api_name(api_key),
        reason: err.to_string(),
    };
    let mut header = RequestHeader::default();
    header.request_api_key = api_key as i16;
    header.request_api_version = api_version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_string(client_id.to_owned()));
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // size, patched below
    header
        .encode(&mut buf, api_key.request_header_version(api_version))
        .map_err(|e| encode_error(&e))?;
    body.encode(&mut buf, api_version)
        .map_err(|e| encode_error(&e))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

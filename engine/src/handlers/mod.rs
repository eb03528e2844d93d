//! Kafka API handlers, one file per API, each: decode → validate → route per
//! shard → execute → encode. `dispatch` is the only entry point.

pub mod api_versions;
pub mod create_topics;
pub mod delete_topics;
pub mod fetch;
pub mod find_coordinator;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use crate::shard::Shard;
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use std::rc::Rc;
use strom_net::header::{decode_body, RequestInfo};
use strom_net::response::encode_response;
use strom_net::{NetError, SendItem};

/// What to write back for a request; `None` for acks=0 produce requests.
pub type Reply = Option<Vec<SendItem>>;

/// Routes a decoded request to its handler.
pub async fn dispatch(
    shard: &Rc<Shard>,
    info: RequestInfo,
    body: Bytes,
) -> Result<Reply, NetError> {
    let version = info.api_version;
    match info.api_key {
        ApiKey::ApiVersions => {
            let request = decode_body(body, info.api_key, version)?;
            let response = api_versions::handle(shard, &request);
            encoded(&info, &response)
        }
        ApiKey::Metadata => {
            let request = decode_body(body, info.api_key, version)?;
            let response = metadata::handle(shard, request, version).await;
            encoded(&info, &response)
        }
        ApiKey::CreateTopics => {
            let request = decode_body(body, info.api_key, version)?;
            let response = create_topics::handle(shard, request, version).await;
            encoded(&info, &response)
        }
        ApiKey::DeleteTopics => {
            let request = decode_body(body, info.api_key, version)?;
            let response = delete_topics::handle(shard, request, version).await;
            encoded(&info, &response)
        }
        ApiKey::Produce => {
            let request = decode_body(body, info.api_key, version)?;
            match produce::handle(shard, request).await {
                Some(response) => encoded(&info, &response),
                None => Ok(None),
            }
        }
        ApiKey::Fetch => {
            let request = decode_body(body, info.api_key, version)?;
            let data = fetch::handle(shard, request, version).await;
            Ok(Some(strom_net::fetch_response::encode_fetch_response(
                version,
                info.correlation_id,
                &data,
            )))
        }
        ApiKey::ListOffsets => {
            let request = decode_body(body, info.api_key, version)?;
            let response = list_offsets::handle(shard, request, version).await;
            encoded(&info, &response)
        }
        ApiKey::FindCoordinator => {
            let request = decode_body(body, info.api_key, version)?;
            let response = find_coordinator::handle(shard, request, version);
            encoded(&info, &response)
        }
        other => Err(NetError::UnknownApiKey {
            api_key: other as i16,
        }),
    }
}

/// Encodes a response for the request it answers.
fn encoded<R: Encodable>(info: &RequestInfo, response: &R) -> Result<Reply, NetError> {
    let bytes = encode_response(
        info.api_key,
        info.api_version,
        info.correlation_id,
        response,
    )?;
    Ok(Some(vec![SendItem::Bytes(bytes)]))
}

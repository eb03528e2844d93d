//! ApiVersions: the APIs and version ranges this broker serves (see
//! `strom_net::versions`). A request newer than we know is answered before it gets
//! here (KIP-511, in the connection loop).

use crate::shard::Shard;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use strom_net::response::api_versions_body;

pub fn handle(shard: &Shard, _request: &ApiVersionsRequest) -> ApiVersionsResponse {
    api_versions_body(&shard.api_support, 0)
}

//! How the generator connects: `strom_net::client` with its own client id
//! and API versions.

use crate::error::BenchError;
use kafka_protocol::messages::ApiKey;
use std::time::Duration;
use strom_net::client::{ClientOptions, Connection};

/// The highest version of each API this generator sends. Fetch stays below
/// v13 (topic ids) and Produce below v13 (topic ids) so topics go by name.
pub fn our_max_version(api_key: ApiKey) -> i16 {
    match api_key {
        ApiKey::Produce => 11,
        // v11: the newest without tagged fields; tansu 0.6 answers v12 with a
        // top-level tag kafka-protocol refuses below v16.
        ApiKey::Fetch => 11,
        ApiKey::ListOffsets => 7,
        ApiKey::Metadata => 12,
        ApiKey::CreateTopics => 7,
        ApiKey::DeleteTopics => 5,
        ApiKey::ApiVersions => 3,
        _ => 0,
    }
}

/// Client id, versions, and 60 s for connecting and each read and write.
pub const OPTIONS: ClientOptions = ClientOptions {
    client_id: "strom-bench",
    max_version: our_max_version,
    io_timeout: Duration::from_secs(60),
    bind: None,
};

/// Connects to `addr` and negotiates versions.
pub async fn connect(addr: &str) -> Result<Connection, BenchError> {
    Ok(Connection::connect(addr, OPTIONS).await?)
}

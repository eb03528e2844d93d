//! The one error type of `strom-bench`: a failed request (from the
//! `strom_net::client` connection) or a run that cannot go on.

use kafka_protocol::messages::ApiKey;
use strom_net::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Run(String),
}

impl BenchError {
    pub fn protocol(addr: &str, api: ApiKey, reason: impl Into<String>) -> BenchError {
        BenchError::Client(ClientError::protocol(addr, api, reason))
    }

    /// `context` is appended as is (start it with ": " when not empty).
    pub fn kafka(addr: &str, api: ApiKey, code: i16, context: &str) -> BenchError {
        BenchError::Client(ClientError::kafka(addr, api, code, context))
    }
}

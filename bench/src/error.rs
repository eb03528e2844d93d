//! The one error type of `strom-bench`.

use kafka_protocol::messages::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{addr}: {what}: {source}")]
    Io {
        addr: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: {api}: {reason}")]
    Protocol {
        addr: String,
        api: String,
        reason: String,
    },
    #[error("{addr}: {api} answered {name} ({code}){context}")]
    Kafka {
        addr: String,
        api: String,
        code: i16,
        name: String,
        context: String,
    },
    #[error("{0}")]
    Run(String),
}

/// Kafka's name of an error code (`TOPIC_ALREADY_EXISTS`-style Debug name).
pub fn error_name(code: i16) -> String {
    kafka_protocol::error::ResponseError::try_from_code(code)
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("error {code}"))
}

impl BenchError {
    pub fn protocol(addr: &str, api: ApiKey, reason: impl Into<String>) -> BenchError {
        BenchError::Protocol {
            addr: addr.to_string(),
            api: format!("{api:?}"),
            reason: reason.into(),
        }
    }

    /// `context` is appended as is (start it with ": " when not empty).
    pub fn kafka(addr: &str, api: ApiKey, code: i16, context: &str) -> BenchError {
        BenchError::Kafka {
            addr: addr.to_string(),
            api: format!("{api:?}"),
            code,
            name: error_name(code),
            context: context.to_string(),
        }
    }
}

//! Command-line tools that talk to a running broker over the Kafka protocol,
//! like Kafka's `kafka-consumer-groups` or `rpk group`.
//!
//! [`client`] is a small blocking Kafka client (one `std::net::TcpStream` per
//! broker, ApiVersions negotiated at connect, one request in flight); [`group`]
//! is `strom group`; [`reset`] holds the pure parts of `reset-offsets` (topic
//! specs, datetimes, the new offset of each mode). [`tune`] is `strom tune`,
//! which talks to no broker: it reports and changes host settings through
//! `strom_tuning::tune`. [`topic`], [`produce`], [`consume`] and [`cluster`]
//! are `strom topic|produce|consume|cluster` (like rpk and kcat), sharing
//! [`tools`] (flags, output, Metadata and config requests); [`records`] builds
//! and reads record batches, [`member`] is a classic consumer-group member
//! (range assignor) for `consume --group`. Nothing here runs in the broker: it
//! is plain blocking code, no glommio.

pub mod client;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod member;
pub mod produce;
pub mod records;
pub mod reset;
pub mod tools;
pub mod topic;
pub mod tune;
pub mod txn;

use kafka_protocol::error::ResponseError;
use std::fmt;

/// Exit status of a Kafka or connection error (clap's usage errors exit with 2).
pub const EXIT_ERROR: i32 = 1;

/// Output format of the tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON object on one line, for scripts.
    Json,
}

/// Why a command failed (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot resolve broker address '{addr}': {reason}")]
    Resolve { addr: String, reason: String },
    #[error("cannot connect to the broker at {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{what} (broker {addr}): {source}")]
    Io {
        addr: String,
        what: String,
        source: std::io::Error,
    },
    #[error("no answer from the broker at {addr} to {api} within {secs} s")]
    Timeout {
        addr: String,
        api: String,
        secs: u64,
    },
    #[error("bad response from the broker at {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    #[error("the broker at {addr} does not support {api}; upgrade it")]
    Unsupported { addr: String, api: String },
    #[error(
        "the broker at {addr} serves {api} versions {broker_min}-{broker_max}, \
         but this strom speaks versions {ours_min}-{ours_max}; upgrade the older one"
    )]
    NoCommonVersion {
        addr: String,
        api: String,
        broker_min: i16,
        broker_max: i16,
        ours_min: i16,
        ours_max: i16,
    },
    #[error("{0}")]
    Kafka(KafkaError),
    #[error("{0}")]
    Message(String),
}

impl CliError {
    /// The Kafka error code, if this is a Kafka error.
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            CliError::Kafka(e) => Some(e.code),
            _ => None,
        }
    }
}

/// A Kafka error code in an answer, with what it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: i16,
    /// What failed, e.g. "group 'orders' does not exist".
    pub context: String,
    /// The broker's error message, when it sent one.
    pub message: Option<String>,
}

impl KafkaError {
    pub fn new(code: i16, context: impl Into<String>) -> KafkaError {
        KafkaError {
            code,
            context: context.into(),
            message: None,
        }
    }

    pub fn with_message(mut self, message: Option<&str>) -> KafkaError {
        self.message = message.filter(|m| !m.is_empty()).map(str::to_owned);
        self
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", error_name(self.code), self.context)?;
        if let Some(message) = &self.message {
            write!(f, " (broker says: {message})")?;
        }
        Ok(())
    }
}

impl From<KafkaError> for CliError {
    fn from(err: KafkaError) -> CliError {
        CliError::Kafka(err)
    }
}

/// Kafka's name of an error code, e.g. 69 → `GROUP_ID_NOT_FOUND`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(err) => screaming_snake(&err.to_string()),
    }
}

/// `GroupIdNotFound` → `GROUP_ID_NOT_FOUND`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Kafka error codes the tools name in their messages.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
}

/// Whether a group request failed because the coordinator moved or is loading:
/// find it again and retry.
pub fn is_coordinator_retriable(code: i16) -> bool {
    matches!(
        code,
        codes::COORDINATOR_LOAD_IN_PROGRESS
            | codes::COORDINATOR_NOT_AVAILABLE
            | codes::NOT_COORDINATOR
    )
}

/// Renders rows under headers in columns two spaces apart; the last column is
/// not padded, so lines carry no trailing blanks.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate().take(columns) {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// An optional number as a table cell: the number, or `-`.
pub fn cell(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_error_codes_like_kafka() {
        assert_eq!(error_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(error_name(68), "NON_EMPTY_GROUP");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(86), "GROUP_SUBSCRIBED_TO_TOPIC");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "UNKNOWN_ERROR_CODE_9999");
    }

    #[test]
    fn kafka_error_message_names_the_code() {
        let err = KafkaError::new(69, "group 'orders' does not exist");
        assert_eq!(
            err.to_string(),
            "GROUP_ID_NOT_FOUND: group 'orders' does not exist"
        );
        let err = KafkaError::new(68, "x").with_message(Some("The group is not empty."));
        assert_eq!(
            err.to_string(),
            "NON_EMPTY_GROUP: x (broker says: The group is not empty.)"
        );
        assert_eq!(
            KafkaError::new(68, "x").with_message(Some("")).message,
            None
        );
    }

    #[test]
    fn table_aligns_columns_without_trailing_blanks() {
        let rows = vec![
            vec!["orders".to_string(), "0".to_string(), "-".to_string()],
            vec!["t".to_string(), "12".to_string(), "1234".to_string()],
        ];
        let text = render_table(&["TOPIC", "PARTITION", "LAG"], &rows);
        assert_eq!(
            text,
            "TOPIC   PARTITION  LAG\n\
             orders  0          -\n\
             t       12         1234\n"
        );
        for line in text.lines() {
            assert_eq!(line, line.trim_end());
        }
        // An empty last cell leaves no trailing blanks either.
        let rows = vec![vec!["a".to_string(), String::new()]];
        assert_eq!(render_table(&["A", "B"], &rows), "A  B\na\n");
    }

    #[test]
    fn cells_show_missing_numbers_as_dash() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(-1)), "-1");
        assert_eq!(cell(Some(42)), "42");
    }
}

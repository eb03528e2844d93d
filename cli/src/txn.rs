//! `strom txn`: transactions over the Kafka protocol, like
//! `kafka-transactions`.
//!
//! - `list [--state S]... [--producer-id N]...`: ListTransactions on every
//!   broker (each lists the transactional ids it coordinates).
//! - `describe ID`: DescribeTransactions at the id's coordinator: state,
//!   producer id and epoch, timeout, start time and the partitions of the
//!   open transaction.
//!
//! Exit status: 0 success, 1 a Kafka or connection error (the message names
//! the Kafka error, e.g. `TRANSACTIONAL_ID_NOT_FOUND`), 2 a usage error.

use super::client::{self, Client, Node, Session};
use super::group::CommonArgs;
use super::tools::{emit, emit_json, str_bytes};
use super::{codes, render_table, CliError, Format, KafkaError, EXIT_ERROR};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, ListTransactionsRequest, ProducerId, TransactionalId,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `strom txn ...`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Transactions: list, describe",
    long_about = "Transactions over the Kafka protocol, like kafka-transactions. Exit status: \
                  0 success, 1 a Kafka or connection error (the message names the Kafka error), \
                  2 a usage error."
)]
pub struct TxnArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: TxnCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TxnCommand {
    /// List the transactional ids (TRANSACTIONAL-ID, COORDINATOR, PRODUCER-ID, STATE).
    List(ListArgs),
    /// State, producer, timeout and partitions of one transactional id.
    Describe(DescribeArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only ids in this state (Empty, Ongoing, PrepareCommit, PrepareAbort,
    /// CompleteCommit, CompleteAbort, Dead, PrepareEpochFence); repeatable.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub states: Vec<String>,
    /// Only ids of this producer id; repeatable.
    #[arg(long = "producer-id", value_name = "ID")]
    pub producer_ids: Vec<i64>,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The transactional id.
    pub transactional_id: String,
}

/// How messages name the command.
const TOOL: &str = "txn";

const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

fn parse_state(text: &str) -> Result<String, String> {
    STATES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(text))
        .map(|s| s.to_string())
        .ok_or_else(|| format!("unknown state '{text}' (one of {})", STATES.join(", ")))
}

pub fn run(args: TxnArgs) -> i32 {
    let env = super::tools::brokers_from_env();
    let bootstrap = client::bootstrap_from(args.common.bootstrap.as_deref(), env.as_deref());
    let mut session = Session::new(&bootstrap, Duration::from_secs(args.common.timeout));
    let format = args.common.format;
    let result = match &args.command {
        TxnCommand::List(a) => list(&mut session, a, format),
        TxnCommand::Describe(a) => describe(&mut session, a, format),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("strom txn: {err}");
            EXIT_ERROR
        }
    }
}

/// One row of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedTxn {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub state: String,
}

fn list(session: &mut Session, args: &ListArgs, format: Format) -> Result<i32, CliError> {
    let meta = session.metadata(Some(&[]))?;
    let mut brokers: Vec<Node> = meta.brokers.values().cloned().collect();
    if brokers.is_empty() {
        let addr = session.any()?.addr().to_string();
        let (host, port) = addr.rsplit_once(':').unwrap_or((&addr, "9092"));
        brokers.push(Node {
            node_id: -1,
            host: host.to_string(),
            port: port.parse().unwrap_or(9092),
        });
    }
    let mut rows: BTreeMap<String, ListedTxn> = BTreeMap::new();
    for broker in brokers {
        let addr = broker.addr();
        let (_, response) = session.call(&addr, |c: &mut Client| {
            c.send(|_version| {
                let mut request = ListTransactionsRequest::default();
                request.state_filters = args.states.iter().map(|s| str_bytes(s)).collect();
                request.producer_id_filters =
                    args.producer_ids.iter().map(|p| ProducerId(*p)).collect();
                request.duration_filter = -1;
                request
            })
        })?;
        if response.error_code != codes::NONE {
            return Err(KafkaError::new(
                response.error_code,
                format!("ListTransactions on the broker at {addr} failed"),
            )
            .into());
        }
        for t in response.transaction_states {
            let id = t.transactional_id.0.to_string();
            rows.insert(
                id.clone(),
                ListedTxn {
                    transactional_id: id,
                    coordinator: broker.node_id,
                    producer_id: t.producer_id.0,
                    state: t.transaction_state.to_string(),
                },
            );
        }
    }
    let rows: Vec<ListedTxn> = rows.into_values().collect();
    match format {
        Format::Json => emit_json(TOOL, &serde_json::json!({ "transactions": rows })),
        Format::Table => emit(TOOL, &render_list(&rows)),
    }
    Ok(0)
}

pub fn render_list(rows: &[ListedTxn]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.transactional_id.clone(),
                r.coordinator.to_string(),
                r.producer_id.to_string(),
                r.state.clone(),
            ]
        })
        .collect();
    render_table(
        &["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
        &cells,
    )
}

/// What `describe` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub coordinator: i32,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch), -1 without one.
    pub start_time_ms: i64,
    /// How long it has been open, -1 without one.
    pub duration_ms: i64,
    /// "topic-partition" of every partition of the open transaction.
    pub partitions: Vec<String>,
}

fn describe(session: &mut Session, args: &DescribeArgs, format: Format) -> Result<i32, CliError> {
    let id = args.transactional_id.as_str();
    let coordinator = session.find_key_coordinator(1, id)?;
    let state = session.with_key_coordinator(1, id, |c: &mut Client| {
        let (_, response) = c.send(|_version| {
            let mut request = DescribeTransactionsRequest::default();
            request.transactional_ids = vec![TransactionalId(str_bytes(id))];
            request
        })?;
        let state = response
            .transaction_states
            .into_iter()
            .find(|s| s.transactional_id.0.as_str() == id)
            .ok_or_else(|| CliError::Protocol {
                addr: c.addr().to_string(),
                reason: format!("DescribeTransactions answer does not mention '{id}'"),
            })?;
        if state.error_code != codes::NONE {
            let context = if state.error_code == codes::TRANSACTIONAL_ID_NOT_FOUND {
                format!("transactional id '{id}' does not exist")
            } else {
                format!("DescribeTransactions for '{id}' failed")
            };
            return Err(KafkaError::new(state.error_code, context).into());
        }
        Ok(state)
    })?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start = state.transaction_start_time_ms;
    let d = TxnDescription {
        transactional_id: id.to_string(),
        coordinator: coordinator.node_id,
        state: state.transaction_state.to_string(),
        producer_id: state.producer_id.0,
        producer_epoch: state.producer_epoch,
        timeout_ms: state.transaction_timeout_ms,
        start_time_ms: start,
        duration_ms: if start >= 0 {
            (now_ms - start).max(0)
        } else {
            -1
        },
        partitions: state
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| format!("{}-{p}", t.topic.0.as_str()))
            })
            .collect(),
    };
    match format {
        Format::Json => emit_json(TOOL, &d),
        Format::Table => emit(TOOL, &render_description(&d)),
    }
    Ok(0)
}

pub fn render_description(d: &TxnDescription) -> String {
    let opt = |v: i64| {
        if v < 0 {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    let partitions = if d.partitions.is_empty() {
        "-".to_string()
    } else {
        d.partitions.join(",")
    };
    render_table(
        &[
            "TRANSACTIONAL-ID",
            "COORDINATOR",
            "PRODUCER-ID",
            "EPOCH",
            "STATE",
            "TIMEOUT-MS",
            "START-TIME-MS",
            "DURATION-MS",
            "PARTITIONS",
        ],
        &[vec![
            d.transactional_id.clone(),
            d.coordinator.to_string(),
            d.producer_id.to_string(),
            d.producer_epoch.to_string(),
            d.state.clone(),
            d.timeout_ms.to_string(),
            opt(d.start_time_ms),
            opt(d.duration_ms),
            partitions,
        ]],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_matched_without_regard_to_case_and_unknown_ones_refused() {
        assert_eq!(parse_state("ongoing"), Ok("Ongoing".to_string()));
        assert!(parse_state("Running")
            .unwrap_err()
            .contains("CompleteCommit"));
    }

    #[test]
    fn a_description_renders_as_one_row() {
        let d = TxnDescription {
            transactional_id: "t".into(),
            coordinator: 1,
            state: "Ongoing".into(),
            producer_id: 1000,
            producer_epoch: 2,
            timeout_ms: 60000,
            start_time_ms: 5,
            duration_ms: 10,
            partitions: vec!["a-0".into(), "b-1".into()],
        };
        let text = render_description(&d);
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().ends_with("a-0,b-1"), "{text}");
    }
}

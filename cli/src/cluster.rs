//! `strom cluster`: what a cluster is made of and its broker configs, like
//! `rpk cluster info` and `rpk cluster config`.
//!
//! - `info`: DescribeCluster when the broker serves it, else Metadata: cluster
//!   id, controller, brokers (ID HOST PORT RACK STATE, fenced ones included
//!   with DescribeCluster v2), topic count; and with DescribeQuorum the
//!   controller quorum (active controller, epoch, high watermark, each
//!   voter's log end offset and lag).
//! - `config`: DescribeConfigs of a broker (resource type BROKER, KEY VALUE
//!   SOURCE); with `--set` / `--delete`, IncrementalAlterConfigs of the
//!   cluster-wide default broker resource (name "").

use super::client::Session;
use super::tools::{self, emit, emit_json, ConfigChange, ConfigOp, ConnArgs, RESOURCE_BROKER};
use super::{codes, render_table, CliError, Format, KafkaError, EXIT_ERROR};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use serde::Serialize;

const COMMAND: &str = "cluster";

/// `strom cluster ...`.
#[derive(clap::Args, Debug)]
#[command(
    about = "The cluster: brokers, controller, id; broker configs",
    long_about = "What the cluster is made of and its broker configs, like rpk cluster. Exit \
                  status: 0 success, 1 a Kafka or connection error, 2 a usage error."
)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Output: aligned columns, or one JSON document on one line.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers (ID HOST PORT RACK) and topic count.
    Info,
    /// Show a broker's configs (KEY VALUE SOURCE), or change the cluster-wide
    /// broker defaults with --set / --delete.
    Config(ConfigArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Set the cluster-wide default of KEY to VALUE (a dynamic broker config
    /// such as log.retention.ms); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = tools::parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove the cluster-wide default of KEY (back to the static config); repeatable.
    #[arg(long, value_name = "KEY", value_parser = tools::parse_key)]
    pub delete: Vec<String>,
    /// With --set / --delete: only validate the change.
    #[arg(long)]
    pub dry_run: bool,
    /// Without --set / --delete: the broker whose configs to show (default: the
    /// lowest broker id).
    #[arg(long, value_name = "ID", conflicts_with_all = ["set", "delete"])]
    pub node: Option<i32>,
}

impl ConfigArgs {
    pub fn changes(&self) -> Vec<ConfigChange> {
        let mut changes: Vec<ConfigChange> = self
            .set
            .iter()
            .map(|(key, value)| ConfigChange {
                op: ConfigOp::Set,
                key: key.clone(),
                value: Some(value.clone()),
            })
            .collect();
        changes.extend(self.delete.iter().map(|key| ConfigChange {
            op: ConfigOp::Delete,
            key: key.clone(),
            value: None,
        }));
        changes
    }
}

/// Runs `strom cluster ...`; returns the exit status.
pub fn run(args: ClusterArgs) -> i32 {
    let mut session = args.conn.session();
    let result = match &args.command {
        ClusterCommand::Info => info(&mut session, args.format),
        ClusterCommand::Config(a) => config(&mut session, a, args.format),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("strom cluster: {err}");
            EXIT_ERROR
        }
    }
}

/// A broker of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// "active", or "fenced" (registered but not heartbeating / not caught up).
    pub state: String,
}

/// The controller quorum (DescribeQuorum of the metadata log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<VoterInfo>,
}

/// One voter of the controller quorum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoterInfo {
    pub node_id: i32,
    pub log_end_offset: i64,
    /// Entries behind the high watermark.
    pub lag: i64,
}

/// What `info` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterInfo {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    /// User topics (internal ones are counted separately).
    pub topics: usize,
    pub internal_topics: usize,
    /// "DescribeCluster" or "Metadata": where the broker list came from.
    pub source: String,
    /// The controller quorum, when the broker serves DescribeQuorum.
    pub quorum: Option<QuorumInfo>,
}

fn cluster_info(session: &mut Session) -> Result<ClusterInfo, CliError> {
    let metadata = tools::metadata(session, None, false)?;
    let topics = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == codes::NONE && !t.is_internal)
        .count();
    let internal_topics = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == codes::NONE && t.is_internal)
        .count();
    let mut info = if tools::supports(session, ApiKey::DescribeCluster)? {
        let addr = session.any()?.addr().to_string();
        let (_, response) = session.call(&addr, |c| {
            c.send(|_version| {
                let mut request = DescribeClusterRequest::default();
                request.include_cluster_authorized_operations = false;
                request.endpoint_type = 1; // brokers
                request.include_fenced_brokers = true; // v2
                request
            })
        })?;
        if response.error_code != codes::NONE {
            return Err(
                KafkaError::new(response.error_code, "DescribeCluster failed")
                    .with_message(response.error_message.as_deref())
                    .into(),
            );
        }
        ClusterInfo {
            cluster_id: Some(response.cluster_id.to_string()),
            controller_id: response.controller_id.0,
            brokers: response
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    node_id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                    state: if b.is_fenced { "fenced" } else { "active" }.to_string(),
                })
                .collect(),
            topics,
            internal_topics,
            source: "DescribeCluster".to_string(),
            quorum: None,
        }
    } else {
        ClusterInfo {
            cluster_id: metadata.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: metadata.controller_id.0,
            brokers: metadata
                .brokers
                .iter()
                .map(|b| BrokerInfo {
                    node_id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                    state: "active".to_string(),
                })
                .collect(),
            topics,
            internal_topics,
            source: "Metadata".to_string(),
            quorum: None,
        }
    };
    info.brokers.sort_by_key(|b| b.node_id);
    if tools::supports(session, ApiKey::DescribeQuorum)? {
        info.quorum = describe_quorum(session)?;
    }
    Ok(info)
}

/// DescribeQuorum of `__cluster_metadata` partition 0; None when the broker
/// has no active controller to ask right now.
fn describe_quorum(session: &mut Session) -> Result<Option<QuorumInfo>, CliError> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let addr = session.any()?.addr().to_string();
    let (_, response) = session.call(&addr, |c| {
        c.send(|_version| {
            let mut partition = PartitionData::default();
            partition.partition_index = 0;
            let mut topic = TopicData::default();
            topic.topic_name = TopicName(kafka_protocol::protocol::StrBytes::from_static_str(
                "__cluster_metadata",
            ));
            topic.partitions = vec![partition];
            let mut request = DescribeQuorumRequest::default();
            request.topics = vec![topic];
            request
        })
    })?;
    if response.error_code != codes::NONE {
        return Ok(None);
    }
    let Some(p) = response.topics.first().and_then(|t| t.partitions.first()) else {
        return Ok(None);
    };
    let mut voters: Vec<VoterInfo> = p
        .current_voters
        .iter()
        .map(|v| VoterInfo {
            node_id: v.replica_id.0,
            log_end_offset: v.log_end_offset,
            lag: (p.high_watermark - v.log_end_offset).max(0),
        })
        .collect();
    voters.sort_by_key(|v| v.node_id);
    Ok(Some(QuorumInfo {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters,
    }))
}

fn info(session: &mut Session, format: Format) -> Result<i32, CliError> {
    let info = cluster_info(session)?;
    match format {
        Format::Json => emit_json(COMMAND, &info),
        Format::Table => emit(COMMAND, &render_info(&info)),
    }
    Ok(0)
}

pub fn render_info(info: &ClusterInfo) -> String {
    let summary = vec![
        vec![
            "CLUSTER-ID".to_string(),
            info.cluster_id.clone().unwrap_or_else(|| "-".to_string()),
        ],
        vec!["CONTROLLER".to_string(), info.controller_id.to_string()],
        vec!["TOPICS".to_string(), info.topics.to_string()],
        vec![
            "INTERNAL-TOPICS".to_string(),
            info.internal_topics.to_string(),
        ],
    ];
    let table = render_table(&["", ""], &summary);
    let mut out = String::from("CLUSTER\n=======\n");
    out.push_str(table.split_once('\n').map_or("", |(_, rest)| rest));
    out.push_str("\nBROKERS\n=======\n");
    let rows: Vec<Vec<String>> = info
        .brokers
        .iter()
        .map(|b| {
            let id = if b.node_id == info.controller_id {
                format!("{}*", b.node_id)
            } else {
                b.node_id.to_string()
            };
            vec![
                id,
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_else(|| "-".to_string()),
                b.state.clone(),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &["ID", "HOST", "PORT", "RACK", "STATE"],
        &rows,
    ));
    if let Some(quorum) = &info.quorum {
        out.push_str(&format!(
            "\nCONTROLLER QUORUM\n=================\nLEADER          {}\nEPOCH           {}\nHIGH-WATERMARK  {}\n\n",
            quorum.leader_id, quorum.leader_epoch, quorum.high_watermark
        ));
        let rows: Vec<Vec<String>> = quorum
            .voters
            .iter()
            .map(|v| {
                vec![
                    v.node_id.to_string(),
                    v.log_end_offset.to_string(),
                    v.lag.to_string(),
                ]
            })
            .collect();
        out.push_str(&render_table(&["VOTER", "LOG-END-OFFSET", "LAG"], &rows));
    }
    out
}

fn config(session: &mut Session, args: &ConfigArgs, format: Format) -> Result<i32, CliError> {
    let changes = args.changes();
    if changes.is_empty() {
        return show_config(session, args, format);
    }
    let result =
        tools::incremental_alter_configs(session, RESOURCE_BROKER, "", &changes, args.dry_run)?;
    match result {
        Ok(()) => {
            match format {
                Format::Json => emit_json(
                    COMMAND,
                    &serde_json::json!({ "dry_run": args.dry_run, "changes": changes }),
                ),
                Format::Table => {
                    let rows: Vec<Vec<String>> = changes
                        .iter()
                        .map(|c| {
                            let action = match c.op {
                                ConfigOp::Delete => "deleted".to_string(),
                                _ => format!("set to {}", c.value.as_deref().unwrap_or("")),
                            };
                            let action = if args.dry_run {
                                format!("{action} (dry run)")
                            } else {
                                action
                            };
                            vec![c.key.clone(), action]
                        })
                        .collect();
                    emit(COMMAND, &render_table(&["KEY", "CHANGE"], &rows));
                }
            }
            Ok(0)
        }
        Err(err) => Err(err.into()),
    }
}

fn show_config(session: &mut Session, args: &ConfigArgs, format: Format) -> Result<i32, CliError> {
    let info = cluster_info(session)?;
    let broker = match args.node {
        Some(id) => info
            .brokers
            .iter()
            .find(|b| b.node_id == id)
            .ok_or_else(|| {
                CliError::Message(format!(
                    "broker {id} is not in the cluster (brokers: {})",
                    info.brokers
                        .iter()
                        .map(|b| b.node_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None => info
            .brokers
            .first()
            .ok_or_else(|| CliError::Message("the cluster lists no brokers".to_string()))?,
    };
    let addr = super::client::host_port(&broker.host, broker.port);
    let node = broker.node_id.to_string();
    let entries = tools::describe_configs(
        session,
        &addr,
        RESOURCE_BROKER,
        &node,
        &format!("broker {node}"),
    )?;
    match format {
        Format::Json => emit_json(
            COMMAND,
            &serde_json::json!({ "node_id": broker.node_id, "configs": entries }),
        ),
        Format::Table => emit(
            COMMAND,
            &render_table(&["KEY", "VALUE", "SOURCE"], &tools::config_rows(&entries)),
        ),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ClusterArgs,
    }

    fn parse(args: &[&str]) -> Result<ClusterArgs, clap::Error> {
        let mut all = vec!["strom-cluster"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.args)
    }

    #[test]
    fn config_flags() {
        let args = parse(&["config", "--set", "log.retention.ms=1000", "--delete", "x"]).unwrap();
        let ClusterCommand::Config(c) = args.command else {
            panic!("not config")
        };
        assert_eq!(c.changes().len(), 2);
        assert_eq!(c.changes()[1].op, ConfigOp::Delete);
        assert!(parse(&["config", "--set", "a=1", "--node", "1"]).is_err());
        assert!(parse(&["config"]).is_ok());
    }

    #[test]
    fn info_table_marks_the_controller() {
        let info = ClusterInfo {
            cluster_id: Some("abc".to_string()),
            controller_id: 1,
            brokers: vec![
                BrokerInfo {
                    node_id: 1,
                    host: "127.0.0.1".to_string(),
                    port: 9092,
                    rack: None,
                    state: "active".to_string(),
                },
                BrokerInfo {
                    node_id: 2,
                    host: "127.0.0.2".to_string(),
                    port: 9092,
                    rack: None,
                    state: "fenced".to_string(),
                },
            ],
            topics: 2,
            internal_topics: 1,
            source: "DescribeCluster".to_string(),
            quorum: Some(QuorumInfo {
                leader_id: 1,
                leader_epoch: 3,
                high_watermark: 40,
                voters: vec![
                    VoterInfo {
                        node_id: 1,
                        log_end_offset: 40,
                        lag: 0,
                    },
                    VoterInfo {
                        node_id: 2,
                        log_end_offset: 31,
                        lag: 9,
                    },
                ],
            }),
        };
        let text = render_info(&info);
        assert!(text.contains("CLUSTER-ID       abc\n"), "{text}");
        assert!(
            text.contains(
                "ID  HOST       PORT  RACK  STATE\n1*  127.0.0.1  9092  -     active\n\
                 2   127.0.0.2  9092  -     fenced\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("LEADER          1\nEPOCH           3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "VOTER  LOG-END-OFFSET  LAG\n1      40              0\n2      31              9\n"
            ),
            "{text}"
        );
    }
}

//! `strom cluster`: what a cluster is made of and its broker configs, like
//! `rpk cluster info` and `rpk cluster config`.
//!
//! - `info`: DescribeCluster when the broker serves it, else Metadata: cluster
//!   id, controller, brokers (ID HOST PORT RACK), topic count.
//! - `config`: DescribeConfigs of a broker (resource type BROKER, KEY VALUE
//!   SOURCE); with `--set` / `--delete`, IncrementalAlterConfigs of the
//!   cluster-wide default broker resource (name "").

use super::client::Session;
use super::tools::{self, emit, emit_json, ConfigChange, ConfigOp, ConnArgs, RESOURCE_BROKER};
use super::{codes, render_table, CliError, Format, KafkaError, EXIT_ERROR};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest};
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
                })
                .collect(),
            topics,
            internal_topics,
            source: "DescribeCluster".to_string(),
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
                })
                .collect(),
            topics,
            internal_topics,
            source: "Metadata".to_string(),
        }
    };
    info.brokers.sort_by_key(|b| b.node_id);
    Ok(info)
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
            ]
        })
        .collect();
    out.push_str(&render_table(&["ID", "HOST", "PORT", "RACK"], &rows));
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
            brokers: vec![BrokerInfo {
                node_id: 1,
                host: "127.0.0.1".to_string(),
                port: 9092,
                rack: None,
            }],
            topics: 2,
            internal_topics: 1,
            source: "Metadata".to_string(),
        };
        let text = render_info(&info);
        assert!(text.contains("CLUSTER-ID       abc\n"), "{text}");
        assert!(
            text.contains("ID  HOST       PORT  RACK\n1*  127.0.0.1  9092  -\n"),
            "{text}"
        );
    }
}

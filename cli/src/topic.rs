//! `strom topic`: topic administration over the Kafka protocol, like
//! `rpk topic` and `kafka-topics`.
//!
//! - `create NAME... [-p N] [-r RF] [-c k=v]... [--dry-run]`: CreateTopics.
//! - `list [-i]`: Metadata.
//! - `describe NAME [-p] [-c]`: Metadata (summary, partitions), ListOffsets
//!   (log start offset, high watermark), DescribeConfigs (configs and sources).
//! - `alter-config NAME --set k=v --delete k --append k=v --subtract k=v`:
//!   IncrementalAlterConfigs.
//! - `add-partitions NAME... (--num N | --to TOTAL)`: CreatePartitions.
//! - `delete NAME...`: DeleteTopics.
//!
//! Exit status: 0 success, 1 a Kafka or connection error (also when any one
//! topic of several failed), 2 a usage error.

use super::client::{Session, EARLIEST, LATEST};
use super::tools::{
    self, emit, emit_json, existing_topic, str_bytes, topic_error, topic_name, ConfigChange,
    ConfigEntry, ConfigOp, ConnArgs, RESOURCE_TOPIC,
};
use super::{codes, error_name, render_table, CliError, Format, KafkaError, EXIT_ERROR};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
};
use serde::Serialize;
use std::collections::BTreeMap;

const COMMAND: &str = "topic";

/// `strom topic ...`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Topics: create, list, describe, alter configs, add partitions, delete",
    long_about = "Topic administration over the Kafka protocol, like rpk topic and \
                  kafka-topics. Exit status: 0 success, 1 a Kafka or connection error (the \
                  message names the Kafka error; also when any one of several topics failed), \
                  2 a usage error."
)]
pub struct TopicArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Output: aligned columns, or one JSON document on one line.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create topics (TOPIC STATUS per topic).
    Create(CreateArgs),
    /// List topics (NAME PARTITIONS REPLICAS).
    List(ListArgs),
    /// A topic's summary, configs (KEY VALUE SOURCE) and partitions (leader,
    /// replicas, ISR, log start offset, high watermark).
    Describe(DescribeArgs),
    /// Change a topic's configs (IncrementalAlterConfigs).
    AlterConfig(AlterConfigArgs),
    /// Add partitions to topics.
    AddPartitions(AddPartitionsArgs),
    /// Delete topics and their data.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Names of the topics to create.
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Partitions of each topic (-1: the broker's num.partitions).
    #[arg(short, long, default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..))]
    pub partitions: i32,
    /// Replication factor (-1: the broker's default.replication.factor).
    #[arg(short = 'r', long = "replicas", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i16).range(-1..))]
    pub replicas: i16,
    /// A topic config KEY=VALUE, e.g. -c retention.ms=3600000; repeatable.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE",
          value_parser = tools::parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Only validate the request (the broker creates nothing).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Also list internal topics such as __consumer_offsets.
    #[arg(short, long)]
    pub internal: bool,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The topic.
    pub topic: String,
    /// Print the partitions section (without -p or -c: every section).
    #[arg(short = 'p', long)]
    pub print_partitions: bool,
    /// Print the configs section (without -p or -c: every section).
    #[arg(short = 'c', long)]
    pub print_configs: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("changes").required(true).multiple(true)
    .args(["set", "delete", "append", "subtract"])))]
pub struct AlterConfigArgs {
    /// The topic.
    pub topic: String,
    /// Set KEY to VALUE; repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = tools::parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove the topic's override of KEY (back to the broker default); repeatable.
    #[arg(long, value_name = "KEY", value_parser = tools::parse_key)]
    pub delete: Vec<String>,
    /// Add VALUE to the list config KEY (e.g. cleanup.policy=compact); repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = tools::parse_key_value)]
    pub append: Vec<(String, String)>,
    /// Remove VALUE from the list config KEY; repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = tools::parse_key_value)]
    pub subtract: Vec<(String, String)>,
    /// Only validate the change (the broker changes nothing).
    #[arg(long)]
    pub dry_run: bool,
}

impl AlterConfigArgs {
    pub fn changes(&self) -> Vec<ConfigChange> {
        let with_value = |op: ConfigOp, pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(move |(key, value)| ConfigChange {
                    op,
                    key: key.clone(),
                    value: Some(value.clone()),
                })
                .collect::<Vec<_>>()
        };
        let mut changes = with_value(ConfigOp::Set, &self.set);
        changes.extend(self.delete.iter().map(|key| ConfigChange {
            op: ConfigOp::Delete,
            key: key.clone(),
            value: None,
        }));
        changes.extend(with_value(ConfigOp::Append, &self.append));
        changes.extend(with_value(ConfigOp::Subtract, &self.subtract));
        changes
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("count").required(true).args(["num", "to"])))]
pub struct AddPartitionsArgs {
    /// The topics.
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Add N partitions to each topic's current count.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub num: Option<i32>,
    /// Grow each topic to TOTAL partitions.
    #[arg(long, value_name = "TOTAL", value_parser = clap::value_parser!(i32).range(1..))]
    pub to: Option<i32>,
    /// Only validate the request (the broker changes nothing).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// The topics to delete.
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
}

/// Runs `strom topic ...`; returns the exit status.
pub fn run(args: TopicArgs) -> i32 {
    let mut session = args.conn.session();
    let format = args.format;
    let result = match &args.command {
        TopicCommand::Create(a) => create(&mut session, &args.conn, a, format),
        TopicCommand::List(a) => list(&mut session, a, format),
        TopicCommand::Describe(a) => describe(&mut session, a, format),
        TopicCommand::AlterConfig(a) => alter_config(&mut session, a, format),
        TopicCommand::AddPartitions(a) => add_partitions(&mut session, &args.conn, a, format),
        TopicCommand::Delete(a) => delete(&mut session, &args.conn, a, format),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("strom topic: {err}");
            EXIT_ERROR
        }
    }
}

// ---------------------------------------------------------------- per-topic status

/// The outcome for one topic of create / alter-config / add-partitions / delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicStatus {
    pub topic: String,
    /// The Kafka error name, None on success.
    pub error: Option<String>,
    /// The broker's message, or ours.
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
}

impl TopicStatus {
    fn from_code(topic: &str, code: i16, message: Option<&str>) -> TopicStatus {
        TopicStatus {
            topic: topic.to_string(),
            error: (code != codes::NONE).then(|| error_name(code)),
            message: message.filter(|m| !m.is_empty()).map(tools::one_line),
            partitions: None,
        }
    }

    fn from_error(topic: &str, err: &KafkaError) -> TopicStatus {
        TopicStatus {
            topic: topic.to_string(),
            error: Some(error_name(err.code)),
            message: Some(match &err.message {
                Some(m) => format!("{} ({m})", err.context),
                None => err.context.clone(),
            }),
            partitions: None,
        }
    }

    /// `OK`, or `ERROR_NAME: message`.
    pub fn text(&self) -> String {
        match (&self.error, &self.message) {
            (None, _) => "OK".to_string(),
            (Some(e), Some(m)) => format!("{e}: {m}"),
            (Some(e), None) => e.clone(),
        }
    }
}

/// Prints TOPIC STATUS (or JSON) and a line on stderr per failed topic;
/// exit 1 when any topic failed.
fn report(statuses: &[TopicStatus], format: Format, dry_run: bool, what: &str) -> i32 {
    match format {
        Format::Json => emit_json(
            COMMAND,
            &serde_json::json!({ "dry_run": dry_run, "topics": statuses }),
        ),
        Format::Table => {
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    let text = s.text();
                    let text = if dry_run && s.error.is_none() {
                        format!("{text} (dry run)")
                    } else {
                        text
                    };
                    vec![s.topic.clone(), text]
                })
                .collect();
            emit(COMMAND, &render_table(&["TOPIC", "STATUS"], &rows));
        }
    }
    let failed: Vec<&TopicStatus> = statuses.iter().filter(|s| s.error.is_some()).collect();
    for s in &failed {
        eprintln!("strom topic {what}: '{}': {}", s.topic, s.text());
    }
    if failed.is_empty() {
        0
    } else {
        EXIT_ERROR
    }
}

// ---------------------------------------------------------------- create

fn create(
    session: &mut Session,
    conn: &ConnArgs,
    args: &CreateArgs,
    format: Format,
) -> Result<i32, CliError> {
    let addr = session.any()?.addr().to_string();
    let (_, response) = session.call(&addr, |c| {
        c.send(|_version| {
            let mut request = CreateTopicsRequest::default();
            request.timeout_ms = conn.timeout_ms();
            request.validate_only = args.dry_run;
            request.topics = args
                .topics
                .iter()
                .map(|name| {
                    let mut t = CreatableTopic::default();
                    t.name = topic_name(name);
                    t.num_partitions = args.partitions;
                    t.replication_factor = args.replicas;
                    t.configs = args
                        .configs
                        .iter()
                        .map(|(k, v)| {
                            let mut c = CreatableTopicConfig::default();
                            c.name = str_bytes(k);
                            c.value = Some(str_bytes(v));
                            c
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })
    })?;
    let answers: BTreeMap<String, _> = response
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t))
        .collect();
    let statuses: Vec<TopicStatus> = args
        .topics
        .iter()
        .map(|name| match answers.get(name) {
            Some(t) => {
                let mut s = TopicStatus::from_code(name, t.error_code, t.error_message.as_deref());
                if t.error_code == codes::NONE && t.num_partitions > 0 {
                    s.partitions = Some(t.num_partitions);
                }
                s
            }
            None => TopicStatus {
                topic: name.clone(),
                error: Some("UNKNOWN_SERVER_ERROR".to_string()),
                message: Some("the broker's answer does not mention this topic".to_string()),
                partitions: None,
            },
        })
        .collect();
    Ok(report(&statuses, format, args.dry_run, "create"))
}

// ---------------------------------------------------------------- list

/// One row of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedTopic {
    pub name: String,
    pub partitions: usize,
    /// Replication factor (replicas of the first partition).
    pub replicas: usize,
    pub internal: bool,
    pub topic_id: Option<String>,
}

fn topic_id_text(t: &MetadataResponseTopic) -> Option<String> {
    (!t.topic_id.is_nil()).then(|| t.topic_id.to_string())
}

fn listed(t: &MetadataResponseTopic) -> ListedTopic {
    ListedTopic {
        name: t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
        partitions: t.partitions.len(),
        replicas: t
            .partitions
            .iter()
            .min_by_key(|p| p.partition_index)
            .map_or(0, |p| p.replica_nodes.len()),
        internal: t.is_internal,
        topic_id: topic_id_text(t),
    }
}

fn list(session: &mut Session, args: &ListArgs, format: Format) -> Result<i32, CliError> {
    let response = tools::metadata(session, None, false)?;
    let mut topics: Vec<ListedTopic> = response
        .topics
        .iter()
        .filter(|t| t.error_code == codes::NONE && t.name.is_some())
        .filter(|t| args.internal || !t.is_internal)
        .map(listed)
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        Format::Json => emit_json(COMMAND, &serde_json::json!({ "topics": topics })),
        Format::Table => emit(COMMAND, &render_list(&topics)),
    }
    Ok(0)
}

pub fn render_list(topics: &[ListedTopic]) -> String {
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.partitions.to_string(),
                t.replicas.to_string(),
            ]
        })
        .collect();
    render_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows)
}

// ---------------------------------------------------------------- describe

/// One partition of `describe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    pub partition: i32,
    pub leader: i32,
    pub epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub log_start_offset: Option<i64>,
    pub high_watermark: Option<i64>,
    /// The Kafka error of the partition's Metadata or ListOffsets, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything `describe` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: Option<String>,
    pub internal: bool,
    pub partition_count: usize,
    pub replication_factor: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configs: Option<Vec<ConfigEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<PartitionDescription>>,
}

fn describe(session: &mut Session, args: &DescribeArgs, format: Format) -> Result<i32, CliError> {
    let all = !args.print_partitions && !args.print_configs;
    let topic = args.topic.as_str();
    let response = tools::metadata(session, Some(&[topic.to_string()]), false)?;
    let meta = existing_topic(&response, topic)?;
    let summary = listed(meta);
    let configs = if all || args.print_configs {
        let addr = session.any()?.addr().to_string();
        if all && !session.any()?.supports(ApiKey::DescribeConfigs) {
            // Show the rest; say why the configs are missing.
            eprintln!(
                "strom topic describe: the broker at {addr} does not support DescribeConfigs; \
                 configs not shown"
            );
            None
        } else {
            Some(tools::describe_configs(
                session,
                &addr,
                RESOURCE_TOPIC,
                topic,
                &format!("topic '{topic}'"),
            )?)
        }
    } else {
        None
    };
    let partitions = if all || args.print_partitions {
        Some(describe_partitions(session, topic, meta)?)
    } else {
        None
    };
    let description = TopicDescription {
        name: summary.name,
        topic_id: summary.topic_id,
        internal: summary.internal,
        partition_count: summary.partitions,
        replication_factor: summary.replicas,
        configs,
        partitions,
    };
    match format {
        Format::Json => emit_json(COMMAND, &description),
        Format::Table => emit(COMMAND, &render_description(&description, all)),
    }
    Ok(0)
}

fn describe_partitions(
    session: &mut Session,
    topic: &str,
    meta: &MetadataResponseTopic,
) -> Result<Vec<PartitionDescription>, CliError> {
    let cluster = session.metadata(Some(&[topic.to_string()]))?;
    let keys: Vec<(String, i32)> = meta
        .partitions
        .iter()
        .map(|p| (topic.to_string(), p.partition_index))
        .collect();
    let starts = session.list_offsets(&cluster, &keys, EARLIEST)?;
    let ends = session.list_offsets(&cluster, &keys, LATEST)?;
    let mut out: Vec<PartitionDescription> = meta
        .partitions
        .iter()
        .map(|p| {
            let key = (topic.to_string(), p.partition_index);
            let mut error = (p.error_code != codes::NONE).then(|| error_name(p.error_code));
            let mut offset = |answer: Option<&Result<i64, i16>>| match answer {
                Some(Ok(o)) => Some(*o),
                Some(Err(code)) => {
                    error.get_or_insert_with(|| error_name(*code));
                    None
                }
                None => None,
            };
            let log_start_offset = offset(starts.get(&key));
            let high_watermark = offset(ends.get(&key));
            PartitionDescription {
                partition: p.partition_index,
                leader: p.leader_id.0,
                epoch: p.leader_epoch,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                log_start_offset,
                high_watermark,
                error,
            }
        })
        .collect();
    out.sort_by_key(|p| p.partition);
    Ok(out)
}

fn ids(nodes: &[i32]) -> String {
    let parts: Vec<String> = nodes.iter().map(i32::to_string).collect();
    format!("[{}]", parts.join(","))
}

pub fn render_description(d: &TopicDescription, all: bool) -> String {
    let mut sections = Vec::new();
    if all {
        let summary = vec![
            vec!["NAME".to_string(), d.name.clone()],
            vec![
                "ID".to_string(),
                d.topic_id.clone().unwrap_or_else(|| "-".to_string()),
            ],
            vec!["INTERNAL".to_string(), d.internal.to_string()],
            vec!["PARTITIONS".to_string(), d.partition_count.to_string()],
            vec!["REPLICAS".to_string(), d.replication_factor.to_string()],
        ];
        let table = render_table(&["", ""], &summary);
        sections.push(format!(
            "SUMMARY\n=======\n{}",
            table.split_once('\n').map_or("", |(_, rest)| rest)
        ));
    }
    if let Some(configs) = &d.configs {
        let table = render_table(&["KEY", "VALUE", "SOURCE"], &tools::config_rows(configs));
        sections.push(if all {
            format!("CONFIGS\n=======\n{table}")
        } else {
            table
        });
    }
    if let Some(partitions) = &d.partitions {
        let rows: Vec<Vec<String>> = partitions
            .iter()
            .map(|p| {
                let offset = |o: Option<i64>| match (o, &p.error) {
                    (Some(o), _) => o.to_string(),
                    (None, Some(e)) => e.clone(),
                    (None, None) => "-".to_string(),
                };
                vec![
                    p.partition.to_string(),
                    p.leader.to_string(),
                    p.epoch.to_string(),
                    ids(&p.replicas),
                    ids(&p.isr),
                    offset(p.log_start_offset),
                    offset(p.high_watermark),
                ]
            })
            .collect();
        let table = render_table(
            &[
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "LOG-START-OFFSET",
                "HIGH-WATERMARK",
            ],
            &rows,
        );
        sections.push(if all {
            format!("PARTITIONS\n==========\n{table}")
        } else {
            table
        });
    }
    sections.join("\n")
}

// ---------------------------------------------------------------- alter-config

fn alter_config(
    session: &mut Session,
    args: &AlterConfigArgs,
    format: Format,
) -> Result<i32, CliError> {
    let changes = args.changes();
    let status = match tools::incremental_alter_configs(
        session,
        RESOURCE_TOPIC,
        &args.topic,
        &changes,
        args.dry_run,
    )? {
        Ok(()) => TopicStatus::from_code(&args.topic, codes::NONE, None),
        Err(err) => TopicStatus::from_error(&args.topic, &err),
    };
    Ok(report(&[status], format, args.dry_run, "alter-config"))
}

// ---------------------------------------------------------------- add-partitions

/// The total partition count to ask for: `--to`, or the current count plus `--num`.
pub fn partition_target(current: Option<usize>, num: Option<i32>, to: Option<i32>) -> Option<i32> {
    match (num, to) {
        (_, Some(total)) => Some(total),
        (Some(n), None) => {
            let current = i32::try_from(current?).ok()?;
            current.checked_add(n)
        }
        (None, None) => None,
    }
}

fn add_partitions(
    session: &mut Session,
    conn: &ConnArgs,
    args: &AddPartitionsArgs,
    format: Format,
) -> Result<i32, CliError> {
    let response = tools::metadata(session, Some(&args.topics), false)?;
    let mut statuses: BTreeMap<String, TopicStatus> = BTreeMap::new();
    let mut requests: Vec<(String, i32)> = Vec::new();
    for topic in &args.topics {
        let current = match existing_topic(&response, topic) {
            Ok(t) => Some(t.partitions.len()),
            Err(CliError::Kafka(err)) if args.num.is_some() => {
                statuses.insert(topic.clone(), TopicStatus::from_error(topic, &err));
                continue;
            }
            Err(CliError::Kafka(_)) => None,
            Err(other) => return Err(other),
        };
        match partition_target(current, args.num, args.to) {
            Some(total) => requests.push((topic.clone(), total)),
            None => {
                let err = KafkaError::new(
                    37, // INVALID_PARTITIONS
                    format!("topic '{topic}' would have more than 2^31 partitions"),
                );
                statuses.insert(topic.clone(), TopicStatus::from_error(topic, &err));
            }
        }
    }
    if !requests.is_empty() {
        let addr = session.any()?.addr().to_string();
        let (_, answer) = session.call(&addr, |c| {
            c.send(|_version| {
                let mut request = CreatePartitionsRequest::default();
                request.timeout_ms = conn.timeout_ms();
                request.validate_only = args.dry_run;
                request.topics = requests
                    .iter()
                    .map(|(topic, total)| {
                        let mut t = CreatePartitionsTopic::default();
                        t.name = topic_name(topic);
                        t.count = *total;
                        t.assignments = None;
                        t
                    })
                    .collect();
                request
            })
        })?;
        for r in &answer.results {
            let name = r.name.0.to_string();
            let mut status = if r.error_code == codes::UNKNOWN_TOPIC_OR_PARTITION {
                TopicStatus::from_error(&name, &topic_error(r.error_code, &name, "", None))
            } else {
                TopicStatus::from_code(&name, r.error_code, r.error_message.as_deref())
            };
            if r.error_code == codes::NONE {
                status.partitions = requests.iter().find(|(t, _)| *t == name).map(|(_, n)| *n);
            }
            statuses.insert(name, status);
        }
        for (topic, _) in &requests {
            statuses
                .entry(topic.clone())
                .or_insert_with(|| TopicStatus {
                    topic: topic.clone(),
                    error: Some("UNKNOWN_SERVER_ERROR".to_string()),
                    message: Some("the broker's answer does not mention this topic".to_string()),
                    partitions: None,
                });
        }
    }
    let ordered: Vec<TopicStatus> = args
        .topics
        .iter()
        .filter_map(|t| statuses.get(t).cloned())
        .collect();
    Ok(report(&ordered, format, args.dry_run, "add-partitions"))
}

// ---------------------------------------------------------------- delete

fn delete(
    session: &mut Session,
    conn: &ConnArgs,
    args: &DeleteArgs,
    format: Format,
) -> Result<i32, CliError> {
    let addr = session.any()?.addr().to_string();
    let (_, response) = session.call(&addr, |c| {
        c.send(|version| {
            let mut request = DeleteTopicsRequest::default();
            request.timeout_ms = conn.timeout_ms();
            if version >= 6 {
                request.topics = args
                    .topics
                    .iter()
                    .map(|name| {
                        let mut t = DeleteTopicState::default();
                        t.name = Some(topic_name(name));
                        t
                    })
                    .collect();
            } else {
                request.topic_names = args.topics.iter().map(|n| topic_name(n)).collect();
            }
            request
        })
    })?;
    let answers: BTreeMap<String, (i16, Option<String>)> = response
        .responses
        .iter()
        .filter_map(|r| {
            let name = r.name.as_ref()?.0.to_string();
            Some((
                name,
                (
                    r.error_code,
                    r.error_message.as_ref().map(|m| m.to_string()),
                ),
            ))
        })
        .collect();
    let statuses: Vec<TopicStatus> = args
        .topics
        .iter()
        .map(|name| match answers.get(name) {
            Some((code, _)) if *code == codes::UNKNOWN_TOPIC_OR_PARTITION => {
                TopicStatus::from_error(name, &topic_error(*code, name, "", None))
            }
            Some((code, message)) => TopicStatus::from_code(name, *code, message.as_deref()),
            None => TopicStatus {
                topic: name.clone(),
                error: Some("UNKNOWN_SERVER_ERROR".to_string()),
                message: Some("the broker's answer does not mention this topic".to_string()),
                partitions: None,
            },
        })
        .collect();
    Ok(report(&statuses, format, false, "delete"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: TopicArgs,
    }

    fn parse(args: &[&str]) -> Result<TopicArgs, clap::Error> {
        let mut all = vec!["strom-topic"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.args)
    }

    #[test]
    fn create_defaults_to_the_broker_defaults() {
        let args = parse(&["create", "a", "b"]).unwrap();
        let TopicCommand::Create(c) = args.command else {
            panic!("not create")
        };
        assert_eq!(c.topics, ["a", "b"]);
        assert_eq!((c.partitions, c.replicas, c.dry_run), (-1, -1, false));
        let args = parse(&[
            "create",
            "a",
            "-p",
            "3",
            "-r",
            "1",
            "-c",
            "retention.ms=5",
            "-c",
            "cleanup.policy=delete",
            "--dry-run",
            "--format",
            "json",
        ])
        .unwrap();
        assert_eq!(args.format, Format::Json);
        let TopicCommand::Create(c) = args.command else {
            panic!("not create")
        };
        assert_eq!((c.partitions, c.replicas, c.dry_run), (3, 1, true));
        assert_eq!(
            c.configs,
            vec![
                ("retention.ms".to_string(), "5".to_string()),
                ("cleanup.policy".to_string(), "delete".to_string())
            ]
        );
        assert!(parse(&["create"]).is_err());
        assert!(parse(&["create", "a", "-p", "-2"]).is_err());
        assert!(parse(&["create", "a", "-c", "novalue"]).is_err());
    }

    #[test]
    fn alter_config_needs_a_change_and_keeps_their_order_by_kind() {
        assert!(parse(&["alter-config", "t"]).is_err());
        let args = parse(&[
            "alter-config",
            "t",
            "--delete",
            "segment.ms",
            "--set",
            "retention.ms=1",
            "--append",
            "cleanup.policy=compact",
        ])
        .unwrap();
        let TopicCommand::AlterConfig(a) = args.command else {
            panic!("not alter-config")
        };
        let changes = a.changes();
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.op, c.key.as_str(), c.value.as_deref()))
                .collect::<Vec<_>>(),
            vec![
                (ConfigOp::Set, "retention.ms", Some("1")),
                (ConfigOp::Delete, "segment.ms", None),
                (ConfigOp::Append, "cleanup.policy", Some("compact")),
            ]
        );
    }

    #[test]
    fn add_partitions_takes_num_or_to() {
        assert!(parse(&["add-partitions", "t"]).is_err());
        assert!(parse(&["add-partitions", "t", "--num", "1", "--to", "5"]).is_err());
        assert!(parse(&["add-partitions", "t", "--num", "0"]).is_err());
        assert!(parse(&["add-partitions", "t", "--to", "5"]).is_ok());
        assert_eq!(partition_target(Some(3), Some(2), None), Some(5));
        assert_eq!(partition_target(Some(3), None, Some(8)), Some(8));
        assert_eq!(partition_target(None, None, Some(8)), Some(8));
        assert_eq!(partition_target(None, Some(2), None), None);
        assert_eq!(
            partition_target(Some(i32::MAX as usize), Some(1), None),
            None
        );
    }

    #[test]
    fn statuses_read_ok_or_the_error_and_message() {
        assert_eq!(TopicStatus::from_code("t", 0, None).text(), "OK");
        assert_eq!(
            TopicStatus::from_code("t", 36, Some("Topic 't' already exists.")).text(),
            "TOPIC_ALREADY_EXISTS: Topic 't' already exists."
        );
        assert_eq!(
            TopicStatus::from_code("t", 37, Some("")).text(),
            "INVALID_PARTITIONS"
        );
        let err = topic_error(3, "t", "", None);
        assert_eq!(
            TopicStatus::from_error("t", &err).text(),
            "UNKNOWN_TOPIC_OR_PARTITION: topic 't' does not exist"
        );
    }

    #[test]
    fn list_table_has_name_partitions_replicas() {
        let topics = vec![ListedTopic {
            name: "orders".to_string(),
            partitions: 3,
            replicas: 1,
            internal: false,
            topic_id: None,
        }];
        assert_eq!(
            render_list(&topics),
            "NAME    PARTITIONS  REPLICAS\norders  3           1\n"
        );
    }

    #[test]
    fn description_shows_sections() {
        let d = TopicDescription {
            name: "t".to_string(),
            topic_id: Some("id".to_string()),
            internal: false,
            partition_count: 1,
            replication_factor: 1,
            configs: Some(vec![ConfigEntry {
                key: "retention.ms".to_string(),
                value: Some("5".to_string()),
                source: "DYNAMIC_TOPIC_CONFIG".to_string(),
                read_only: false,
                sensitive: false,
            }]),
            partitions: Some(vec![PartitionDescription {
                partition: 0,
                leader: 1,
                epoch: 0,
                replicas: vec![1],
                isr: vec![1],
                log_start_offset: Some(0),
                high_watermark: Some(10),
                error: None,
            }]),
        };
        let text = render_description(&d, true);
        assert!(
            text.starts_with("SUMMARY\n=======\nNAME        t\n"),
            "{text}"
        );
        assert!(
            text.contains("retention.ms  5      DYNAMIC_TOPIC_CONFIG"),
            "{text}"
        );
        assert!(
            text.contains("0          1       0      [1]       [1]  0                 10"),
            "{text}"
        );
        let only = render_description(&TopicDescription { configs: None, ..d }, false);
        assert!(only.starts_with("PARTITION  LEADER"), "{only}");
    }
}

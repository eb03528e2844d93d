//! `strom group`: consumer group administration over the Kafka protocol, like
//! `kafka-consumer-groups` and `rpk group`.
//!
//! - `list [--state S]...`: ListGroups on every broker.
//! - `describe GROUP`: DescribeGroups (members and their decoded assignments),
//!   OffsetFetch (committed offsets), Metadata (partitions), ListOffsets (high
//!   watermarks) → lag per partition.
//! - `reset-offsets GROUP (--topic T[:P,...]... | --all-topics) MODE [--execute]`:
//!   a dry run unless `--execute`, which commits with OffsetCommit as a simple
//!   (non-member) admin commit; refused while the group has active members.
//! - `delete GROUP...`: DeleteGroups.
//! - `delete-offsets GROUP --topic T[:P,...]...`: OffsetDelete.
//!
//! Exit status: 0 success, 1 a Kafka or connection error (the message names the
//! Kafka error, e.g. `GROUP_ID_NOT_FOUND`), 2 a usage error.

use super::client::{self, Client, ClusterMeta, Node, Session, EARLIEST, LATEST};
use super::reset::{self, PartitionState, ResetMode, TopicSpec};
use super::{
    cell, codes, error_name, is_coordinator_retriable, render_table, CliError, Format, KafkaError,
    EXIT_ERROR,
};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

/// `strom group ...`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Consumer groups: list, describe (lag), reset offsets, delete",
    long_about = "Consumer group administration over the Kafka protocol, like \
                  kafka-consumer-groups and rpk group. Exit status: 0 success, 1 a Kafka or \
                  connection error (the message names the Kafka error), 2 a usage error."
)]
pub struct GroupArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// Options of every `strom group` command.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Brokers to bootstrap from [default: $STROM_BROKERS, else $STROM_BOOTSTRAP, else 127.0.0.1:9092].
    #[arg(
        long,
        visible_alias = "brokers",
        global = true,
        value_name = "HOST:PORT[,HOST:PORT...]"
    )]
    pub bootstrap: Option<String>,
    /// Output: aligned columns, or one JSON object on one line.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Seconds to wait for a connection and for each answer.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// List the consumer groups (GROUP, STATE, PROTOCOL-TYPE).
    List(ListArgs),
    /// State, members and their assignments, and the lag of every partition.
    Describe(DescribeArgs),
    /// Move the committed offsets of an inactive group (dry run unless --execute).
    ResetOffsets(ResetArgs),
    /// Delete groups that have no active members, with their committed offsets.
    Delete(DeleteArgs),
    /// Delete a group's committed offsets of some topics.
    DeleteOffsets(DeleteOffsetsArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only groups in this state (Stable, Empty, PreparingRebalance,
    /// CompletingRebalance, Dead); repeat for several.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    pub states: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    /// The group id.
    pub group: String,
}

#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    /// The group id.
    pub group: String,
    /// A topic (every partition) or TOPIC:P,P... (those partitions); repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,P...]", value_parser = reset::parse_topic_spec,
          required_unless_present = "all_topics", conflicts_with = "all_topics")]
    pub topics: Vec<TopicSpec>,
    /// Every partition the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    #[command(flatten)]
    pub mode: ResetModeArgs,
    /// Commit the new offsets (without it: only show them).
    #[arg(long)]
    pub execute: bool,
    /// Only show the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
}

/// Exactly one reset mode.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ResetModeArgs {
    /// The log start offset of each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// The log end offset (high watermark) of each partition.
    #[arg(long)]
    pub to_latest: bool,
    /// This offset (clamped to each partition's log start and end).
    #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// The first record at or after this time, e.g. 2026-11-21T10:00:00Z (a time
    /// zone is required); the log end when there is none.
    #[arg(long, value_name = "DATETIME", value_parser = reset::parse_datetime)]
    pub to_datetime: Option<i64>,
    /// The committed offset plus N (N may be negative), clamped.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
}

impl ResetModeArgs {
    pub fn mode(&self) -> ResetMode {
        if self.to_earliest {
            ResetMode::Earliest
        } else if self.to_latest {
            ResetMode::Latest
        } else if let Some(offset) = self.to_offset {
            ResetMode::Offset(offset)
        } else if let Some(ms) = self.to_datetime {
            ResetMode::Datetime(ms)
        } else if let Some(n) = self.shift_by {
            ResetMode::ShiftBy(n)
        } else {
            unreachable!("clap requires one reset mode")
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    /// The group ids.
    #[arg(required = true, value_name = "GROUP")]
    pub groups: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct DeleteOffsetsArgs {
    /// The group id.
    pub group: String,
    /// A topic (every partition) or TOPIC:P,P...; repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:P,P...]", required = true,
          value_parser = reset::parse_topic_spec)]
    pub topics: Vec<TopicSpec>,
}

/// Group states as Kafka names them (classic and KIP-848 groups).
pub const GROUP_STATES: &[&str] = &[
    "Stable",
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Dead",
    "Assigning",
    "Reconciling",
];

/// `--state`: any case, answered in Kafka's spelling.
pub fn parse_state(text: &str) -> Result<String, String> {
    let wanted: String = text.chars().filter(|c| *c != '_' && *c != '-').collect();
    GROUP_STATES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(&wanted))
        .map(|s| s.to_string())
        .ok_or_else(|| {
            format!(
                "unknown group state '{text}' (one of {})",
                GROUP_STATES.join(", ")
            )
        })
}

/// States in which a group has (or is gathering) members.
fn is_active(state: &str) -> bool {
    !matches!(state, "Empty" | "Dead" | "")
}

/// Runs `strom group ...`; returns the exit status.
pub fn run(args: GroupArgs) -> i32 {
    let env = super::tools::brokers_from_env();
    let bootstrap = client::bootstrap_from(args.common.bootstrap.as_deref(), env.as_deref());
    let mut session = Session::new(&bootstrap, Duration::from_secs(args.common.timeout));
    let format = args.common.format;
    let result = match &args.command {
        GroupCommand::List(a) => list(&mut session, a, format),
        GroupCommand::Describe(a) => describe(&mut session, a, format),
        GroupCommand::ResetOffsets(a) => reset_offsets(&mut session, a, format),
        GroupCommand::Delete(a) => delete(&mut session, a, format),
        GroupCommand::DeleteOffsets(a) => delete_offsets(&mut session, a, format),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            eprintln!("strom group: {err}");
            EXIT_ERROR
        }
    }
}

/// Writes to stdout. A closed pipe (`| head`) ends the command quietly, like
/// SIGPIPE would; any other failure (a full disk behind `> file`) is reported
/// and the command fails, so a truncated listing is never taken for a whole one.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("strom group: cannot write the output: {err}");
        std::process::exit(EXIT_ERROR);
    }
}

fn emit_json<T: Serialize>(value: &T) {
    let text = serde_json::to_string(value).expect("serializable output");
    emit(&format!("{text}\n"));
}

fn str_bytes(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A group request's error as a message naming the group.
pub fn group_error(code: i16, group: &str, what: &str, message: Option<&str>) -> KafkaError {
    let context = match code {
        codes::GROUP_ID_NOT_FOUND => format!("group '{group}' does not exist"),
        codes::NON_EMPTY_GROUP => format!("group '{group}' is not empty (it has active members)"),
        24 => format!("'{group}' is not a valid group id"),
        30 => format!("not authorized to access group '{group}'"),
        codes::COORDINATOR_NOT_AVAILABLE
        | codes::COORDINATOR_LOAD_IN_PROGRESS
        | codes::NOT_COORDINATOR => {
            format!("the coordinator of group '{group}' is not available; try again")
        }
        codes::UNKNOWN_MEMBER_ID
        | codes::ILLEGAL_GENERATION
        | codes::REBALANCE_IN_PROGRESS
        | codes::STALE_MEMBER_EPOCH => format!(
            "{what} for group '{group}' refused: the group has active members \
             (stop its consumers first)"
        ),
        _ => format!("{what} for group '{group}' failed"),
    };
    KafkaError::new(code, context).with_message(message)
}

// ---------------------------------------------------------------- list

/// One row of `list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedGroup {
    pub group: String,
    pub state: String,
    pub protocol_type: String,
}

fn list(session: &mut Session, args: &ListArgs, format: Format) -> Result<i32, CliError> {
    let meta = session.metadata(Some(&[]))?;
    let mut addrs: Vec<String> = meta.brokers.values().map(Node::addr).collect();
    if addrs.is_empty() {
        addrs.push(session.any()?.addr().to_string());
    }
    let mut groups: BTreeMap<String, ListedGroup> = BTreeMap::new();
    for addr in addrs {
        let (version, response) = session.call(&addr, |c| {
            c.send(|version| {
                let mut request = ListGroupsRequest::default();
                if version >= 4 {
                    request.states_filter = args.states.iter().map(|s| str_bytes(s)).collect();
                }
                request
            })
        })?;
        if response.error_code != codes::NONE {
            return Err(KafkaError::new(
                response.error_code,
                format!("ListGroups on the broker at {addr} failed"),
            )
            .into());
        }
        for g in response.groups {
            let state = if version >= 4 {
                g.group_state.to_string()
            } else {
                String::new()
            };
            groups.insert(
                g.group_id.0.to_string(),
                ListedGroup {
                    group: g.group_id.0.to_string(),
                    state,
                    protocol_type: g.protocol_type.to_string(),
                },
            );
        }
    }
    // Before v4 the broker cannot filter; a state it did not give cannot match.
    let groups: Vec<ListedGroup> = groups
        .into_values()
        .filter(|g| args.states.is_empty() || args.states.contains(&g.state))
        .collect();
    match format {
        Format::Json => emit_json(&serde_json::json!({ "groups": groups })),
        Format::Table => emit(&render_list(&groups)),
    }
    Ok(0)
}

pub fn render_list(groups: &[ListedGroup]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group.clone(),
                dash_if_empty(&g.state),
                dash_if_empty(&g.protocol_type),
            ]
        })
        .collect();
    render_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows)
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text.to_string()
    }
}

// ---------------------------------------------------------------- describe

/// Topics and partitions of a consumer's assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicAssignment {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// Decodes a member's assignment in the consumer protocol
/// (`ConsumerProtocolAssignment` v0-3: int16 version, [topic, [partition]],
/// user data). Newer versions are read as v3, as Kafka does; empty bytes are no
/// assignment (yet). Topics and partitions come out sorted.
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicAssignment>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.len() < 2 {
        return Err("assignment shorter than its version".to_string());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    let version = buf.get_i16();
    if version < 0 {
        return Err(format!("assignment has a negative version {version}"));
    }
    let pairs: Vec<(String, Vec<i32>)> =
        match ConsumerProtocolAssignment::decode(&mut buf.clone(), version.min(3)) {
            Ok(a) => a
                .assigned_partitions
                .into_iter()
                .map(|tp| (tp.topic.0.to_string(), tp.partitions))
                .collect(),
            // Some clients leave out the trailing user data: read what is there.
            Err(e) => lenient_partitions(&mut buf)
                .ok_or_else(|| format!("undecodable assignment (v{version}): {e}"))?,
        };
    let mut merged: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (topic, partitions) in pairs {
        merged.entry(topic).or_default().extend(partitions);
    }
    Ok(merged
        .into_iter()
        .map(|(topic, partitions)| TopicAssignment {
            topic,
            partitions: partitions.into_iter().collect(),
        })
        .collect())
}

/// The topic-partition array alone, ignoring anything after it.
fn lenient_partitions(buf: &mut Bytes) -> Option<Vec<(String, Vec<i32>)>> {
    let count = read_i32(buf)?;
    let mut out = Vec::new();
    for _ in 0..count.max(0) {
        if buf.remaining() < 2 {
            return None;
        }
        let len = usize::try_from(buf.get_i16()).ok()?;
        if buf.remaining() < len {
            return None;
        }
        let topic = String::from_utf8(buf.split_to(len).to_vec()).ok()?;
        let n = read_i32(buf)?;
        let mut partitions = Vec::new();
        for _ in 0..n.max(0) {
            partitions.push(read_i32(buf)?);
        }
        out.push((topic, partitions));
    }
    Some(out)
}

fn read_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

/// A member of a described group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicAssignment>,
    /// Why the assignment could not be shown (not the consumer protocol, or
    /// undecodable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_error: Option<String>,
}

/// One partition row of `describe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub member_id: Option<String>,
    pub host: Option<String>,
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything `describe` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    pub group: String,
    pub coordinator: Node,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    pub partitions: Vec<PartitionLag>,
    /// Sum of the known lags.
    pub total_lag: i64,
}

/// What DescribeGroups said about a group.
struct DescribedGroup {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<MemberDescription>,
}

fn describe_group(session: &mut Session, group: &str) -> Result<DescribedGroup, CliError> {
    session.with_coordinator(group, |c: &mut Client| {
        let (_, response) = c.send(|_version| {
            let mut request = DescribeGroupsRequest::default();
            request.groups = vec![GroupId(str_bytes(group))];
            request
        })?;
        let g = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| CliError::Protocol {
                addr: c.addr().to_string(),
                reason: format!("DescribeGroups answer does not mention group '{group}'"),
            })?;
        if g.error_code != codes::NONE {
            return Err(group_error(
                g.error_code,
                group,
                "DescribeGroups",
                g.error_message.as_deref(),
            )
            .into());
        }
        let is_consumer = g.protocol_type.as_str() == "consumer";
        let members = g
            .members
            .iter()
            .map(|m| {
                let (assignment, assignment_error) = if !is_consumer {
                    let note = (!m.member_assignment.is_empty()).then(|| {
                        format!(
                            "protocol type '{}' is not the consumer protocol",
                            g.protocol_type.as_str()
                        )
                    });
                    (Vec::new(), note)
                } else {
                    match decode_assignment(&m.member_assignment) {
                        Ok(a) => (a, None),
                        Err(e) => (Vec::new(), Some(e)),
                    }
                };
                MemberDescription {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                    assignment_error,
                }
            })
            .collect();
        Ok(DescribedGroup {
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        })
    })
}

/// The group's committed offsets (partitions without one are left out).
fn fetch_offsets(
    session: &mut Session,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    session.with_coordinator(group, |c: &mut Client| {
        let (version, response) = c.send(|version| {
            let mut request = OffsetFetchRequest::default();
            if version >= 8 {
                let mut g = OffsetFetchRequestGroup::default();
                g.group_id = GroupId(str_bytes(group));
                g.member_id = None;
                g.member_epoch = -1;
                g.topics = None;
                request.groups = vec![g];
            } else {
                request.group_id = GroupId(str_bytes(group));
                request.topics = None;
            }
            request
        })?;
        let mut partitions: Vec<(String, i32, i64, i16)> = Vec::new();
        let group_code = if version >= 8 {
            let g = response
                .groups
                .into_iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| CliError::Protocol {
                    addr: c.addr().to_string(),
                    reason: format!("OffsetFetch answer does not mention group '{group}'"),
                })?;
            for t in g.topics {
                for p in t.partitions {
                    partitions.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            g.error_code
        } else {
            for t in response.topics {
                for p in t.partitions {
                    partitions.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.error_code,
                    ));
                }
            }
            response.error_code
        };
        if group_code != codes::NONE {
            return Err(group_error(group_code, group, "OffsetFetch", None).into());
        }
        let mut offsets = BTreeMap::new();
        for (topic, partition, offset, code) in partitions {
            if code != codes::NONE {
                return Err(KafkaError::new(
                    code,
                    format!("OffsetFetch of {topic}-{partition} for group '{group}' failed"),
                )
                .into());
            }
            if offset >= 0 {
                offsets.insert((topic, partition), offset);
            }
        }
        Ok(offsets)
    })
}

/// The partitions to show for a group: every partition (per Metadata) of every
/// topic it has committed offsets for or is assigned, plus any partition those
/// name that Metadata does not know.
pub fn partitions_to_show(
    committed: &BTreeMap<(String, i32), i64>,
    members: &[MemberDescription],
    meta: &ClusterMeta,
) -> BTreeSet<(String, i32)> {
    let mut out = BTreeSet::new();
    let mut topics = BTreeSet::new();
    for (topic, partition) in committed.keys() {
        topics.insert(topic.clone());
        out.insert((topic.clone(), *partition));
    }
    for m in members {
        for a in &m.assignment {
            topics.insert(a.topic.clone());
            for p in &a.partitions {
                out.insert((a.topic.clone(), *p));
            }
        }
    }
    for topic in topics {
        for p in meta.partitions(&topic).unwrap_or_default() {
            out.insert((topic.clone(), p));
        }
    }
    out
}

/// The partition rows of `describe`: committed offset, high watermark, lag and
/// the member the partition is assigned to.
pub fn partition_rows(
    partitions: &BTreeSet<(String, i32)>,
    committed: &BTreeMap<(String, i32), i64>,
    members: &[MemberDescription],
    ends: &BTreeMap<(String, i32), client::OffsetAnswer>,
) -> Vec<PartitionLag> {
    let mut owner: BTreeMap<(String, i32), &MemberDescription> = BTreeMap::new();
    for m in members {
        for a in &m.assignment {
            for p in &a.partitions {
                owner.insert((a.topic.clone(), *p), m);
            }
        }
    }
    partitions
        .iter()
        .map(|key| {
            let current = committed.get(key).copied();
            let (end, error) = match ends.get(key) {
                Some(Ok(end)) => (Some(*end), None),
                Some(Err(code)) => (None, Some(error_name(*code))),
                None => (None, None),
            };
            let lag = match (current, end) {
                (Some(current), Some(end)) => Some((end - current).max(0)),
                _ => None,
            };
            let m = owner.get(key);
            PartitionLag {
                topic: key.0.clone(),
                partition: key.1,
                current_offset: current,
                log_end_offset: end,
                lag,
                member_id: m.map(|m| m.member_id.clone()),
                host: m.map(|m| m.host.clone()),
                client_id: m.map(|m| m.client_id.clone()),
                error,
            }
        })
        .collect()
}

fn describe(session: &mut Session, args: &DescribeArgs, format: Format) -> Result<i32, CliError> {
    let group = args.group.as_str();
    let coordinator = session.find_coordinator(group)?;
    let described = describe_group(session, group)?;
    let committed = fetch_offsets(session, group)?;
    if described.state == "Dead" && described.members.is_empty() && committed.is_empty() {
        return Err(group_error(codes::GROUP_ID_NOT_FOUND, group, "DescribeGroups", None).into());
    }
    let mut topics: BTreeSet<String> = committed.keys().map(|(t, _)| t.clone()).collect();
    for m in &described.members {
        topics.extend(m.assignment.iter().map(|a| a.topic.clone()));
    }
    let topics: Vec<String> = topics.into_iter().collect();
    let meta = if topics.is_empty() {
        ClusterMeta::default()
    } else {
        session.metadata(Some(&topics))?
    };
    let shown = partitions_to_show(&committed, &described.members, &meta);
    let shown_list: Vec<(String, i32)> = shown.iter().cloned().collect();
    let ends = if shown_list.is_empty() {
        BTreeMap::new()
    } else {
        session.list_offsets(&meta, &shown_list, LATEST)?
    };
    let partitions = partition_rows(&shown, &committed, &described.members, &ends);
    let total_lag = partitions.iter().filter_map(|p| p.lag).sum();
    let description = GroupDescription {
        group: group.to_string(),
        coordinator,
        state: described.state,
        protocol_type: described.protocol_type,
        protocol: described.protocol,
        members: described.members,
        partitions,
        total_lag,
    };
    match format {
        Format::Json => emit_json(&description),
        Format::Table => emit(&render_description(&description)),
    }
    Ok(0)
}

/// `orders:0,1 payments:2`.
fn assignment_text(member: &MemberDescription) -> String {
    if let Some(error) = &member.assignment_error {
        return format!("? ({error})");
    }
    if member.assignment.is_empty() {
        return "-".to_string();
    }
    member
        .assignment
        .iter()
        .map(|a| {
            let partitions: Vec<String> = a.partitions.iter().map(i32::to_string).collect();
            format!("{}:{}", a.topic, partitions.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render_description(d: &GroupDescription) -> String {
    let protocol = match (d.protocol_type.as_str(), d.protocol.as_str()) {
        ("", _) => "-".to_string(),
        (t, "") => t.to_string(),
        (t, p) => format!("{t} ({p})"),
    };
    let summary = vec![
        vec!["GROUP".to_string(), d.group.clone()],
        vec![
            "COORDINATOR".to_string(),
            format!("{} ({})", d.coordinator.node_id, d.coordinator.addr()),
        ],
        vec!["STATE".to_string(), dash_if_empty(&d.state)],
        vec!["PROTOCOL".to_string(), protocol],
        vec!["MEMBERS".to_string(), d.members.len().to_string()],
        vec!["TOTAL-LAG".to_string(), d.total_lag.to_string()],
    ];
    let mut out = String::new();
    // Key/value lines: a table without a header line.
    let table = render_table(&["", ""], &summary);
    out.push_str(table.split_once('\n').map_or("", |(_, rest)| rest));
    out.push('\n');
    if d.members.is_empty() {
        out.push_str(&format!("group '{}' has no active members\n", d.group));
    } else {
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    m.member_id.clone(),
                    m.instance_id.clone().unwrap_or_else(|| "-".to_string()),
                    dash_if_empty(&m.client_id),
                    dash_if_empty(&m.host),
                    assignment_text(m),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "MEMBER-ID",
                "INSTANCE-ID",
                "CLIENT-ID",
                "HOST",
                "ASSIGNMENT",
            ],
            &rows,
        ));
    }
    out.push('\n');
    if d.partitions.is_empty() {
        out.push_str(&format!(
            "group '{}' has no committed offsets and no assigned partitions\n",
            d.group
        ));
    } else {
        let rows: Vec<Vec<String>> = d
            .partitions
            .iter()
            .map(|p| {
                vec![
                    p.topic.clone(),
                    p.partition.to_string(),
                    cell(p.current_offset),
                    match (&p.error, p.log_end_offset) {
                        (Some(error), _) => error.clone(),
                        (None, end) => cell(end),
                    },
                    cell(p.lag),
                    p.member_id.clone().unwrap_or_else(|| "-".to_string()),
                    p.host.clone().unwrap_or_else(|| "-".to_string()),
                    p.client_id.clone().unwrap_or_else(|| "-".to_string()),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ],
            &rows,
        ));
    }
    out
}

// ---------------------------------------------------------------- reset-offsets

/// One partition of a reset plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResetRow {
    pub topic: String,
    pub partition: i32,
    /// The committed offset before, if any.
    pub old: Option<i64>,
    pub new: i64,
}

/// A reset plan, executed or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResetPlan {
    pub group: String,
    pub state: String,
    pub executed: bool,
    pub partitions: Vec<ResetRow>,
}

/// The partitions a reset covers: `--topic` specs checked against Metadata, or
/// (`--all-topics`) every partition with a committed offset.
pub fn reset_targets(
    specs: &[TopicSpec],
    all_topics: bool,
    committed: &BTreeMap<(String, i32), i64>,
    meta: &ClusterMeta,
) -> Result<Vec<(String, i32)>, CliError> {
    if all_topics {
        return Ok(committed.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    for spec in specs {
        let topic = &spec.topic;
        let existing = match meta.topics.get(topic) {
            Some(t) if t.error_code != codes::NONE => {
                let context = if t.error_code == codes::UNKNOWN_TOPIC_OR_PARTITION {
                    format!("topic '{topic}' does not exist")
                } else {
                    format!("Metadata of topic '{topic}' failed")
                };
                return Err(KafkaError::new(t.error_code, context).into());
            }
            Some(t) => t.leaders.keys().copied().collect::<Vec<i32>>(),
            None => {
                return Err(KafkaError::new(
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic '{topic}' does not exist"),
                )
                .into())
            }
        };
        match &spec.partitions {
            None => out.extend(existing.iter().map(|p| (topic.clone(), *p))),
            Some(wanted) => {
                for p in wanted {
                    if !existing.contains(p) {
                        return Err(KafkaError::new(
                            codes::UNKNOWN_TOPIC_OR_PARTITION,
                            format!(
                                "partition {p} of topic '{topic}' does not exist (it has {} partitions)",
                                existing.len()
                            ),
                        )
                        .into());
                    }
                    out.insert((topic.clone(), *p));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// An answer from ListOffsets, or an error naming the partition.
fn offset_of(
    answers: &BTreeMap<(String, i32), client::OffsetAnswer>,
    key: &(String, i32),
    what: &str,
) -> Result<i64, CliError> {
    match answers.get(key) {
        Some(Ok(offset)) => Ok(*offset),
        Some(Err(code)) => Err(KafkaError::new(
            *code,
            format!("ListOffsets ({what}) of {}-{} failed", key.0, key.1),
        )
        .into()),
        None => Err(KafkaError::new(
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            format!(
                "ListOffsets ({what}) gave no answer for {}-{}",
                key.0, key.1
            ),
        )
        .into()),
    }
}

/// The group's state, "Dead" when it does not exist (a reset may create it).
fn group_state(session: &mut Session, group: &str) -> Result<String, CliError> {
    match describe_group(session, group) {
        Ok(d) => Ok(d.state),
        Err(e) if e.kafka_code() == Some(codes::GROUP_ID_NOT_FOUND) => Ok("Dead".to_string()),
        Err(e) => Err(e),
    }
}

fn reset_offsets(session: &mut Session, args: &ResetArgs, format: Format) -> Result<i32, CliError> {
    let group = args.group.as_str();
    let mode = args.mode.mode();
    let state = group_state(session, group)?;
    if args.execute && is_active(&state) {
        return Err(CliError::Message(format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current \
             state is {state}: stop its consumers first"
        )));
    }
    let committed = fetch_offsets(session, group)?;
    let topics: BTreeSet<String> = if args.all_topics {
        committed.keys().map(|(t, _)| t.clone()).collect()
    } else {
        args.topics.iter().map(|s| s.topic.clone()).collect()
    };
    if topics.is_empty() {
        return Err(CliError::Message(format!(
            "group '{group}' has no committed offsets: name the topics with --topic"
        )));
    }
    let topics: Vec<String> = topics.into_iter().collect();
    let meta = session.metadata(Some(&topics))?;
    let targets = reset_targets(&args.topics, args.all_topics, &committed, &meta)?;
    let starts = session.list_offsets(&meta, &targets, EARLIEST)?;
    let ends = session.list_offsets(&meta, &targets, LATEST)?;
    let by_time = match mode {
        ResetMode::Datetime(ms) => Some(session.list_offsets(&meta, &targets, ms)?),
        _ => None,
    };
    let mut rows = Vec::with_capacity(targets.len());
    for key in &targets {
        let by_time = match &by_time {
            Some(answers) => Some(offset_of(answers, key, "by timestamp")?).filter(|o| *o >= 0),
            None => None,
        };
        let state = PartitionState {
            committed: committed.get(key).copied(),
            start: offset_of(&starts, key, "earliest")?,
            end: offset_of(&ends, key, "latest")?,
            by_time,
        };
        let new = reset::new_offset(mode, &state)
            .map_err(|why| CliError::Message(format!("cannot reset {}-{}: {why}", key.0, key.1)))?;
        rows.push(ResetRow {
            topic: key.0.clone(),
            partition: key.1,
            old: state.committed,
            new,
        });
    }
    if args.execute {
        commit_offsets(session, group, &rows)?;
    } else if is_active(&state) {
        eprintln!(
            "note: group '{group}' is {state}; --execute is refused until its consumers stop"
        );
    }
    let plan = ResetPlan {
        group: group.to_string(),
        state,
        executed: args.execute,
        partitions: rows,
    };
    match format {
        Format::Json => {
            emit_json(&plan);
            if !plan.executed {
                eprintln!("dry run: pass --execute to apply");
            }
        }
        Format::Table => emit(&render_reset(&plan)),
    }
    Ok(0)
}

pub fn render_reset(plan: &ResetPlan) -> String {
    let rows: Vec<Vec<String>> = plan
        .partitions
        .iter()
        .map(|r| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                cell(r.old),
                r.new.to_string(),
            ]
        })
        .collect();
    let mut out = render_table(&["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"], &rows);
    if plan.executed {
        out.push_str(&format!(
            "committed the new offsets of group '{}' ({} partitions)\n",
            plan.group,
            plan.partitions.len()
        ));
    } else {
        out.push_str("dry run: pass --execute to apply\n");
    }
    out
}

/// OffsetCommit as a simple (non-member) admin commit: generation -1, empty
/// member id. Any partition error fails the command, naming each.
fn commit_offsets(session: &mut Session, group: &str, rows: &[ResetRow]) -> Result<(), CliError> {
    let mut by_topic: BTreeMap<&str, Vec<&ResetRow>> = BTreeMap::new();
    for r in rows {
        by_topic.entry(r.topic.as_str()).or_default().push(r);
    }
    let failed = session.with_coordinator(group, |c: &mut Client| {
        let (_, response) = c.send(|_version| {
            let mut request = OffsetCommitRequest::default();
            request.group_id = GroupId(str_bytes(group));
            request.generation_id_or_member_epoch = -1;
            request.member_id = StrBytes::default();
            request.group_instance_id = None;
            request.retention_time_ms = -1;
            request.topics = by_topic
                .iter()
                .map(|(topic, rows)| {
                    let mut t = OffsetCommitRequestTopic::default();
                    t.name = TopicName(str_bytes(topic));
                    t.partitions = rows
                        .iter()
                        .map(|r| {
                            let mut p = OffsetCommitRequestPartition::default();
                            p.partition_index = r.partition;
                            p.committed_offset = r.new;
                            p.committed_leader_epoch = -1;
                            p.committed_metadata = Some(StrBytes::default());
                            p
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })?;
        let mut failed: Vec<(String, i32, i16)> = Vec::new();
        for t in &response.topics {
            for p in &t.partitions {
                if p.error_code != codes::NONE {
                    failed.push((t.name.0.to_string(), p.partition_index, p.error_code));
                }
            }
        }
        // The coordinator moved or is loading: let with_coordinator retry.
        if let Some((_, _, code)) = failed.first() {
            if is_coordinator_retriable(*code) && failed.iter().all(|f| f.2 == *code) {
                return Err(group_error(*code, group, "OffsetCommit", None).into());
            }
        }
        Ok(failed)
    })?;
    if failed.is_empty() {
        return Ok(());
    }
    let codes_seen: BTreeSet<i16> = failed.iter().map(|f| f.2).collect();
    if codes_seen.len() == 1 {
        let code = failed[0].2;
        let list: Vec<String> = failed.iter().map(|(t, p, _)| format!("{t}-{p}")).collect();
        let mut err = group_error(code, group, "OffsetCommit", None);
        err.context = format!("{} ({})", err.context, list.join(", "));
        return Err(err.into());
    }
    let list: Vec<String> = failed
        .iter()
        .map(|(t, p, code)| format!("{t}-{p}: {}", error_name(*code)))
        .collect();
    Err(CliError::Message(format!(
        "OffsetCommit for group '{group}' failed on {}",
        list.join(", ")
    )))
}

// ---------------------------------------------------------------- delete

/// The result of deleting one group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeleteResult {
    pub group: String,
    pub deleted: bool,
    /// Kafka's error name, when the broker refused.
    pub error: Option<String>,
    pub message: String,
}

fn delete_one(session: &mut Session, group: &str) -> Result<(), CliError> {
    session.with_coordinator(group, |c: &mut Client| {
        let (_, response) = c.send(|_version| {
            let mut request = DeleteGroupsRequest::default();
            request.groups_names = vec![GroupId(str_bytes(group))];
            request
        })?;
        let code = response
            .results
            .iter()
            .find(|r| r.group_id.0.as_str() == group)
            .map(|r| r.error_code)
            .ok_or_else(|| CliError::Protocol {
                addr: c.addr().to_string(),
                reason: format!("DeleteGroups answer does not mention group '{group}'"),
            })?;
        if code != codes::NONE {
            return Err(group_error(code, group, "DeleteGroups", None).into());
        }
        Ok(())
    })
}

fn delete(session: &mut Session, args: &DeleteArgs, format: Format) -> Result<i32, CliError> {
    let mut results = Vec::new();
    for group in &args.groups {
        let result = match delete_one(session, group) {
            Ok(()) => DeleteResult {
                group: group.clone(),
                deleted: true,
                error: None,
                message: format!("deleted group '{group}'"),
            },
            Err(e) => DeleteResult {
                group: group.clone(),
                deleted: false,
                error: e.kafka_code().map(error_name),
                message: e.to_string(),
            },
        };
        results.push(result);
    }
    match format {
        Format::Json => emit_json(&serde_json::json!({ "results": results })),
        Format::Table => {
            for r in &results {
                if r.deleted {
                    emit(&format!("{}\n", r.message));
                } else {
                    eprintln!("strom group: {}", r.message);
                }
            }
        }
    }
    Ok(if results.iter().all(|r| r.deleted) {
        0
    } else {
        EXIT_ERROR
    })
}

// ---------------------------------------------------------------- delete-offsets

/// One partition's result of `delete-offsets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetDeleteRow {
    pub topic: String,
    pub partition: i32,
    pub error: Option<String>,
}

fn delete_offsets(
    session: &mut Session,
    args: &DeleteOffsetsArgs,
    format: Format,
) -> Result<i32, CliError> {
    let group = args.group.as_str();
    let topics: Vec<String> = args
        .topics
        .iter()
        .map(|s| s.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let meta = session.metadata(Some(&topics))?;
    let targets = reset_targets(&args.topics, false, &BTreeMap::new(), &meta)?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &targets {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    let rows = session.with_coordinator(group, |c: &mut Client| {
        let (_, response) = c.send(|_version| {
            let mut request = OffsetDeleteRequest::default();
            request.group_id = GroupId(str_bytes(group));
            request.topics = by_topic
                .iter()
                .map(|(topic, partitions)| {
                    let mut t = OffsetDeleteRequestTopic::default();
                    t.name = TopicName(str_bytes(topic));
                    t.partitions = partitions
                        .iter()
                        .map(|p| {
                            let mut rp = OffsetDeleteRequestPartition::default();
                            rp.partition_index = *p;
                            rp
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })?;
        if response.error_code != codes::NONE {
            return Err(group_error(response.error_code, group, "OffsetDelete", None).into());
        }
        let mut rows = Vec::new();
        for t in &response.topics {
            for p in &t.partitions {
                rows.push(OffsetDeleteRow {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    error: (p.error_code != codes::NONE).then(|| error_name(p.error_code)),
                });
            }
        }
        rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(rows)
    })?;
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    match format {
        Format::Json => emit_json(&serde_json::json!({ "group": group, "partitions": rows })),
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.topic.clone(),
                        r.partition.to_string(),
                        match &r.error {
                            None => "deleted".to_string(),
                            Some(e) if e == "GROUP_SUBSCRIBED_TO_TOPIC" => {
                                format!("{e} (the group's members consume this topic)")
                            }
                            Some(e) => e.clone(),
                        },
                    ]
                })
                .collect();
            emit(&render_table(&["TOPIC", "PARTITION", "STATUS"], &table));
        }
    }
    if failed > 0 {
        eprintln!("strom group: {failed} partition(s) of group '{group}' kept their offsets");
        return Ok(EXIT_ERROR);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use clap::Parser;
    use client::TopicMeta;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[derive(clap::Parser, Debug)]
    struct TestCli {
        #[command(subcommand)]
        command: TestCommand,
    }

    #[derive(clap::Subcommand, Debug)]
    enum TestCommand {
        Group(GroupArgs),
    }

    fn parse(args: &[&str]) -> Result<GroupArgs, clap::Error> {
        let mut all = vec!["strom", "group"];
        all.extend_from_slice(args);
        TestCli::try_parse_from(all).map(|cli| match cli.command {
            TestCommand::Group(g) => g,
        })
    }

    fn parse_reset(args: &[&str]) -> ResetArgs {
        let mut all = vec!["reset-offsets"];
        all.extend_from_slice(args);
        match parse(&all)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
        {
            GroupCommand::ResetOffsets(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_common_options_anywhere() {
        let g = parse(&["list", "--bootstrap", "h:1", "--format", "json"]).unwrap();
        assert_eq!(g.common.bootstrap.as_deref(), Some("h:1"));
        assert_eq!(g.common.format, Format::Json);
        assert_eq!(g.common.timeout, 30);
        let g = parse(&["--bootstrap", "h:2", "describe", "g1", "--timeout", "5"]).unwrap();
        assert_eq!(g.common.bootstrap.as_deref(), Some("h:2"));
        assert_eq!(g.common.format, Format::Table);
        assert_eq!(g.common.timeout, 5);
        match g.command {
            GroupCommand::Describe(d) => assert_eq!(d.group, "g1"),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["list", "--timeout", "0"]).is_err());
        assert!(parse(&["list", "--format", "yaml"]).is_err());
    }

    #[test]
    fn parses_list_states() {
        match parse(&[
            "list",
            "--state",
            "stable",
            "--state",
            "PREPARING_REBALANCE",
        ])
        .unwrap()
        .command
        {
            GroupCommand::List(l) => {
                assert_eq!(l.states, vec!["Stable", "PreparingRebalance"])
            }
            other => panic!("{other:?}"),
        }
        let err = parse(&["list", "--state", "sleepy"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("unknown group state"), "{err}");
    }

    #[test]
    fn parses_each_reset_mode() {
        let r = parse_reset(&["g", "--topic", "t", "--to-earliest"]);
        assert_eq!(r.mode.mode(), ResetMode::Earliest);
        assert!(!r.execute);
        let r = parse_reset(&["g", "--topic", "t:1,0", "--to-latest", "--execute"]);
        assert_eq!(r.mode.mode(), ResetMode::Latest);
        assert_eq!(r.topics[0].partitions, Some(vec![0, 1]));
        assert!(r.execute);
        let r = parse_reset(&["g", "--all-topics", "--to-offset", "7"]);
        assert_eq!(r.mode.mode(), ResetMode::Offset(7));
        assert!(r.all_topics);
        let r = parse_reset(&["g", "--topic", "t", "--shift-by", "-3"]);
        assert_eq!(r.mode.mode(), ResetMode::ShiftBy(-3));
        let r = parse_reset(&["g", "--topic", "a", "--topic", "b", "--shift-by", "3"]);
        assert_eq!(r.topics.len(), 2);
        let r = parse_reset(&["g", "--topic", "t", "--to-datetime", "1970-01-01T00:00:01Z"]);
        assert_eq!(r.mode.mode(), ResetMode::Datetime(1000));
    }

    #[test]
    fn refuses_bad_reset_command_lines_as_usage_errors() {
        for bad in [
            // no mode
            &["reset-offsets", "g", "--topic", "t"][..],
            // two modes
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--to-latest",
            ],
            // no topics
            &["reset-offsets", "g", "--to-earliest"],
            // both topics and all topics
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--all-topics",
                "--to-earliest",
            ],
            // bad topic spec, bad datetime, bad number
            &["reset-offsets", "g", "--topic", "t:x", "--to-earliest"],
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-datetime",
                "2026-11-21",
            ],
            &["reset-offsets", "g", "--topic", "t", "--to-offset", "ten"],
            // dry run and execute
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--execute",
                "--dry-run",
            ],
            // no group
            &["reset-offsets", "--topic", "t", "--to-earliest"],
            &["delete"],
            &["delete-offsets", "g"],
            &["describe"],
            &["frobnicate"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} accepted"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn parses_delete_commands() {
        match parse(&["delete", "a", "b"]).unwrap().command {
            GroupCommand::Delete(d) => assert_eq!(d.groups, vec!["a", "b"]),
            other => panic!("{other:?}"),
        }
        match parse(&["delete-offsets", "g", "--topic", "t:0"])
            .unwrap()
            .command
        {
            GroupCommand::DeleteOffsets(d) => {
                assert_eq!(d.group, "g");
                assert_eq!(d.topics[0].partitions, Some(vec![0]));
            }
            other => panic!("{other:?}"),
        }
    }

    fn encode_assignment(
        version: i16,
        topics: &[(&str, &[i32])],
        user_data: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut a = ConsumerProtocolAssignment::default();
        a.assigned_partitions = topics
            .iter()
            .map(|(t, ps)| {
                let mut tp = TopicPartition::default();
                tp.topic = TopicName(str_bytes(t));
                tp.partitions = ps.to_vec();
                tp
            })
            .collect();
        a.user_data = user_data.map(Bytes::copy_from_slice);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(3)).unwrap();
        buf.to_vec()
    }

    fn ta(topic: &str, partitions: &[i32]) -> TopicAssignment {
        TopicAssignment {
            topic: topic.to_string(),
            partitions: partitions.to_vec(),
        }
    }

    #[test]
    fn decodes_consumer_assignments_of_every_version() {
        for version in 0..=3 {
            let bytes = encode_assignment(version, &[("b", &[2, 0]), ("a", &[1])], Some(b"ud"));
            assert_eq!(
                decode_assignment(&bytes),
                Ok(vec![ta("a", &[1]), ta("b", &[0, 2])]),
                "v{version}"
            );
            let bytes = encode_assignment(version, &[("t", &[0])], None);
            assert_eq!(decode_assignment(&bytes), Ok(vec![ta("t", &[0])]));
        }
        // A newer version is read as v3.
        let mut bytes = encode_assignment(3, &[("t", &[4])], None);
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        assert_eq!(decode_assignment(&bytes), Ok(vec![ta("t", &[4])]));
        // No assignment yet, and an empty one.
        assert_eq!(decode_assignment(&[]), Ok(vec![]));
        assert_eq!(
            decode_assignment(&encode_assignment(0, &[], None)),
            Ok(vec![])
        );
        // The same topic twice is merged.
        let bytes = encode_assignment(1, &[("t", &[1]), ("t", &[0])], None);
        assert_eq!(decode_assignment(&bytes), Ok(vec![ta("t", &[0, 1])]));
    }

    #[test]
    fn decodes_an_assignment_without_user_data_and_refuses_garbage() {
        // v0 written without the trailing user data bytes.
        let mut bytes = Vec::new();
        bytes.put_i16(0);
        bytes.put_i32(1);
        bytes.put_i16(6);
        bytes.put_slice(b"orders");
        bytes.put_i32(2);
        bytes.put_i32(0);
        bytes.put_i32(1);
        assert_eq!(decode_assignment(&bytes), Ok(vec![ta("orders", &[0, 1])]));
        assert!(decode_assignment(&[0]).is_err());
        assert!(decode_assignment(&[0xff, 0xff]).is_err());
        // Claims 5 topics, holds none.
        assert!(decode_assignment(&[0, 0, 0, 0, 0, 5]).is_err());
    }

    fn member(id: &str, assignment: Vec<TopicAssignment>) -> MemberDescription {
        MemberDescription {
            member_id: id.to_string(),
            instance_id: None,
            client_id: format!("client-{id}"),
            host: "/127.0.0.1".to_string(),
            assignment,
            assignment_error: None,
        }
    }

    fn meta_with(topics: &[(&str, i32)]) -> ClusterMeta {
        let mut meta = ClusterMeta::default();
        meta.brokers.insert(
            1,
            Node {
                node_id: 1,
                host: "127.0.0.1".to_string(),
                port: 9092,
            },
        );
        for (name, partitions) in topics {
            meta.topics.insert(
                name.to_string(),
                TopicMeta {
                    name: name.to_string(),
                    error_code: 0,
                    leaders: (0..*partitions).map(|p| (p, 1)).collect(),
                },
            );
        }
        meta
    }

    fn key(t: &str, p: i32) -> (String, i32) {
        (t.to_string(), p)
    }

    #[test]
    fn lag_rows_cover_every_partition_of_committed_and_assigned_topics() {
        let committed: BTreeMap<_, _> = [(key("a", 0), 5), (key("a", 2), 10)].into();
        let members = vec![member("m1", vec![ta("b", &[0])])];
        let meta = meta_with(&[("a", 3), ("b", 1), ("c", 4)]);
        let shown = partitions_to_show(&committed, &members, &meta);
        assert_eq!(
            shown.iter().cloned().collect::<Vec<_>>(),
            vec![key("a", 0), key("a", 1), key("a", 2), key("b", 0)]
        );
        let ends: BTreeMap<_, client::OffsetAnswer> = [
            (key("a", 0), Ok(8)),
            (key("a", 1), Ok(3)),
            (key("a", 2), Ok(7)), // behind the commit (truncated log): lag 0
            (key("b", 0), Err(3)),
        ]
        .into();
        let rows = partition_rows(&shown, &committed, &members, &ends);
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.topic.as_str(),
                    r.partition,
                    r.current_offset,
                    r.log_end_offset,
                    r.lag,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", 0, Some(5), Some(8), Some(3)),
                ("a", 1, None, Some(3), None),
                ("a", 2, Some(10), Some(7), Some(0)),
                ("b", 0, None, None, None),
            ]
        );
        assert_eq!(rows[3].member_id.as_deref(), Some("m1"));
        assert_eq!(rows[3].client_id.as_deref(), Some("client-m1"));
        assert_eq!(rows[3].error.as_deref(), Some("UNKNOWN_TOPIC_OR_PARTITION"));
        assert_eq!(rows[0].member_id, None);
    }

    #[test]
    fn a_deleted_topic_still_shows_its_committed_partitions() {
        let committed: BTreeMap<_, _> = [(key("gone", 1), 5)].into();
        let shown = partitions_to_show(&committed, &[], &ClusterMeta::default());
        assert_eq!(shown.into_iter().collect::<Vec<_>>(), vec![key("gone", 1)]);
    }

    #[test]
    fn describe_table() {
        let d = GroupDescription {
            group: "g1".to_string(),
            coordinator: Node {
                node_id: 1,
                host: "127.0.0.1".to_string(),
                port: 9092,
            },
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            members: vec![member("m1", vec![ta("a", &[0, 1]), ta("b", &[2])])],
            partitions: vec![PartitionLag {
                topic: "a".to_string(),
                partition: 0,
                current_offset: Some(5),
                log_end_offset: Some(8),
                lag: Some(3),
                member_id: Some("m1".to_string()),
                host: Some("/127.0.0.1".to_string()),
                client_id: Some("client-m1".to_string()),
                error: None,
            }],
            total_lag: 3,
        };
        let text = render_description(&d);
        assert_eq!(
            text,
            "GROUP        g1\n\
             COORDINATOR  1 (127.0.0.1:9092)\n\
             STATE        Stable\n\
             PROTOCOL     consumer (range)\n\
             MEMBERS      1\n\
             TOTAL-LAG    3\n\
             \n\
             MEMBER-ID  INSTANCE-ID  CLIENT-ID  HOST        ASSIGNMENT\n\
             m1         -            client-m1  /127.0.0.1  a:0,1 b:2\n\
             \n\
             TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID\n\
             a      0          5               8               3    m1           /127.0.0.1  client-m1\n"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["partitions"][0]["lag"], 3);
        assert_eq!(json["members"][0]["assignment"][1]["partitions"][0], 2);
        assert_eq!(json["coordinator"]["port"], 9092);

        let empty = GroupDescription {
            members: vec![],
            partitions: vec![],
            state: "Empty".to_string(),
            protocol_type: String::new(),
            protocol: String::new(),
            total_lag: 0,
            ..d
        };
        let text = render_description(&empty);
        assert!(text.contains("PROTOCOL     -\n"), "{text}");
        assert!(text.contains("group 'g1' has no active members"), "{text}");
        assert!(text.contains("no committed offsets"), "{text}");
    }

    #[test]
    fn list_table_and_json() {
        let groups = vec![
            ListedGroup {
                group: "a".to_string(),
                state: "Stable".to_string(),
                protocol_type: "consumer".to_string(),
            },
            ListedGroup {
                group: "offsets-only".to_string(),
                state: "Empty".to_string(),
                protocol_type: String::new(),
            },
        ];
        assert_eq!(
            render_list(&groups),
            "GROUP         STATE   PROTOCOL-TYPE\n\
             a             Stable  consumer\n\
             offsets-only  Empty   -\n"
        );
        let json = serde_json::to_string(&serde_json::json!({ "groups": groups })).unwrap();
        assert_eq!(
            json,
            r#"{"groups":[{"group":"a","protocol_type":"consumer","state":"Stable"},{"group":"offsets-only","protocol_type":"","state":"Empty"}]}"#
        );
    }

    #[test]
    fn reset_targets_from_specs_and_committed_offsets() {
        let meta = meta_with(&[("a", 3), ("b", 2)]);
        let committed: BTreeMap<_, _> = [(key("b", 1), 4), (key("z", 0), 1)].into();
        let specs = vec![
            reset::parse_topic_spec("a").unwrap(),
            reset::parse_topic_spec("b:1").unwrap(),
        ];
        assert_eq!(
            reset_targets(&specs, false, &committed, &meta).unwrap(),
            vec![key("a", 0), key("a", 1), key("a", 2), key("b", 1)]
        );
        assert_eq!(
            reset_targets(&[], true, &committed, &meta).unwrap(),
            vec![key("b", 1), key("z", 0)]
        );
        let err = reset_targets(
            &[reset::parse_topic_spec("b:2").unwrap()],
            false,
            &committed,
            &meta,
        )
        .unwrap_err();
        assert_eq!(err.kafka_code(), Some(3));
        assert!(
            err.to_string()
                .contains("partition 2 of topic 'b' does not exist"),
            "{err}"
        );
        let err = reset_targets(
            &[reset::parse_topic_spec("nope").unwrap()],
            false,
            &committed,
            &meta,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
        );
    }

    #[test]
    fn reset_table_says_dry_run_or_done() {
        let mut plan = ResetPlan {
            group: "g".to_string(),
            state: "Empty".to_string(),
            executed: false,
            partitions: vec![
                ResetRow {
                    topic: "t".to_string(),
                    partition: 0,
                    old: Some(5),
                    new: 0,
                },
                ResetRow {
                    topic: "t".to_string(),
                    partition: 1,
                    old: None,
                    new: 3,
                },
            ],
        };
        assert_eq!(
            render_reset(&plan),
            "TOPIC  PARTITION  OLD-OFFSET  NEW-OFFSET\n\
             t      0          5           0\n\
             t      1          -           3\n\
             dry run: pass --execute to apply\n"
        );
        plan.executed = true;
        assert!(render_reset(&plan)
            .ends_with("committed the new offsets of group 'g' (2 partitions)\n"));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["partitions"][1]["old"], serde_json::Value::Null);
        assert_eq!(json["partitions"][1]["new"], 3);
    }

    #[test]
    fn group_errors_explain_themselves() {
        assert_eq!(
            group_error(68, "g", "DeleteGroups", None).to_string(),
            "NON_EMPTY_GROUP: group 'g' is not empty (it has active members)"
        );
        assert_eq!(
            group_error(69, "g", "DescribeGroups", None).to_string(),
            "GROUP_ID_NOT_FOUND: group 'g' does not exist"
        );
        assert!(group_error(25, "g", "OffsetCommit", None)
            .to_string()
            .starts_with(
            "UNKNOWN_MEMBER_ID: OffsetCommit for group 'g' refused: the group has active members"
        ));
        assert_eq!(
            group_error(-1, "g", "OffsetFetch", Some("boom")).to_string(),
            "UNKNOWN_SERVER_ERROR: OffsetFetch for group 'g' failed (broker says: boom)"
        );
    }

    #[test]
    fn states() {
        assert_eq!(parse_state("empty"), Ok("Empty".to_string()));
        assert_eq!(
            parse_state("completing-rebalance"),
            Ok("CompletingRebalance".to_string())
        );
        assert!(is_active("Stable"));
        assert!(is_active("PreparingRebalance"));
        assert!(!is_active("Empty"));
        assert!(!is_active("Dead"));
    }
}

//! `strom consume TOPIC`: print a topic's records, like `rpk topic consume`
//! and `kcat -C`.
//!
//! Without `--group` it reads the chosen partitions (all by default) from
//! `--offset`; with `--group` it is a member of a classic consumer group
//! ([`super::member`]): it reads the partitions the group assigns it, from the
//! group's committed offsets (else from `--offset`), and commits what it has
//! written after every fetch (at-least-once: after a rebalance a record may be
//! printed again by whoever gets its partition).
//!
//! Fetch answers are decoded batch by batch ([`super::records`]): compressed
//! batches of every codec, control batches skipped (isolation level
//! read_uncommitted), records below the requested offset inside a batch
//! skipped, a batch cut off at the end of an answer fetched again.
//!
//! Output: `--format text` writes the value and a newline per record, or
//! `--format-template` with %t %p %o %k %v %T %h (kcat's and rpk's
//! directives), key and value bytes as they are; `--format json` writes one
//! JSON object per record per line, key, value and headers as UTF-8 text with
//! invalid bytes replaced by U+FFFD (lossy).
//!
//! Ends after `--num` records, at the end of every partition with
//! `--exit-at-end`, or on SIGINT/SIGTERM (exit 0, after committing and leaving
//! the group; a second Ctrl-C more than a second later ends at once with 130).

use super::client::{ClusterMeta, Session, EARLIEST, LATEST};
use super::member::{GroupMember, Standing};
use super::records::{decode_batches, InRecord};
use super::tools::{self, topic_name, ConnArgs, TopicRoute};
use super::{codes, error_name, CliError, KafkaError, EXIT_ERROR};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the broker may hold a fetch that finds nothing new; also bounds
/// how late a SIGINT or a due heartbeat is noticed.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Limit on one Fetch answer.
const FETCH_MAX_BYTES: i32 = 50 << 20;
/// First limit per partition; doubled (up to the maximum) when a batch does not fit.
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const PARTITION_MAX_BYTES_LIMIT: i32 = 256 << 20;

/// Where to start reading a partition (`--offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Start,
    /// The high watermark: only records produced from now on.
    End,
    /// This offset.
    Exact(i64),
    /// N records before the high watermark (not before the log start).
    FromEnd(i64),
    /// The first record with a timestamp at or after this (ms since the epoch).
    Timestamp(i64),
}

/// `start|oldest|beginning|earliest`, `end|newest|latest`, `N`, `-N`,
/// `@TIMESTAMP_MS` (or kcat's `s@TIMESTAMP_MS`).
pub fn parse_offset_spec(text: &str) -> Result<OffsetSpec, String> {
    let t = text.trim();
    match t {
        "start" | "oldest" | "beginning" | "earliest" => return Ok(OffsetSpec::Start),
        "end" | "newest" | "latest" => return Ok(OffsetSpec::End),
        _ => {}
    }
    let number = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
    if let Some(ts) = t.strip_prefix("s@").or_else(|| t.strip_prefix('@')) {
        return number(ts).map(OffsetSpec::Timestamp).ok_or_else(|| {
            format!("'{text}': expected @TIMESTAMP_MS (milliseconds since the epoch)")
        });
    }
    if let Some(n) = t.strip_prefix('-') {
        return number(n)
            .filter(|n| *n > 0)
            .map(OffsetSpec::FromEnd)
            .ok_or_else(|| format!("'{text}': expected -N, N records before the end"));
    }
    number(t)
        .map(OffsetSpec::Exact)
        .ok_or_else(|| format!("'{text}' is not an offset (start, end, N, -N or @TIMESTAMP_MS)"))
}

/// One directive or literal of a `--format-template`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
}

/// A parsed `--format-template`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

/// `--format-template`, parsed.
pub fn parse_template_arg(text: &str) -> Result<Template, String> {
    parse_template(text).map(Template)
}

/// Parses a template: %t topic, %p partition, %o offset, %k key, %v value,
/// %T timestamp (ms), %h headers (`k=v,k=v`), %% a percent sign; \n \t \r \0
/// \\ escapes.
pub fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut chars = text.chars();
    let push = |pieces: &mut Vec<Piece>, literal: &mut Vec<u8>, piece: Piece| {
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(literal)));
        }
        pieces.push(piece);
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('T') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => {
                        return Err(format!(
                            "unknown directive '%{other}' (use %t %p %o %k %v %T %h or %%)"
                        ))
                    }
                    None => return Err("the template ends with a lone '%'".to_string()),
                };
                push(&mut pieces, &mut literal, piece);
            }
            '\\' => match chars.next() {
                Some('n') => literal.push(b'\n'),
                Some('t') => literal.push(b'\t'),
                Some('r') => literal.push(b'\r'),
                Some('0') => literal.push(0),
                Some('\\') => literal.push(b'\\'),
                Some(other) => return Err(format!("unknown escape '\\{other}'")),
                None => return Err("the template ends with a lone backslash".to_string()),
            },
            other => {
                let mut buf = [0u8; 4];
                literal.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

/// Output format of `strom consume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsumeFormat {
    /// The value per line, or --format-template.
    Text,
    /// One JSON object per record per line (UTF-8, invalid bytes replaced).
    Json,
}

/// `strom consume TOPIC`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Print a topic's records (alone, or as a member of a consumer group)",
    long_about = "Prints a topic's records, like rpk topic consume and kcat -C: the value per line, \
                  a --format-template, or one JSON object per record. With --group it joins the \
                  consumer group (range assignor), starts from the committed offsets and commits \
                  what it printed. Runs until --num records, the end of every partition \
                  (--exit-at-end), or Ctrl-C. Exit status: 0 success (also on Ctrl-C), 1 a Kafka or \
                  connection error, 2 a usage error."
)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The topic.
    pub topic: String,
    /// Where to start: start, end, an offset N, -N (N before the end) or
    /// @TIMESTAMP_MS (the first record at or after it). With --group, only
    /// for partitions without a committed offset.
    #[arg(short = 'o', long, value_name = "OFFSET", default_value = "start",
          allow_hyphen_values = true, value_parser = parse_offset_spec)]
    pub offset: OffsetSpec,
    /// Only these partitions (comma-separated or repeated; default: all).
    #[arg(short = 'p', long, value_name = "P[,P...]", value_delimiter = ',',
          conflicts_with = "group", value_parser = clap::value_parser!(i32).range(0..))]
    pub partitions: Vec<i32>,
    /// Consume as a member of this consumer group (commits its offsets).
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Stop after N records.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub num: Option<u64>,
    /// Stop once every partition is read up to its end (high watermark).
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Text output per record: %t topic, %p partition, %o offset, %k key, %v
    /// value, %T timestamp (ms), %h headers (k=v,...), %% a percent sign; \n \t
    /// escapes. E.g. '%k %v\n'.
    #[arg(short = 'f', long, value_name = "TEMPLATE", value_parser = parse_template_arg,
          conflicts_with = "format")]
    pub format_template: Option<Template>,
    /// Output: text (values or the template) or JSON lines.
    #[arg(long, value_enum, default_value_t = ConsumeFormat::Text)]
    pub format: ConsumeFormat,
}

/// A record as JSON.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader>,
}

#[derive(Serialize)]
struct JsonHeader {
    key: String,
    value: Option<String>,
}

fn lossy(bytes: &Option<Bytes>) -> Option<String> {
    bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Appends one record's output to `out`.
pub fn render_record(
    out: &mut Vec<u8>,
    format: ConsumeFormat,
    template: Option<&[Piece]>,
    topic: &str,
    partition: i32,
    record: &InRecord,
) {
    if format == ConsumeFormat::Json {
        let json = JsonRecord {
            topic,
            partition,
            offset: record.offset,
            timestamp: record.timestamp_ms,
            key: lossy(&record.key),
            value: lossy(&record.value),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| JsonHeader {
                    key: String::from_utf8_lossy(k).into_owned(),
                    value: lossy(v),
                })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &json).expect("a Vec accepts JSON");
        out.push(b'\n');
        return;
    }
    let Some(template) = template else {
        out.extend_from_slice(record.value.as_deref().unwrap_or_default());
        out.push(b'\n');
        return;
    };
    for piece in template {
        match piece {
            Piece::Literal(bytes) => out.extend_from_slice(bytes),
            Piece::Topic => out.extend_from_slice(topic.as_bytes()),
            Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
            Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
            Piece::Key => out.extend_from_slice(record.key.as_deref().unwrap_or_default()),
            Piece::Value => out.extend_from_slice(record.value.as_deref().unwrap_or_default()),
            Piece::Timestamp => out.extend_from_slice(record.timestamp_ms.to_string().as_bytes()),
            Piece::Headers => {
                for (i, (k, v)) in record.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k);
                    if let Some(v) = v {
                        out.push(b'=');
                        out.extend_from_slice(v);
                    }
                }
            }
        }
    }
}

/// Reading state of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PartitionState {
    /// The next offset to print.
    position: i64,
    /// The end as last seen (ListOffsets at the start, then every fetch).
    high_watermark: i64,
    /// The position last committed (group mode).
    committed: Option<i64>,
    partition_max_bytes: i32,
}

/// Exit status when a second Ctrl-C cuts the wind-down short (128 + SIGINT).
const EXIT_INTERRUPTED: i32 = 130;
/// Signals this close to the first are the same Ctrl-C delivered twice (to
/// the process and to its process group, as `timeout` does), not a second one.
const SECOND_SIGNAL_AFTER: Duration = Duration::from_secs(1);

/// SIGINT/SIGTERM set `stop`: the loop notices within a fetch wait, commits,
/// leaves the group and exits 0. Another signal later than
/// [`SECOND_SIGNAL_AFTER`] ends the process at once.
fn watch_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            for _ in signals.forever() {
                match first {
                    None => {
                        first = Some(Instant::now());
                        stop.store(true, Ordering::Relaxed);
                    }
                    Some(at) if at.elapsed() > SECOND_SIGNAL_AFTER => {
                        std::process::exit(EXIT_INTERRUPTED)
                    }
                    Some(_) => {}
                }
            }
        })?;
    Ok(())
}

/// Runs `strom consume`; returns the exit status.
pub fn run(args: ConsumeArgs) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(err) = watch_signals(Arc::clone(&stop)) {
        eprintln!("strom consume: cannot handle SIGINT/SIGTERM: {err}");
        return EXIT_ERROR;
    }
    let mut session = args.conn.session();
    let mut consumer = Consumer {
        args: &args,
        stop,
        printed: 0,
        out: Vec::new(),
        member: args
            .group
            .as_deref()
            .map(|g| GroupMember::new(g, &args.topic)),
        states: BTreeMap::new(),
    };
    let result = consumer.consume(&mut session);
    // Leave the group whatever happened: the others get our partitions now.
    let left = match consumer.member.as_mut() {
        Some(member) => member.leave(&mut session),
        None => Ok(()),
    };
    match (result, left) {
        (Ok(()), Ok(())) => 0,
        (Err(err), _) | (Ok(()), Err(err)) => {
            eprintln!("strom consume: {err}");
            EXIT_ERROR
        }
    }
}

struct Consumer<'a> {
    args: &'a ConsumeArgs,
    stop: Arc<AtomicBool>,
    printed: u64,
    /// Output of the current fetch, written at once.
    out: Vec<u8>,
    member: Option<GroupMember>,
    states: BTreeMap<i32, PartitionState>,
}

impl Consumer<'_> {
    fn consume(&mut self, session: &mut Session) -> Result<(), CliError> {
        let mut route = tools::topic_route(session, &self.args.topic, false)?;
        self.assign(session, &route)?;
        loop {
            if self.stop.load(Ordering::Relaxed) || self.num_reached() {
                self.commit(session)?;
                return Ok(());
            }
            if let Some(member) = self.member.as_mut() {
                if member.heartbeat_if_due(session)? == Standing::MustRejoin {
                    route = tools::topic_route(session, &self.args.topic, false)?;
                    self.assign(session, &route)?;
                    continue;
                }
            }
            if self.args.exit_at_end && self.at_end() {
                self.commit(session)?;
                return Ok(());
            }
            if self.states.is_empty() {
                // A group member without partitions: keep heartbeating.
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            match self.fetch_round(session, &route)? {
                RoundOutcome::Fetched => {}
                RoundOutcome::MetadataStale => {
                    std::thread::sleep(Duration::from_millis(200));
                    route = tools::topic_route(session, &self.args.topic, false)?;
                }
            }
            if !self.write_out()? {
                // stdout closed: like SIGPIPE, a quiet end.
                return Ok(());
            }
            self.commit(session)?;
        }
    }

    fn num_reached(&self) -> bool {
        self.args.num.is_some_and(|n| self.printed >= n)
    }

    fn at_end(&self) -> bool {
        self.states.values().all(|s| s.position >= s.high_watermark)
    }

    /// Picks the partitions to read and where to start: every requested
    /// partition, or (group mode) joins the group for an assignment and starts
    /// from the committed offsets.
    fn assign(&mut self, session: &mut Session, route: &TopicRoute) -> Result<(), CliError> {
        let (partitions, committed) = match self.member.as_mut() {
            Some(member) => {
                let partitions = member.join(session)?;
                let committed = member.committed(session, &partitions)?;
                (partitions, committed)
            }
            None => {
                let partitions = if self.args.partitions.is_empty() {
                    route.leaders.keys().copied().collect()
                } else {
                    for p in &self.args.partitions {
                        if !route.leaders.contains_key(p) {
                            return Err(KafkaError::new(
                                codes::UNKNOWN_TOPIC_OR_PARTITION,
                                format!(
                                    "partition {p} of topic '{}' does not exist (it has {} \
                                     partitions)",
                                    route.topic,
                                    route.partition_count()
                                ),
                            )
                            .into());
                        }
                    }
                    let mut ps = self.args.partitions.clone();
                    ps.sort_unstable();
                    ps.dedup();
                    ps
                };
                (partitions, BTreeMap::new())
            }
        };
        self.states = self.start_positions(session, &partitions, &committed)?;
        Ok(())
    }

    /// Where each partition starts: its committed offset, else `--offset`.
    fn start_positions(
        &self,
        session: &mut Session,
        partitions: &[i32],
        committed: &BTreeMap<i32, i64>,
    ) -> Result<BTreeMap<i32, PartitionState>, CliError> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let topic = &self.args.topic;
        let meta = session.metadata(Some(std::slice::from_ref(topic)))?;
        let keys: Vec<(String, i32)> = partitions.iter().map(|p| (topic.clone(), *p)).collect();
        let starts = offsets_of(session, &meta, &keys, EARLIEST, topic)?;
        let ends = offsets_of(session, &meta, &keys, LATEST, topic)?;
        let by_time = match self.args.offset {
            OffsetSpec::Timestamp(ms) => Some(offsets_of(session, &meta, &keys, ms, topic)?),
            _ => None,
        };
        let mut states = BTreeMap::new();
        for p in partitions {
            let (start, end) = (starts[p], ends[p]);
            let position = match (committed.get(p), self.args.offset) {
                (Some(c), _) => *c,
                (None, OffsetSpec::Start) => start,
                (None, OffsetSpec::End) => end,
                (None, OffsetSpec::FromEnd(n)) => end.saturating_sub(n).max(start),
                (None, OffsetSpec::Timestamp(_)) => {
                    let found = by_time.as_ref().map_or(-1, |m| m[p]);
                    // No record at or after the time: the end.
                    if found < 0 {
                        end
                    } else {
                        found
                    }
                }
                (None, OffsetSpec::Exact(n)) => {
                    if n < start || n > end {
                        return Err(out_of_range(topic, *p, n, start, end).into());
                    }
                    n
                }
            };
            states.insert(
                *p,
                PartitionState {
                    position,
                    high_watermark: end,
                    committed: committed.get(p).copied(),
                    partition_max_bytes: PARTITION_MAX_BYTES,
                },
            );
        }
        Ok(states)
    }

    /// One Fetch per leader of the partitions still to read; prints the records.
    fn fetch_round(
        &mut self,
        session: &mut Session,
        route: &TopicRoute,
    ) -> Result<RoundOutcome, CliError> {
        let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (p, state) in &self.states {
            if self.args.exit_at_end && state.position >= state.high_watermark {
                continue;
            }
            match route.leaders.get(p) {
                Some(addr) => by_leader.entry(addr.clone()).or_default().push(*p),
                None => return Ok(RoundOutcome::MetadataStale),
            }
        }
        let mut outcome = RoundOutcome::Fetched;
        for (addr, partitions) in by_leader {
            let request_partitions: Vec<(i32, i64, i32)> = partitions
                .iter()
                .map(|p| {
                    let s = &self.states[p];
                    (*p, s.position, s.partition_max_bytes)
                })
                .collect();
            let (_, response) = session.call(&addr, |c| {
                c.send(|_version| {
                    let mut topic = FetchTopic::default();
                    topic.topic = topic_name(&route.topic);
                    topic.topic_id = route.topic_id;
                    topic.partitions = request_partitions
                        .iter()
                        .map(|(p, offset, max_bytes)| {
                            let mut fp = FetchPartition::default();
                            fp.partition = *p;
                            fp.current_leader_epoch = -1;
                            fp.fetch_offset = *offset;
                            fp.last_fetched_epoch = -1;
                            fp.log_start_offset = -1;
                            fp.partition_max_bytes = *max_bytes;
                            fp
                        })
                        .collect();
                    let mut request = FetchRequest::default();
                    request.replica_id = BrokerId(-1);
                    request.max_wait_ms = FETCH_MAX_WAIT_MS;
                    request.min_bytes = 1;
                    request.max_bytes = FETCH_MAX_BYTES;
                    request.isolation_level = 0;
                    request.session_id = 0;
                    request.session_epoch = -1;
                    request.topics = vec![topic];
                    request
                })
            })?;
            if response.error_code != codes::NONE {
                return Err(KafkaError::new(
                    response.error_code,
                    format!("Fetch from the broker at {addr} failed"),
                )
                .into());
            }
            for t in &response.responses {
                let ours = t.topic.0.as_str() == route.topic
                    || (!route.topic_id.is_nil() && t.topic_id == route.topic_id);
                if !ours {
                    continue;
                }
                for pd in &t.partitions {
                    if self.num_reached() {
                        return Ok(outcome);
                    }
                    let p = pd.partition_index;
                    if !self.states.contains_key(&p) {
                        continue;
                    }
                    match pd.error_code {
                        codes::NONE => {}
                        1 => {
                            // OFFSET_OUT_OF_RANGE: say where the log is now.
                            let position = self.states[&p].position;
                            let meta =
                                session.metadata(Some(std::slice::from_ref(&route.topic)))?;
                            let key = [(route.topic.clone(), p)];
                            let start = offsets_of(session, &meta, &key, EARLIEST, &route.topic)?;
                            let end = offsets_of(session, &meta, &key, LATEST, &route.topic)?;
                            return Err(out_of_range(
                                &route.topic,
                                p,
                                position,
                                start[&p],
                                end[&p],
                            )
                            .into());
                        }
                        code if is_metadata_error(code) => {
                            outcome = RoundOutcome::MetadataStale;
                            continue;
                        }
                        code => {
                            return Err(KafkaError::new(
                                code,
                                format!("Fetch of partition {p} of topic '{}' failed", route.topic),
                            )
                            .into())
                        }
                    }
                    if pd.high_watermark >= 0 {
                        if let Some(s) = self.states.get_mut(&p) {
                            s.high_watermark = pd.high_watermark;
                        }
                    }
                    if let Some(records) = &pd.records {
                        self.take_records(p, records)?;
                    }
                }
            }
        }
        Ok(outcome)
    }

    /// Prints the records of one partition's answer at or after its position.
    fn take_records(&mut self, partition: i32, records: &Bytes) -> Result<(), CliError> {
        let batches = decode_batches(records).map_err(|e| {
            CliError::Message(format!(
                "partition {partition} of topic '{}': {e}",
                self.args.topic
            ))
        })?;
        let state = self.states.get_mut(&partition).expect("partition is read");
        if batches.is_empty() && !records.is_empty() {
            // A batch larger than the per-partition limit: ask for more.
            if state.partition_max_bytes >= PARTITION_MAX_BYTES_LIMIT {
                return Err(CliError::Message(format!(
                    "partition {partition} of topic '{}' at offset {}: a batch larger than {} \
                     bytes",
                    self.args.topic, state.position, PARTITION_MAX_BYTES_LIMIT
                )));
            }
            state.partition_max_bytes = state.partition_max_bytes.saturating_mul(2);
            return Ok(());
        }
        let template = self.args.format_template.as_ref().map(|t| t.0.as_slice());
        for batch in batches {
            for record in &batch.records {
                if record.offset < state.position {
                    continue;
                }
                if self.args.num.is_some_and(|n| self.printed >= n) {
                    return Ok(());
                }
                render_record(
                    &mut self.out,
                    self.args.format,
                    template,
                    &self.args.topic,
                    partition,
                    record,
                );
                self.printed += 1;
                state.position = record.offset + 1;
            }
            // Past the whole batch (control batches, compacted gaps), unless
            // --num stopped inside it.
            if self.args.num.is_none_or(|n| self.printed < n) {
                state.position = state.position.max(batch.last_offset + 1);
            }
        }
        Ok(())
    }

    /// Writes the pending output; false when stdout is closed.
    fn write_out(&mut self) -> Result<bool, CliError> {
        if self.out.is_empty() {
            return Ok(true);
        }
        let mut stdout = std::io::stdout().lock();
        let written = stdout.write_all(&self.out).and_then(|()| stdout.flush());
        self.out.clear();
        match written {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(CliError::Message(format!("cannot write the output: {e}"))),
        }
    }

    /// Group mode: commits positions that moved since the last commit. A
    /// commit refused because the group is rebalancing is dropped (the next
    /// member reads those records again); the heartbeat then rejoins.
    fn commit(&mut self, session: &mut Session) -> Result<(), CliError> {
        if self.member.is_none() {
            return Ok(());
        }
        // Nothing may be committed that was not written out.
        if !self.write_out()? {
            return Ok(());
        }
        let moved: BTreeMap<i32, i64> = self
            .states
            .iter()
            .filter(|(_, s)| s.committed != Some(s.position))
            .map(|(p, s)| (*p, s.position))
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        let member = self.member.as_mut().expect("checked above");
        if member.commit(session, &moved)? == Standing::Member {
            for (p, offset) in moved {
                if let Some(s) = self.states.get_mut(&p) {
                    s.committed = Some(offset);
                }
            }
        }
        Ok(())
    }
}

/// What a fetch round found.
#[derive(Debug, PartialEq, Eq)]
enum RoundOutcome {
    Fetched,
    /// A partition's leader is unknown or moved: refresh metadata.
    MetadataStale,
}

/// Partition errors cured by fresh metadata (a leader moved, a topic was just
/// created), as Kafka's consumer treats them.
fn is_metadata_error(code: i16) -> bool {
    matches!(
        code,
        codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::LEADER_NOT_AVAILABLE
            | 6   // NOT_LEADER_OR_FOLLOWER
            | 56  // KAFKA_STORAGE_ERROR
            | 74  // FENCED_LEADER_EPOCH
            | 75  // UNKNOWN_LEADER_EPOCH
            | 100 // UNKNOWN_TOPIC_ID
    )
}

fn out_of_range(topic: &str, partition: i32, offset: i64, start: i64, end: i64) -> KafkaError {
    KafkaError::new(
        1,
        format!(
            "offset {offset} is out of range for partition {partition} of topic '{topic}' \
             (log start offset {start}, high watermark {end})"
        ),
    )
}

/// ListOffsets of some partitions of one topic; any error names the partition.
fn offsets_of(
    session: &mut Session,
    meta: &ClusterMeta,
    keys: &[(String, i32)],
    timestamp: i64,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let answers = session.list_offsets(meta, keys, timestamp)?;
    let mut out = BTreeMap::new();
    for ((_, p), answer) in answers {
        match answer {
            Ok(offset) => {
                out.insert(p, offset);
            }
            Err(code) if code == codes::UNKNOWN_TOPIC_OR_PARTITION => {
                return Err(tools::topic_error(code, topic, "ListOffsets", None).into())
            }
            Err(code) => {
                return Err(KafkaError::new(
                    code,
                    format!(
                        "ListOffsets of partition {p} of topic '{topic}' failed ({})",
                        error_name(code)
                    ),
                )
                .into())
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    fn parse(args: &[&str]) -> Result<ConsumeArgs, clap::Error> {
        let mut all = vec!["strom-consume"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.args)
    }

    #[test]
    fn offset_specs() {
        assert_eq!(parse_offset_spec("start"), Ok(OffsetSpec::Start));
        assert_eq!(parse_offset_spec("beginning"), Ok(OffsetSpec::Start));
        assert_eq!(parse_offset_spec("oldest"), Ok(OffsetSpec::Start));
        assert_eq!(parse_offset_spec("end"), Ok(OffsetSpec::End));
        assert_eq!(parse_offset_spec("newest"), Ok(OffsetSpec::End));
        assert_eq!(parse_offset_spec("42"), Ok(OffsetSpec::Exact(42)));
        assert_eq!(parse_offset_spec("0"), Ok(OffsetSpec::Exact(0)));
        assert_eq!(parse_offset_spec("-10"), Ok(OffsetSpec::FromEnd(10)));
        assert_eq!(
            parse_offset_spec("@1700000000000"),
            Ok(OffsetSpec::Timestamp(1_700_000_000_000))
        );
        assert_eq!(parse_offset_spec("s@5"), Ok(OffsetSpec::Timestamp(5)));
        assert!(parse_offset_spec("-0").is_err());
        assert!(parse_offset_spec("@").is_err());
        assert!(parse_offset_spec("@-5").is_err());
        assert!(parse_offset_spec("soon").is_err());
        assert!(parse_offset_spec("1.5").is_err());
    }

    #[test]
    fn templates() {
        assert_eq!(
            parse_template("%k %v\\n"),
            Ok(vec![
                Piece::Key,
                Piece::Literal(b" ".to_vec()),
                Piece::Value,
                Piece::Literal(b"\n".to_vec())
            ])
        );
        assert_eq!(
            parse_template("100%% %t:%p@%o %T [%h]\\t"),
            Ok(vec![
                Piece::Literal(b"100% ".to_vec()),
                Piece::Topic,
                Piece::Literal(b":".to_vec()),
                Piece::Partition,
                Piece::Literal(b"@".to_vec()),
                Piece::Offset,
                Piece::Literal(b" ".to_vec()),
                Piece::Timestamp,
                Piece::Literal(b" [".to_vec()),
                Piece::Headers,
                Piece::Literal(b"]\t".to_vec()),
            ])
        );
        assert!(parse_template("%x").is_err());
        assert!(parse_template("%").is_err());
        assert!(parse_template("\\q").is_err());
    }

    fn record() -> InRecord {
        InRecord {
            offset: 7,
            timestamp_ms: 1234,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"v\xffx")),
            headers: vec![
                (Bytes::from_static(b"a"), Some(Bytes::from_static(b"1"))),
                (Bytes::from_static(b"a"), Some(Bytes::from_static(b"2"))),
                (Bytes::from_static(b"n"), None),
            ],
        }
    }

    #[test]
    fn renders_text_template_and_json() {
        let r = record();
        let mut out = Vec::new();
        render_record(&mut out, ConsumeFormat::Text, None, "t", 2, &r);
        assert_eq!(out, b"v\xffx\n");
        let mut out = Vec::new();
        let t = parse_template("%t/%p/%o/%T %k=%v [%h]\\n").unwrap();
        render_record(&mut out, ConsumeFormat::Text, Some(&t), "t", 2, &r);
        assert_eq!(out, b"t/2/7/1234 k1=v\xffx [a=1,a=2,n]\n");
        let mut out = Vec::new();
        render_record(&mut out, ConsumeFormat::Json, None, "t", 2, &r);
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "topic": "t", "partition": 2, "offset": 7, "timestamp": 1234,
                "key": "k1", "value": "v\u{fffd}x",
                "headers": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"},
                            {"key": "n", "value": null}]
            })
        );
        let mut keyless = record();
        keyless.key = None;
        keyless.value = None;
        let mut out = Vec::new();
        render_record(&mut out, ConsumeFormat::Json, None, "t", 0, &keyless);
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["key"], serde_json::Value::Null);
        assert_eq!(json["value"], serde_json::Value::Null);
    }

    #[test]
    fn flags() {
        let a = parse(&["t"]).unwrap();
        assert_eq!(a.offset, OffsetSpec::Start);
        assert_eq!(a.format, ConsumeFormat::Text);
        let a = parse(&["t", "-o", "-5", "-p", "0,2", "-p", "1", "-n", "3", "-e"]).unwrap();
        assert_eq!(a.offset, OffsetSpec::FromEnd(5));
        assert_eq!(a.partitions, vec![0, 2, 1]);
        assert_eq!((a.num, a.exit_at_end), (Some(3), true));
        assert!(parse(&["t", "-p", "0", "-g", "g"]).is_err());
        assert!(parse(&["t", "-f", "%v", "--format", "json"]).is_err());
        assert!(parse(&["t", "-f", "%q"]).is_err());
        let a = parse(&["t", "-f", "%k\\t%v\\n"]).unwrap();
        assert_eq!(
            a.format_template,
            Some(Template(vec![
                Piece::Key,
                Piece::Literal(b"\t".to_vec()),
                Piece::Value,
                Piece::Literal(b"\n".to_vec())
            ]))
        );
        assert!(parse(&["t", "-n", "0"]).is_err());
        assert!(parse(&["t", "-o", "later"]).is_err());
    }
}

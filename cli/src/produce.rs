//! `strom produce TOPIC`: one record per line of stdin, like `rpk topic
//! produce` and `kcat -P`.
//!
//! Records are split at `--delimiter` (a newline by default, not part of the
//! record), optionally into key and value at the first `--key-delim`, get the
//! `--header`s, and go to `--partition`, else to Kafka's default partition for
//! their key (murmur2, the same partition the Java client and librdkafka's
//! `murmur2_random` pick), else (no key) to one partition per batch in turn.
//! Records are batched per partition up to `--batch-bytes` in all; a full
//! batch, and EOF, send everything pending: one Produce request per leader.
//!
//! Exit status: 0 when every record was acknowledged (acks 1/all) or sent
//! (acks 0); 1 when any failed (each failed partition batch is named on
//! stderr); 2 a usage error.

use super::client::{Client, Session};
use super::records::{encode_batch, parse_codec, Codec, Header, OutRecord};
use super::tools::{self, emit, emit_json, topic_name, ConnArgs, TopicRoute};
use super::{codes, error_name, render_table, CliError, Format, KafkaError, EXIT_ERROR};
use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const COMMAND: &str = "produce";
/// Room for the RecordBatch header inside `--batch-bytes`.
const BATCH_HEADER_BYTES: usize = strom_storage::batch::BATCH_HEADER_BYTES;

/// `strom produce TOPIC`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Produce records to a topic, one per line of stdin",
    long_about = "Produces one record per line of stdin (like rpk topic produce and kcat -P). \
                  Keyed records go to Kafka's default partition for their key (murmur2, as the \
                  Java client and librdkafka's murmur2_random); records without a key go to one \
                  partition per batch in turn. The topic is created if the broker auto-creates \
                  topics. Prints the offsets produced per partition. Exit status: 0 every record \
                  acknowledged, 1 any failed (named on stderr), 2 a usage error."
)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The topic.
    pub topic: String,
    /// Split each record into KEY SEP VALUE at the first SEP (\t, \n, \r, \0 and
    /// \\ escapes); a record without SEP has no key.
    #[arg(short = 'k', long = "key-delim", value_name = "SEP", value_parser = parse_separator)]
    pub key_delim: Option<Separator>,
    /// The record separator on stdin (escapes as for --key-delim).
    #[arg(short = 'D', long, value_name = "SEP", default_value = "\\n",
          value_parser = parse_separator)]
    pub delimiter: Separator,
    /// A header KEY=VALUE added to every record; repeatable (a key may repeat).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE",
          value_parser = tools::parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Compression of each batch: none, gzip, snappy, lz4 or zstd.
    #[arg(short = 'z', long, value_name = "CODEC", value_parser = parse_codec, default_value = "none")]
    pub compression: Codec,
    /// Acknowledgement to wait for: -1 all (every in-sync replica), 1 the
    /// leader, 0 none (offsets are then unknown).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true,
          value_parser = parse_acks)]
    pub acks: i16,
    /// Send every record to this partition instead of partitioning by key.
    #[arg(short = 'p', long, value_name = "N",
          value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Most bytes of records pending at once (every partition's batch together,
    /// the 61-byte batch header included); a full batch is sent. A record must
    /// fit in one batch.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u32).range(1024..=(256 << 20)))]
    pub batch_bytes: u32,
    /// Output: a table of offsets per partition, or one JSON document.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--acks`: -1, 0 or 1 (`all` is -1).
pub fn parse_acks(text: &str) -> Result<i16, String> {
    match text.trim() {
        "-1" | "all" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("'{text}' is not -1 (all), 0 or 1")),
    }
}

/// A record or key separator: bytes, never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Separator(pub Vec<u8>);

/// `\t`, `\n`, `\r`, `\0`, `\\` escapes in a separator; it must not be empty.
pub fn parse_separator(text: &str) -> Result<Separator, String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some(other) => return Err(format!("unknown escape '\\{other}' in '{text}'")),
            None => return Err(format!("'{text}' ends with a lone backslash")),
        }
    }
    if out.is_empty() {
        return Err("the separator must not be empty".to_string());
    }
    Ok(Separator(out))
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), the hash
/// of the Java client's and librdkafka's default partitioners.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a key: `(murmur2(key) & 0x7fffffff) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) % partitions
}

/// Splits a record at the first `sep` into (key, value); without `sep`, no key.
pub fn split_key<'a>(record: &'a [u8], sep: &[u8]) -> (Option<&'a [u8]>, &'a [u8]) {
    if sep.is_empty() || record.len() < sep.len() {
        return (None, record);
    }
    match record.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&record[..at]), &record[at + sep.len()..]),
        None => (None, record),
    }
}

/// Reads records separated by `delimiter`, none longer than `max_bytes`.
pub struct RecordReader<R> {
    input: R,
    delimiter: Vec<u8>,
    max_bytes: usize,
    buf: Vec<u8>,
    done: bool,
}

/// Why stdin could not be read into records.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read stdin: {0}")]
    Io(#[from] std::io::Error),
    #[error("record {index} is longer than {max_bytes} bytes (raise --batch-bytes)")]
    TooLong { index: u64, max_bytes: usize },
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R, delimiter: Vec<u8>, max_bytes: usize) -> Self {
        assert!(!delimiter.is_empty(), "the delimiter is checked non-empty");
        RecordReader {
            input,
            delimiter,
            max_bytes,
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next record (without its delimiter); None at EOF. `index` numbers
    /// records from 1 for the error message.
    pub fn next_record(&mut self, index: u64) -> Result<Option<Vec<u8>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        let last = *self.delimiter.last().expect("non-empty");
        loop {
            // Read at most a little past the limit, so a huge line cannot
            // exhaust memory before it is refused.
            let room = (self.max_bytes + self.delimiter.len() + 1).saturating_sub(self.buf.len());
            let read = (&mut self.input)
                .take(room as u64)
                .read_until(last, &mut self.buf)?;
            if self.buf.ends_with(&self.delimiter) {
                self.buf.truncate(self.buf.len() - self.delimiter.len());
                break;
            }
            if self.buf.len() > self.max_bytes + self.delimiter.len() {
                return Err(ReadError::TooLong {
                    index,
                    max_bytes: self.max_bytes,
                });
            }
            if read == 0 {
                // EOF: a last record without a delimiter still counts.
                self.done = true;
                if self.buf.is_empty() {
                    return Ok(None);
                }
                break;
            }
        }
        if self.buf.len() > self.max_bytes {
            return Err(ReadError::TooLong {
                index,
                max_bytes: self.max_bytes,
            });
        }
        Ok(Some(std::mem::take(&mut self.buf)))
    }
}

/// What was produced to one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionResult {
    /// None with acks=0.
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    pub count: u64,
}

/// A batch the broker refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProduceFailure {
    pub partition: i32,
    pub error: String,
    pub message: Option<String>,
    pub records: u64,
}

/// What `strom produce` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProduceReport {
    pub topic: String,
    /// Records acknowledged (with acks=0: sent).
    pub records: u64,
    pub partitions: BTreeMap<String, PartitionResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProduceFailure>,
}

impl ProduceReport {
    fn add(&mut self, partition: i32, base_offset: Option<i64>, count: u64) {
        self.records += count;
        let entry = self.partitions.entry(partition.to_string()).or_default();
        entry.count += count;
        if let Some(base) = base_offset {
            let last = base + count as i64 - 1;
            entry.first_offset = Some(entry.first_offset.map_or(base, |f| f.min(base)));
            entry.last_offset = Some(entry.last_offset.map_or(last, |l| l.max(last)));
        }
    }
}

/// Where records go.
pub struct Partitioner {
    partitions: i32,
    fixed: Option<i32>,
    /// The partition of keyless records until the next batch is sent.
    sticky: i32,
}

impl Partitioner {
    pub fn new(partitions: i32, fixed: Option<i32>, start: i32) -> Partitioner {
        assert!(partitions > 0, "a topic has at least one partition");
        Partitioner {
            partitions,
            fixed,
            sticky: start.rem_euclid(partitions),
        }
    }

    pub fn partition(&self, key: Option<&[u8]>) -> i32 {
        match (self.fixed, key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.partitions),
            (None, None) => self.sticky,
        }
    }

    /// A batch was sent: keyless records move on to the next partition.
    pub fn batch_sent(&mut self) {
        self.sticky = (self.sticky + 1) % self.partitions;
    }
}

/// Records waiting to be sent, per partition.
#[derive(Default)]
struct Pending {
    batches: BTreeMap<i32, Vec<OutRecord>>,
    bytes: usize,
}

/// Runs `strom produce`; returns the exit status.
pub fn run(args: ProduceArgs) -> i32 {
    let mut session = args.conn.session();
    let stdin = std::io::stdin();
    let mut report = ProduceReport {
        topic: args.topic.clone(),
        ..ProduceReport::default()
    };
    let result = produce(&mut session, &args, stdin.lock(), &mut report);
    let status = match &result {
        Ok(()) if report.errors.is_empty() => 0,
        _ => EXIT_ERROR,
    };
    if report.records > 0 || result.is_ok() {
        match args.format {
            Format::Json => emit_json(COMMAND, &report),
            Format::Table => emit(COMMAND, &render_report(&report)),
        }
    }
    for f in &report.errors {
        let message = f
            .message
            .as_ref()
            .map_or(String::new(), |m| format!(" (broker says: {m})"));
        eprintln!(
            "strom produce: partition {}: {}: {} records not produced{message}",
            f.partition, f.error, f.records
        );
    }
    if let Err(err) = result {
        eprintln!("strom produce: {err}");
    }
    status
}

pub fn render_report(report: &ProduceReport) -> String {
    let mut rows: Vec<(i32, Vec<String>)> = report
        .partitions
        .iter()
        .map(|(p, r)| {
            let cell = |o: Option<i64>| o.map_or_else(|| "-".to_string(), |o| o.to_string());
            (
                p.parse().unwrap_or(i32::MAX),
                vec![
                    p.clone(),
                    cell(r.first_offset),
                    cell(r.last_offset),
                    r.count.to_string(),
                ],
            )
        })
        .collect();
    rows.sort_by_key(|(p, _)| *p);
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
    render_table(
        &["PARTITION", "FIRST-OFFSET", "LAST-OFFSET", "RECORDS"],
        &rows,
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The topic's route, created if the broker auto-creates topics.
fn resolve_target(session: &mut Session, topic: &str) -> Result<TopicRoute, CliError> {
    match tools::topic_route(session, topic, true) {
        Err(CliError::Kafka(e)) if e.code == codes::UNKNOWN_TOPIC_OR_PARTITION => {
            Err(KafkaError::new(
                e.code,
                format!(
                    "topic '{topic}' does not exist (and the broker does not create topics \
                     automatically; create it with `strom topic create {topic}`)"
                ),
            )
            .into())
        }
        other => other,
    }
}

fn produce(
    session: &mut Session,
    args: &ProduceArgs,
    input: impl BufRead,
    report: &mut ProduceReport,
) -> Result<(), CliError> {
    let mut target = resolve_target(session, &args.topic)?;
    let partitions = target.partition_count();
    if let Some(p) = args.partition {
        if !target.leaders.contains_key(&p) {
            return Err(KafkaError::new(
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                format!(
                    "partition {p} of topic '{}' does not exist (it has {partitions} partitions)",
                    args.topic
                ),
            )
            .into());
        }
    }
    let start = (now_ms() % i64::from(partitions.max(1))) as i32;
    let mut partitioner = Partitioner::new(partitions.max(1), args.partition, start);
    let headers: Vec<Header> = args
        .headers
        .iter()
        .map(|(k, v)| {
            (
                Bytes::copy_from_slice(k.as_bytes()),
                Some(Bytes::copy_from_slice(v.as_bytes())),
            )
        })
        .collect();
    let budget = args.batch_bytes as usize - BATCH_HEADER_BYTES;
    let mut reader = RecordReader::new(input, args.delimiter.0.clone(), budget);
    let mut pending = Pending::default();
    let mut index = 0u64;
    loop {
        index += 1;
        let line = match reader.next_record(index) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                // Send what was read before the bad record, then fail.
                flush(session, args, &mut target, &mut pending, report)?;
                return Err(CliError::Message(e.to_string()));
            }
        };
        let (key, value) = match &args.key_delim {
            Some(sep) => split_key(&line, &sep.0),
            None => (None, &line[..]),
        };
        let record = OutRecord {
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(value)),
            headers: headers.clone(),
        };
        let size = record.encoded_size_max();
        if size > budget {
            flush(session, args, &mut target, &mut pending, report)?;
            return Err(CliError::Message(format!(
                "record {index} needs up to {size} bytes with its key and headers, more than a \
                 batch holds ({budget}); raise --batch-bytes"
            )));
        }
        if pending.bytes + size > budget {
            flush(session, args, &mut target, &mut pending, report)?;
            partitioner.batch_sent();
        }
        let partition = partitioner.partition(record.key.as_deref());
        pending.bytes += size;
        pending.batches.entry(partition).or_default().push(record);
    }
    flush(session, args, &mut target, &mut pending, report)
}

/// Kafka errors after which the batch was certainly not written and a retry
/// with fresh metadata may succeed.
fn is_retriable(code: i16) -> bool {
    matches!(
        code,
        codes::UNKNOWN_TOPIC_OR_PARTITION | codes::LEADER_NOT_AVAILABLE | 6 /* NOT_LEADER_OR_FOLLOWER */
    )
}

/// Sends every pending batch (one Produce request per leader) and records the
/// outcome; refreshes metadata and retries batches whose leader moved.
fn flush(
    session: &mut Session,
    args: &ProduceArgs,
    target: &mut TopicRoute,
    pending: &mut Pending,
    report: &mut ProduceReport,
) -> Result<(), CliError> {
    let mut batches = std::mem::take(&mut pending.batches);
    pending.bytes = 0;
    let deadline = Instant::now() + session.timeout();
    let mut backoff = Duration::from_millis(100);
    while !batches.is_empty() {
        let timestamp_ms = now_ms();
        let mut by_leader: BTreeMap<String, Vec<(i32, Bytes)>> = BTreeMap::new();
        for (partition, records) in &batches {
            let encoded =
                encode_batch(records, timestamp_ms, args.compression).map_err(CliError::Message)?;
            let leader = target.leaders.get(partition).cloned().ok_or_else(|| {
                KafkaError::new(
                    codes::LEADER_NOT_AVAILABLE,
                    format!(
                        "partition {partition} of topic '{}' has no leader",
                        target.topic
                    ),
                )
            })?;
            by_leader
                .entry(leader)
                .or_default()
                .push((*partition, Bytes::from(encoded)));
        }
        let mut retry = BTreeMap::new();
        for (addr, data) in by_leader {
            let answers = send_produce(session, args, target, &addr, &data)?;
            for (partition, answer) in answers {
                let count = batches.get(&partition).map_or(0, |b| b.len() as u64);
                match answer {
                    Ok(base) => report.add(partition, base, count),
                    Err((code, _)) if is_retriable(code) && Instant::now() < deadline => {
                        if let Some(records) = batches.get(&partition) {
                            retry.insert(partition, records.clone());
                        }
                    }
                    Err((code, message)) => report.errors.push(ProduceFailure {
                        partition,
                        error: error_name(code),
                        message,
                        records: count,
                    }),
                }
            }
        }
        batches = retry;
        if !batches.is_empty() {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
            *target = resolve_target(session, &target.topic)?;
        }
    }
    Ok(())
}

/// One Produce request to one leader. Answers per partition: the base offset
/// (None with acks=0), or the error code and message.
#[allow(clippy::type_complexity)]
fn send_produce(
    session: &mut Session,
    args: &ProduceArgs,
    target: &TopicRoute,
    addr: &str,
    data: &[(i32, Bytes)],
) -> Result<Vec<(i32, Result<Option<i64>, (i16, Option<String>)>)>, CliError> {
    let build = |_version: i16| {
        let mut topic = TopicProduceData::default();
        topic.name = topic_name(&target.topic);
        topic.topic_id = target.topic_id;
        topic.partition_data = data
            .iter()
            .map(|(partition, batch)| {
                let mut p = PartitionProduceData::default();
                p.index = *partition;
                p.records = Some(batch.clone());
                p
            })
            .collect();
        let mut request = ProduceRequest::default();
        request.acks = args.acks;
        request.timeout_ms = args.conn.timeout_ms();
        request.topic_data = vec![topic];
        request
    };
    if args.acks == 0 {
        session.call(addr, |c: &mut Client| c.send_without_answer(build))?;
        return Ok(data.iter().map(|(p, _)| (*p, Ok(None))).collect());
    }
    let (_, response) = session.call(addr, |c: &mut Client| c.send(build))?;
    let mut answers = Vec::new();
    for (partition, _) in data {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == target.topic || t.topic_id == target.topic_id)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == *partition);
        let answer = match answer {
            None => Err((
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                Some("the broker's answer does not mention this partition".to_string()),
            )),
            Some(p) if p.error_code != codes::NONE => {
                let mut message = p.error_message.as_ref().map(|m| m.to_string());
                if message.is_none() {
                    message = p
                        .record_errors
                        .iter()
                        .find_map(|e| e.batch_index_error_message.as_ref().map(|m| m.to_string()));
                }
                Err((p.error_code, message.map(|m| tools::one_line(&m))))
            }
            Some(p) => Ok(Some(p.base_offset)),
        };
        answers.push((*partition, answer));
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn parse(args: &[&str]) -> Result<ProduceArgs, clap::Error> {
        let mut all = vec!["strom-produce"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.args)
    }

    #[test]
    fn murmur2_matches_kafkas_java_values() {
        // org.apache.kafka.common.utils.UtilsTest#testMurmur2 and known partitioner values.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
        assert_eq!(murmur2(b""), 275_646_681);
    }

    #[test]
    fn keys_go_to_the_java_default_partition() {
        // DefaultPartitioner: toPositive(murmur2(key)) % n.
        assert_eq!(
            partition_for_key(b"21", 3),
            (-973_932_308i32 & 0x7fff_ffff) % 3
        );
        assert_eq!(
            partition_for_key(b"foobar", 10),
            (-790_332_482i32 & 0x7fff_ffff) % 10
        );
        for n in 1..20 {
            let p = partition_for_key(b"a-little-bit-long-string", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    fn partitioner_fixed_keyed_and_sticky() {
        let mut p = Partitioner::new(3, None, 5);
        assert_eq!(p.partition(None), 2);
        assert_eq!(p.partition(None), 2);
        p.batch_sent();
        assert_eq!(p.partition(None), 0);
        assert_eq!(p.partition(Some(b"21")), partition_for_key(b"21", 3));
        let fixed = Partitioner::new(3, Some(1), 0);
        assert_eq!(fixed.partition(Some(b"21")), 1);
        assert_eq!(fixed.partition(None), 1);
    }

    #[test]
    fn key_splits_at_the_first_separator() {
        assert_eq!(
            split_key(b"k\tv\tw", b"\t"),
            (Some(&b"k"[..]), &b"v\tw"[..])
        );
        assert_eq!(split_key(b"\tv", b"\t"), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split_key(b"k::", b"::"), (Some(&b"k"[..]), &b""[..]));
        assert_eq!(split_key(b"novalue", b"\t"), (None, &b"novalue"[..]));
        assert_eq!(split_key(b"", b"\t"), (None, &b""[..]));
    }

    #[test]
    fn separators_take_escapes() {
        assert_eq!(parse_separator("\\n").map(|s| s.0), Ok(b"\n".to_vec()));
        assert_eq!(parse_separator("\\t").map(|s| s.0), Ok(b"\t".to_vec()));
        assert_eq!(parse_separator("::").map(|s| s.0), Ok(b"::".to_vec()));
        assert_eq!(parse_separator("\\r\\n").map(|s| s.0), Ok(b"\r\n".to_vec()));
        assert_eq!(parse_separator("\\0").map(|s| s.0), Ok(vec![0]));
        assert_eq!(parse_separator("\\\\").map(|s| s.0), Ok(b"\\".to_vec()));
        assert!(parse_separator("").is_err());
        assert!(parse_separator("\\x").is_err());
        assert!(parse_separator("a\\").is_err());
    }

    fn read_all(input: &[u8], delimiter: &[u8], max: usize) -> Result<Vec<Vec<u8>>, String> {
        let mut reader = RecordReader::new(input, delimiter.to_vec(), max);
        let mut out = Vec::new();
        let mut index = 0;
        loop {
            index += 1;
            match reader.next_record(index) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return Ok(out),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn reader_splits_records_and_keeps_a_last_unterminated_one() {
        let got = read_all(b"a\nbb\n\nccc", b"\n", 100).unwrap();
        assert_eq!(
            got,
            vec![b"a".to_vec(), b"bb".to_vec(), b"".to_vec(), b"ccc".to_vec()]
        );
        let got = read_all(b"a\n", b"\n", 100).unwrap();
        assert_eq!(got, vec![b"a".to_vec()]);
        assert_eq!(read_all(b"", b"\n", 100).unwrap(), Vec::<Vec<u8>>::new());
        let got = read_all(b"x|#y|z|#", b"|#", 100).unwrap();
        assert_eq!(got, vec![b"x".to_vec(), b"y|z".to_vec()]);
        let got = read_all(b"1\r\n2\r\n", b"\r\n", 100).unwrap();
        assert_eq!(got, vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn reader_refuses_a_record_over_the_limit() {
        assert_eq!(
            read_all(b"12345\n", b"\n", 5).unwrap(),
            vec![b"12345".to_vec()]
        );
        let err = read_all(b"ok\n123456\n", b"\n", 5).unwrap_err();
        assert_eq!(err, "record 2 is longer than 5 bytes (raise --batch-bytes)");
        let long = vec![b'x'; 10_000];
        assert!(read_all(&long, b"\n", 100).is_err());
    }

    #[test]
    fn report_merges_batches_of_a_partition() {
        let mut r = ProduceReport::default();
        r.add(0, Some(10), 5);
        r.add(0, Some(15), 2);
        r.add(2, None, 3);
        assert_eq!(r.records, 10);
        assert_eq!(
            r.partitions["0"],
            PartitionResult {
                first_offset: Some(10),
                last_offset: Some(16),
                count: 7
            }
        );
        assert_eq!(r.partitions["2"].first_offset, None);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["partitions"]["0"]["last_offset"], 16);
        assert!(json.get("errors").is_none());
        let table = render_report(&r);
        assert!(table.starts_with("PARTITION  FIRST-OFFSET  LAST-OFFSET  RECORDS\n0          10"));
    }

    #[test]
    fn flags() {
        let a = parse(&["t"]).unwrap();
        assert_eq!(
            (a.acks, a.compression, a.batch_bytes),
            (-1, Codec::None, 1 << 20)
        );
        assert_eq!(a.delimiter, Separator(b"\n".to_vec()));
        let a = parse(&[
            "t", "--acks", "0", "-z", "zstd", "-k", "\\t", "-H", "a=1", "-H", "a=2", "-p", "2",
        ])
        .unwrap();
        assert_eq!(
            (a.acks, a.compression, a.partition),
            (0, Codec::Zstd, Some(2))
        );
        assert_eq!(a.key_delim, Some(Separator(b"\t".to_vec())));
        assert_eq!(a.headers.len(), 2);
        assert!(parse(&["t", "--acks", "2"]).is_err());
        assert!(parse(&["t", "-z", "brotli"]).is_err());
        assert!(parse(&["t", "-p", "-1"]).is_err());
        assert!(parse(&[]).is_err());
    }
}

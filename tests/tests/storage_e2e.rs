//! Storage features end to end, as a user sees them through real clients:
//! retention by time and by size, DeleteRecords (and fetching below the log
//! start offset), a full disk (free-space threshold and ENOSPC on a small tmpfs)
//! and acks=all records surviving kill -9.
//!
//! The disk-full tests mount a tmpfs and so need root (CAP_SYS_ADMIN).

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DeleteRecordsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strom_net::request::encode_request;
use strom_tests::*;

/// No free-space floor: the machine running the tests may have little room in
/// /tmp, and the default floor is 1 GiB.
const NO_FREE_FLOOR: &str = "strom.log.dir.min.free.bytes = 0\n";
/// Retention runs this often in the retention tests.
const RETENTION_CHECK: &str = "log.retention.check.interval.ms = 200\n";
const HOUR_MS: i64 = 3_600_000;
/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i64 = 56;
/// OFFSET_OUT_OF_RANGE.
const OUT_OF_RANGE: i64 = 1;
/// librdkafka's local code for a fetch refused with OFFSET_OUT_OF_RANGE when
/// `auto.offset.reset=error`.
const AUTO_OFFSET_RESET: i64 = -140;

// ---------------------------------------------------------------- clients

fn storage(b: &str, args: &[&str]) -> Value {
    let mut all = vec!["--bootstrap", b];
    all.extend_from_slice(args);
    python("storage.py", &all).json()
}

fn create_topic(b: &str, topic: &str, partitions: u32, configs: &[&str]) {
    let partitions = partitions.to_string();
    let mut args = vec![
        "--bootstrap",
        b,
        "create",
        topic,
        "--partitions",
        &partitions,
    ];
    for config in configs {
        args.extend(["--config", config]);
    }
    let r = python("admin.py", &args).json();
    assert_eq!(r["error_code"], 0, "creating {topic} {configs:?}: {r}");
}

/// `storage.py produce`: numbered, self-checking records.
fn produce(b: &str, topic: &str, args: &[&str]) -> Value {
    let mut all = vec!["produce", "--topic", topic];
    all.extend_from_slice(args);
    storage(b, &all)
}

/// An acknowledged record: (seq, partition, offset).
type Ack = (i64, i64, i64);

fn acks(produced: &Value) -> Vec<Ack> {
    produced["acked"]
        .as_array()
        .unwrap_or_else(|| panic!("no acked list: {produced}"))
        .iter()
        .map(|a| {
            let n = |i: usize| a[i].as_i64().unwrap_or_else(|| panic!("bad ack {a}"));
            (n(0), n(1), n(2))
        })
        .collect()
}

fn error_codes(produced: &Value) -> Vec<i64> {
    produced["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no error list: {produced}"))
        .iter()
        .map(|e| e[1].as_i64().unwrap_or_else(|| panic!("bad error {e}")))
        .collect()
}

/// Produces and asserts every record was acknowledged.
fn produce_ok(b: &str, topic: &str, args: &[&str]) -> Vec<Ack> {
    let produced = produce(b, topic, args);
    assert!(
        error_codes(&produced).is_empty() && produced["undelivered"] == 0,
        "produce to {topic} {args:?} failed: {produced}"
    );
    acks(&produced)
}

/// A record read back: partition, offset, seq (None: the value was damaged),
/// timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    partition: i64,
    offset: i64,
    seq: Option<i64>,
    timestamp: i64,
}

/// `storage.py consume`: reads up to the high watermark; `from` is
/// "beginning" or an offset.
fn consume(b: &str, topic: &str, partition: Option<u32>, from: &str) -> Value {
    let p = partition.map(|p| p.to_string());
    let mut args = vec!["consume", "--topic", topic, "--from", from];
    if let Some(p) = &p {
        args.extend(["--partition", p.as_str()]);
    }
    storage(b, &args)
}

fn records(consumed: &Value) -> Vec<Rec> {
    assert_eq!(
        consumed["bad"],
        serde_json::json!([]),
        "damaged records read: {}",
        consumed["bad"]
    );
    consumed["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records: {consumed}"))
        .iter()
        .map(|r| Rec {
            partition: r[0].as_i64().expect("partition"),
            offset: r[1].as_i64().expect("offset"),
            seq: r[2].as_i64(),
            timestamp: r[3].as_i64().expect("timestamp"),
        })
        .collect()
}

/// Reads every partition from the beginning without error.
fn read_all(b: &str, topic: &str) -> Vec<Rec> {
    let consumed = consume(b, topic, None, "beginning");
    assert!(consumed["error"].is_null(), "consume {topic}: {consumed}");
    records(&consumed)
}

/// The records are intact and dense (no gap, no duplicate) in each partition.
fn assert_dense(recs: &[Rec], what: &str) {
    let mut next: BTreeMap<i64, i64> = BTreeMap::new();
    for r in recs {
        assert!(r.seq.is_some(), "{what}: damaged record {r:?}");
        if let Some(n) = next.get(&r.partition) {
            assert_eq!(r.offset, *n, "{what}: gap or duplicate at {r:?}");
        }
        next.insert(r.partition, r.offset + 1);
    }
}

/// Every acknowledged record is there, intact, at the offset its delivery
/// report gave; with `exact`, nothing else is.
fn assert_acked_present(recs: &[Rec], acked: &[Ack], exact: bool, what: &str) {
    assert_dense(recs, what);
    let found: BTreeMap<(i64, i64), Option<i64>> = recs
        .iter()
        .map(|r| ((r.partition, r.offset), r.seq))
        .collect();
    let missing: Vec<&Ack> = acked
        .iter()
        .filter(|(seq, p, off)| found.get(&(*p, *off)) != Some(&Some(*seq)))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {} acknowledged records lost or changed, first (seq, partition, offset): {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    if exact {
        assert_eq!(
            recs.len(),
            acked.len(),
            "{what}: records stored that were never acknowledged"
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Marks {
    low: i64,
    high: i64,
    earliest: i64,
    latest: i64,
}

/// Watermarks (consumer) and ListOffsets earliest/latest (AdminClient).
fn watermarks(b: &str, topic: &str, partition: u32) -> Marks {
    let p = partition.to_string();
    let w = storage(b, &["watermarks", "--topic", topic, "--partition", &p]);
    let n = |k: &str| w[k].as_i64().unwrap_or_else(|| panic!("{k} missing: {w}"));
    Marks {
        low: n("low"),
        high: n("high"),
        earliest: n("earliest"),
        latest: n("latest"),
    }
}

fn marks(low: i64, high: i64) -> Marks {
    Marks {
        low,
        high,
        earliest: low,
        latest: high,
    }
}

/// AdminClient.delete_records; returns (low watermark, error code).
fn delete_records(b: &str, topic: &str, partition: u32, offset: i64) -> (Option<i64>, i64) {
    let (p, o) = (partition.to_string(), offset.to_string());
    let r = storage(
        b,
        &[
            "delete-records",
            "--topic",
            topic,
            "--partition",
            &p,
            "--offset",
            &o,
        ],
    );
    (
        r["low_watermark"].as_i64(),
        r["error_code"].as_i64().expect("error_code"),
    )
}

/// Consuming from `offset` fails with OFFSET_OUT_OF_RANGE (librdkafka with
/// `auto.offset.reset=error`, and kcat).
fn assert_out_of_range(b: &str, topic: &str, partition: u32, offset: i64) {
    let consumed = consume(b, topic, Some(partition), &offset.to_string());
    assert_eq!(
        consumed["error"][0], AUTO_OFFSET_RESET,
        "fetch at {offset} must be refused: {consumed}"
    );
    let text = consumed["error"][2].as_str().unwrap_or_default();
    assert!(text.contains("Offset out of range"), "{consumed}");
    assert_eq!(consumed["records"], serde_json::json!([]), "{consumed}");
    let (p, o) = (partition.to_string(), offset.to_string());
    let out = try_kcat(
        &[
            "-b",
            b,
            "-C",
            "-t",
            topic,
            "-p",
            &p,
            "-o",
            &o,
            "-e",
            "-X",
            "auto.offset.reset=error",
        ],
        None,
    );
    assert!(
        !out.success() && out.stderr.contains("Offset out of range"),
        "kcat -o {offset} must fail with Offset out of range: {out}"
    );
}

// ---------------------------------------------------------------- raw protocol

fn exchange<Req: Encodable, Resp: Decodable>(
    bootstrap: &str,
    api_key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let frame =
        encode_request(api_key, version, 7, "strom-storage-test", request).expect("encode request");
    let mut stream = raw_connect(bootstrap);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(&frame).expect("send");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).expect("response body");
    let mut buf = bytes::Bytes::from(response);
    assert_eq!(buf.get_i32(), 7, "correlation id");
    if api_key.response_header_version(version) >= 1 {
        assert_eq!(buf.get_u8(), 0, "no response header tags");
    }
    Resp::decode(&mut buf, version).expect("decode response")
}

/// One acks=all Produce v8 of one record; returns (error code, error message,
/// base offset).
fn raw_produce(b: &str, topic: &str, partition: i32, value: &[u8]) -> (i16, String, i64) {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: None,
        value: Some(bytes::Bytes::copy_from_slice(value)),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode batch");
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(batch.freeze());
    let mut t = TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![data];
    request.topic_data = vec![t];
    let r: ProduceResponse = exchange(b, ApiKey::Produce, 8, &request);
    let p = &r.responses[0].partition_responses[0];
    let message = p
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    (p.error_code, message, p.base_offset)
}

/// One DeleteRecords request; returns (low watermark, error code).
fn raw_delete_records(
    b: &str,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i64, i16) {
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut request = DeleteRecordsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = 10_000;
    let r: DeleteRecordsResponse = exchange(b, ApiKey::DeleteRecords, version, &request);
    let p = &r.topics[0].partitions[0];
    (p.low_watermark, p.error_code)
}

// ---------------------------------------------------------------- files, time

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

fn partition_dir(broker: &Broker, topic: &str, partition: u32) -> PathBuf {
    broker.data_dir().join(format!("{topic}-{partition}"))
}

/// (base offset, bytes) of each segment of a partition, oldest first.
fn segments(dir: &Path) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().ok()?.len()))
        })
        .collect();
    out.sort_unstable();
    out
}

/// The `log-start-offset` line of the partition's checkpoint file.
fn checkpointed_log_start(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("checkpoint")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("log-start-offset "))
        .and_then(|n| n.parse().ok())
}

/// Polls `check` every 100 ms until it returns Some, failing after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out ({timeout:?}) waiting for {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- tmpfs

/// A tmpfs mounted on a fresh directory, unmounted on drop (declare it before
/// the broker that uses it, so the broker is stopped first).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size_mib: u64) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("strom-e2e-tmpfs-")
            .tempdir()
            .expect("tempdir");
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path());
        let out = run_command(cmd, None, Duration::from_secs(20));
        assert!(
            out.success(),
            "cannot mount a tmpfs (these tests need root): {out}"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes available to unprivileged writers (`statvfs` f_bavail * f_bsize).
    fn free_bytes(&self) -> u64 {
        let mut cmd = Command::new("stat");
        cmd.args(["-f", "-c", "%a %S"]).arg(self.path());
        let out = run_command(cmd, None, Duration::from_secs(10));
        assert!(out.success(), "stat -f: {out}");
        let nums: Vec<u64> = out
            .stdout
            .split_whitespace()
            .map(|n| n.parse().expect("stat number"))
            .collect();
        nums[0] * nums[1]
    }

    /// Writes a filler file so that about `leave` bytes stay free (0: until
    /// the file system refuses more). Returns its path.
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("create filler");
        let mut left = self.free_bytes().saturating_sub(leave);
        let chunk = vec![0xA5u8; 1 << 20];
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            match file.write_all(&chunk[..n]) {
                Ok(()) => left -= n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("writing the filler: {e}"),
            }
        }
        if leave == 0 {
            // Top up the last partial page.
            while file.write_all(&[0u8; 512]).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(self.path()).status();
        if !status.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

// ---------------------------------------------------------------- background client

/// A client script running in the background, killed on drop.
struct Background {
    child: Option<Child>,
    log: PathBuf,
}

impl Background {
    fn spawn(script: &str, args: &[&str], log: PathBuf) -> Background {
        require_confluent_kafka();
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let out = std::fs::File::create(&log).expect("client log");
        let child = Command::new(python)
            .arg(clients_dir().join(script))
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("spawn client");
        Background {
            child: Some(child),
            log,
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("try_wait").is_none())
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The complete `seq partition offset` lines of a `--state` file.
fn state_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let n: Vec<i64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (n.len() == 3).then(|| (n[0], n[1], n[2]))
        })
        .collect()
}

// ================================================================ tests

/// retention.ms (topic) and log.retention.ms (broker): sealed segments whose
/// newest record is too old go, the log start offset moves (and is
/// checkpointed and survives a restart), fetches below it are refused; a log
/// where everything expired is rolled and emptied; retention.ms=-1 and
/// cleanup.policy=compact keep everything.
#[test]
fn retention_by_time_deletes_expired_segments() {
    let config = format!("{NO_FREE_FLOOR}{RETENTION_CHECK}log.retention.ms = 1800000\n");
    let mut broker = Broker::start(BrokerOpts::default().config(&config));
    let b = broker.bootstrap();
    let small = "segment.bytes=4096";
    let ten_minutes = "retention.ms=600000";
    create_topic(&b, "keep-forever", 1, &[small, "retention.ms=-1"]);
    create_topic(
        &b,
        "compacted",
        1,
        &[small, ten_minutes, "cleanup.policy=compact"],
    );
    create_topic(&b, "mixed", 1, &[small, ten_minutes]);
    create_topic(&b, "all-old", 1, &[small, ten_minutes]);
    create_topic(&b, "broker-default", 1, &[small]);

    let hour_old = ["--age-ms", "3600000", "--value-size", "500"];
    let old = |topic: &str, count: &str| {
        let mut args = vec!["--count", count, "--one-at-a-time"];
        args.extend(hour_old);
        produce_ok(&b, topic, &args)
    };
    old("keep-forever", "40");
    old("compacted", "40");
    // 60 records an hour old, then 30 new ones: ~7 records per segment.
    let mut mixed_args = vec!["--count", "90", "--aged-below", "60", "--one-at-a-time"];
    mixed_args.extend(hour_old);
    produce_ok(&b, "mixed", &mixed_args);
    old("all-old", "40");
    old("broker-default", "40");

    // mixed: every segment holding only old records goes; the segment with
    // the first new record (offset 60) stays, so the log start is at most 60.
    let mixed_dir = partition_dir(&broker, "mixed", 0);
    let low = wait_for(
        "retention to delete mixed's expired segments",
        Duration::from_secs(15),
        || {
            let segs = segments(&mixed_dir);
            let first = segs.first()?.0;
            let old_only_left = segs.iter().any(|(base, _)| *base > first && *base <= 60);
            (first > 0 && !old_only_left).then_some(first)
        },
    );
    assert!(
        low <= 60,
        "a segment with new records was deleted: log start {low}"
    );
    // all-old: rolled, then every segment deleted; the log is empty at 40.
    let all_old_dir = partition_dir(&broker, "all-old", 0);
    wait_for(
        "retention to empty all-old",
        Duration::from_secs(15),
        || (segments(&all_old_dir) == [(40, 0)]).then_some(()),
    );
    // broker-default: log.retention.ms (30 min) applies to an hour-old log.
    let default_dir = partition_dir(&broker, "broker-default", 0);
    wait_for(
        "log.retention.ms to apply to broker-default",
        Duration::from_secs(15),
        || (segments(&default_dir).first()?.0 == 40).then_some(()),
    );
    // The new log start offsets are checkpointed.
    for (dir, start) in [(&mixed_dir, low), (&all_old_dir, 40), (&default_dir, 40)] {
        wait_for(
            &format!(
                "checkpoint of {} to say log-start-offset {start}",
                dir.display()
            ),
            Duration::from_secs(10),
            || (checkpointed_log_start(dir) == Some(start)).then_some(()),
        );
    }
    // A few more retention passes change nothing for the topics that keep all.
    thread::sleep(Duration::from_millis(1000));
    assert!(broker.stderr().contains("retention deleted segments"));
    for topic in ["keep-forever", "compacted"] {
        assert_eq!(watermarks(&b, topic, 0), marks(0, 40), "{topic}");
        assert!(segments(&partition_dir(&broker, topic, 0)).len() > 3);
        let recs = read_all(&b, topic);
        assert_eq!(recs.len(), 40, "{topic} lost records");
        assert_dense(&recs, topic);
    }

    // What a client sees.
    assert_eq!(watermarks(&b, "mixed", 0), marks(low, 90));
    let recs = read_all(&b, "mixed");
    assert_dense(&recs, "mixed");
    assert_eq!(recs.first().map(|r| r.offset), Some(low));
    assert_eq!(recs.len() as i64, 90 - low);
    let cutoff = now_ms() - HOUR_MS + 60_000;
    for r in &recs {
        assert_eq!(r.seq, Some(r.offset), "{r:?}");
        assert_eq!(r.timestamp < cutoff, r.offset < 60, "timestamp of {r:?}");
    }
    assert_out_of_range(&b, "mixed", 0, 0);
    assert_out_of_range(&b, "mixed", 0, low - 1);
    assert_eq!(watermarks(&b, "all-old", 0), marks(40, 40));
    assert_eq!(watermarks(&b, "broker-default", 0), marks(40, 40));
    assert!(read_all(&b, "all-old").is_empty());
    assert_out_of_range(&b, "all-old", 0, 39);
    // Appends continue at the log end; new records are kept.
    let appended = produce_ok(&b, "all-old", &["--count", "3", "--start", "40"]);
    assert_eq!(appended, vec![(40, 0, 40), (41, 0, 41), (42, 0, 42)]);

    // The log start offsets survive a restart.
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(watermarks(&b, "mixed", 0), marks(low, 90));
    assert_eq!(watermarks(&b, "all-old", 0), marks(40, 43));
    let recs = read_all(&b, "all-old");
    assert_eq!(
        recs.iter().map(|r| (r.offset, r.seq)).collect::<Vec<_>>(),
        vec![(40, Some(40)), (41, Some(41)), (42, Some(42))]
    );
    assert_out_of_range(&b, "mixed", 0, 0);
    broker.stop();
}

/// retention.bytes / log.retention.bytes: the oldest sealed segments go while
/// the partition stays above the limit without them; the active segment is
/// never deleted; retention.bytes=-1 keeps everything.
#[test]
fn retention_by_size_keeps_the_newest_segments() {
    let config = format!(
        "{NO_FREE_FLOOR}{RETENTION_CHECK}log.segment.bytes = 10240\nlog.retention.bytes = 30000\n"
    );
    let broker = Broker::start(BrokerOpts::default().config(&config));
    let b = broker.bootstrap();
    create_topic(&b, "sized", 1, &[]);
    create_topic(&b, "one-segment", 1, &["segment.bytes=104857600"]);
    create_topic(&b, "unlimited", 1, &["retention.bytes=-1"]);
    // One record (~1 KB) per batch.
    let args = ["--count", "120", "--value-size", "1000", "--one-at-a-time"];
    for topic in ["one-segment", "unlimited", "sized"] {
        produce_ok(&b, topic, &args);
    }

    let dir = partition_dir(&broker, "sized", 0);
    let limit = 30_000u64;
    let segs = wait_for(
        "retention.bytes to trim sized",
        Duration::from_secs(15),
        || {
            let segs = segments(&dir);
            let total: u64 = segs.iter().map(|(_, size)| size).sum();
            // Done when removing the oldest segment would go below the limit.
            let done = segs.len() >= 2 && total - segs[0].1 < limit;
            done.then_some(segs)
        },
    );
    let total: u64 = segs.iter().map(|(_, size)| size).sum();
    assert!(
        total >= limit,
        "more than needed was deleted: {total} bytes left: {segs:?}"
    );
    let low = segs[0].0;
    assert!(low > 0, "{segs:?}");
    wait_for(
        "the checkpoint to record the new log start",
        Duration::from_secs(10),
        || (checkpointed_log_start(&dir) == Some(low)).then_some(()),
    );
    assert_eq!(watermarks(&b, "sized", 0), marks(low, 120));
    let recs = read_all(&b, "sized");
    assert_dense(&recs, "sized");
    assert_eq!(recs.len() as i64, 120 - low);
    assert!(recs.iter().all(|r| r.seq == Some(r.offset)));
    assert_out_of_range(&b, "sized", 0, low - 1);

    // Let a few more passes run: the others keep everything.
    thread::sleep(Duration::from_millis(1000));
    let one = segments(&partition_dir(&broker, "one-segment", 0));
    assert_eq!(one.len(), 1, "one-segment rolled: {one:?}");
    assert!(one[0].1 > limit, "{one:?}");
    assert!(segments(&partition_dir(&broker, "unlimited", 0)).len() > 10);
    for topic in ["one-segment", "unlimited"] {
        assert_eq!(watermarks(&b, topic, 0), marks(0, 120), "{topic}");
        let recs = read_all(&b, topic);
        assert_eq!(recs.len(), 120, "{topic}");
        assert_dense(&recs, topic);
    }
}

/// DeleteRecords through the AdminClient and raw v0-v2: the log start offset
/// moves, segments below it go, fetches below it get OFFSET_OUT_OF_RANGE,
/// ListOffsets earliest follows; an offset above the high watermark is
/// refused; -1 means the high watermark; every change survives kill -9 right
/// after the response.
#[test]
fn delete_records_moves_the_log_start_and_survives_kill_9() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create_topic(&b, "dr", 2, &["segment.bytes=4096"]);
    let p0 = produce_ok(
        &b,
        "dr",
        &[
            "--partition",
            "0",
            "--count",
            "200",
            "--value-size",
            "200",
            "--one-at-a-time",
        ],
    );
    assert_eq!(p0.last(), Some(&(199, 0, 199)));
    let p1 = produce_ok(
        &b,
        "dr",
        &["--partition", "1", "--count", "50", "--start", "1000"],
    );
    let dir = partition_dir(&broker, "dr", 0);
    assert_eq!(segments(&dir).first().map(|s| s.0), Some(0));

    assert_eq!(delete_records(&b, "dr", 0, 120), (Some(120), 0));
    // Checkpointed before the answer.
    assert_eq!(checkpointed_log_start(&dir), Some(120));
    let segs = segments(&dir);
    assert!(segs[0].0 > 0 && segs[0].0 <= 120, "{segs:?}");
    assert!(
        segs.get(1).is_none_or(|s| s.0 > 120),
        "a segment wholly below 120 is still there: {segs:?}"
    );
    assert_eq!(watermarks(&b, "dr", 0), marks(120, 200));
    assert_eq!(
        watermarks(&b, "dr", 1),
        marks(0, 50),
        "partition 1 untouched"
    );
    let recs = read_all(&b, "dr");
    let p0_read: Vec<&Rec> = recs.iter().filter(|r| r.partition == 0).collect();
    assert_eq!(p0_read.len(), 80);
    assert_eq!(p0_read[0].offset, 120);
    assert!(p0_read.iter().all(|r| r.seq == Some(r.offset)));
    assert_acked_present(
        &recs,
        &[&p0[120..], &p1[..]].concat(),
        true,
        "after DeleteRecords",
    );
    assert_out_of_range(&b, "dr", 0, 0);
    assert_out_of_range(&b, "dr", 0, 119);
    let from_150 = consume(&b, "dr", Some(0), "150");
    assert!(from_150["error"].is_null(), "{from_150}");
    assert_eq!(records(&from_150).first().map(|r| r.offset), Some(150));

    // Above the high watermark: refused, nothing moves. Below the log start:
    // a no-op that reports the log start.
    assert_eq!(delete_records(&b, "dr", 0, 201), (None, OUT_OF_RANGE));
    assert_eq!(delete_records(&b, "dr", 0, 100), (Some(120), 0));
    assert_eq!(watermarks(&b, "dr", 0), marks(120, 200));
    // Every version of the API; unknown partitions are refused.
    for (version, offset) in [(0i16, 125i64), (1, 130), (2, 135)] {
        assert_eq!(
            raw_delete_records(&b, version, "dr", 0, offset),
            (offset, 0),
            "DeleteRecords v{version}"
        );
        assert_eq!(
            raw_delete_records(&b, version, "dr", 0, 500),
            (-1, OUT_OF_RANGE as i16),
            "DeleteRecords v{version} above the high watermark"
        );
    }
    assert_eq!(
        raw_delete_records(&b, 2, "dr", 7, 1).1,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(raw_delete_records(&b, 2, "nope", 0, 1).1, 3);

    // kill -9 right after the answer: the log start offset is kept.
    assert_eq!(delete_records(&b, "dr", 0, 140), (Some(140), 0));
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(watermarks(&b, "dr", 0), marks(140, 200));
    assert_eq!(watermarks(&b, "dr", 1), marks(0, 50));
    assert_acked_present(
        &read_all(&b, "dr"),
        &[&p0[140..], &p1[..]].concat(),
        true,
        "after kill -9",
    );
    assert_out_of_range(&b, "dr", 0, 139);

    // -1: everything up to the high watermark.
    assert_eq!(delete_records(&b, "dr", 0, -1), (Some(200), 0));
    assert_eq!(watermarks(&b, "dr", 0), marks(200, 200));
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(watermarks(&b, "dr", 0), marks(200, 200));
    assert_eq!(
        produce_ok(
            &b,
            "dr",
            &["--partition", "0", "--count", "1", "--start", "200"]
        ),
        vec![(200, 0, 200)]
    );
    let recs = consume(&b, "dr", Some(0), "beginning");
    assert_eq!(
        records(&recs)
            .iter()
            .map(|r| (r.offset, r.seq))
            .collect::<Vec<_>>(),
        vec![(200, Some(200))]
    );
    broker.stop();
}

/// Free space below strom.log.dir.min.free.bytes: produce fails with
/// KAFKA_STORAGE_ERROR (on every shard), fetches work, a retrying producer
/// gets through once space is freed, and nothing acknowledged is lost.
#[test]
fn disk_full_threshold_refuses_produce_until_space_is_freed() {
    let fs = Tmpfs::mount(32);
    let config = "strom.log.dir.min.free.bytes = 8388608\n";
    let broker = Broker::start(
        BrokerOpts::default()
            .smp(2)
            .config(config)
            .data_dir(fs.path().join("data")),
    );
    let b = broker.bootstrap();
    create_topic(&b, "df", 2, &[]);
    let mut acked = produce_ok(&b, "df", &["--count", "400", "--value-size", "1000"]);

    // Leave 4 MiB: below the 8 MiB floor. Each shard notices within its
    // 0.5 s check.
    let filler = fs.fill_leaving(4 << 20);
    wait_for(
        "both shards to notice the free space is below the floor",
        Duration::from_secs(5),
        || {
            let warned = broker
                .stderr()
                .matches("free space below strom.log.dir.min.free.bytes")
                .count();
            (warned >= 2).then_some(())
        },
    );
    for partition in ["0", "1"] {
        let refused = produce(
            &b,
            "df",
            &[
                "--partition",
                partition,
                "--count",
                "1",
                "--start",
                "10000",
                "--retries",
                "0",
                "--timeout",
                "10",
            ],
        );
        assert_eq!(
            error_codes(&refused),
            vec![STORAGE_ERROR],
            "partition {partition}: produce below the free-space floor must fail with KAFKA_STORAGE_ERROR: {refused}"
        );
    }
    // The refusal lasts, and says why.
    let again = produce(
        &b,
        "df",
        &[
            "--count",
            "5",
            "--start",
            "20000",
            "--retries",
            "0",
            "--one-at-a-time",
        ],
    );
    assert_eq!(error_codes(&again), vec![STORAGE_ERROR; 5], "{again}");
    let (code, message, _) = raw_produce(&b, "df", 0, b"refused");
    assert_eq!(i64::from(code), STORAGE_ERROR, "{message}");
    assert!(message.contains("disk space"), "error message: {message:?}");
    assert!(broker.stderr().contains("strom.log.dir.min.free.bytes"));

    // Fetches keep working.
    let recs = read_all(&b, "df");
    assert_acked_present(&recs, &acked, true, "while the disk is full");

    // A producer that retries (librdkafka's default) started now gets through
    // by itself once space is freed.
    let bootstrap = b.clone();
    let retrying = thread::spawn(move || {
        let out = try_python(
            "storage.py",
            &[
                "--bootstrap",
                &bootstrap,
                "produce",
                "--topic",
                "df",
                "--count",
                "20",
                "--start",
                "30000",
                "--timeout",
                "40",
            ],
            &[],
            Duration::from_secs(60),
        );
        assert!(out.success(), "{out}");
        out.json()
    });
    thread::sleep(Duration::from_millis(1500));
    let freed_at = now_ms();
    std::fs::remove_file(&filler).expect("remove filler");
    let late = retrying.join().expect("retrying producer");
    assert!(
        error_codes(&late).is_empty() && late["undelivered"] == 0,
        "{late}"
    );
    assert!(
        late["first_ack_at_ms"].as_i64().expect("first ack") >= freed_at,
        "a record was acknowledged while the disk was full (freed at {freed_at}): {late}"
    );
    acked.extend(acks(&late));
    acked.extend(produce_ok(
        &b,
        "df",
        &["--count", "50", "--start", "40000", "--retries", "0"],
    ));
    assert!(broker.stderr().contains("accepting produce requests"));

    // Exactly the acknowledged records, dense, intact.
    let recs = read_all(&b, "df");
    assert_acked_present(&recs, &acked, true, "after space was freed");
    drop(broker);
    drop(fs);
}

/// A write that hits ENOSPC: the partition answers KAFKA_STORAGE_ERROR, the
/// log ends where it did (no partial batch), fetches work, produce resumes by
/// itself once space is freed, and a graceful restart recovers the same
/// records.
#[test]
fn disk_full_enospc_refuses_produce_and_keeps_acknowledged_records() {
    let fs = Tmpfs::mount(32);
    // The periodic checkpoint write is kept out of the full-disk window (see
    // `disk_full_periodic_checkpoint_keeps_the_broker_running`).
    let config =
        "strom.log.dir.min.free.bytes = 0\nlog.flush.offset.checkpoint.interval.ms = 600000\n";
    let mut broker = Broker::start(
        BrokerOpts::default()
            .config(config)
            .data_dir(fs.path().join("data")),
    );
    let b = broker.bootstrap();
    create_topic(&b, "nospace", 1, &[]);
    let mut acked = produce_ok(&b, "nospace", &["--count", "300", "--value-size", "1000"]);

    // 1 MiB left; 64 KiB records until the file system says no.
    let filler = fs.fill_leaving(1 << 20);
    let filled = produce(
        &b,
        "nospace",
        &[
            "--count",
            "200",
            "--start",
            "1000",
            "--value-size",
            "65536",
            "--one-at-a-time",
            "--until",
            "error",
            "--retries",
            "0",
            "--timeout",
            "20",
        ],
    );
    assert_eq!(
        error_codes(&filled).first(),
        Some(&STORAGE_ERROR),
        "ENOSPC must fail the produce with KAFKA_STORAGE_ERROR: {filled}"
    );
    let before_full = acks(&filled);
    assert!(
        (1..=20).contains(&before_full.len()),
        "about 1 MiB of 64 KiB records fit: {filled}"
    );
    acked.extend(before_full);
    let again = produce(
        &b,
        "nospace",
        &[
            "--count",
            "3",
            "--start",
            "2000",
            "--value-size",
            "65536",
            "--retries",
            "0",
            "--one-at-a-time",
        ],
    );
    assert_eq!(error_codes(&again), vec![STORAGE_ERROR; 3], "{again}");
    let (code, message, _) = raw_produce(&b, "nospace", 0, &[7u8; 65536]);
    assert_eq!(i64::from(code), STORAGE_ERROR, "{message}");
    assert!(message.contains("disk space"), "error message: {message:?}");
    assert!(broker.stderr().contains("disk full"));

    // Fetches work; the log holds exactly what was acknowledged.
    let recs = read_all(&b, "nospace");
    assert_acked_present(&recs, &acked, true, "while the disk is full");
    broker.assert_running();

    // Space back: produce resumes by itself.
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = produce(
        &b,
        "nospace",
        &[
            "--count",
            "100",
            "--start",
            "3000",
            "--value-size",
            "1000",
            "--one-at-a-time",
            "--until",
            "ok",
            "--retries",
            "0",
            "--timeout",
            "10",
        ],
    );
    assert!(
        !acks(&resumed).is_empty(),
        "produce did not resume: {resumed}"
    );
    assert!(
        resumed["elapsed"].as_f64().expect("elapsed") < 5.0,
        "{resumed}"
    );
    acked.extend(acks(&resumed));
    acked.extend(produce_ok(
        &b,
        "nospace",
        &[
            "--count",
            "100",
            "--start",
            "4000",
            "--value-size",
            "65536",
            "--retries",
            "0",
        ],
    ));
    let recs = read_all(&b, "nospace");
    assert_acked_present(&recs, &acked, true, "after space was freed");
    let end = recs.last().expect("records").offset + 1;

    // Graceful restart: same records, appends continue at the end.
    broker.restart();
    let b = broker.bootstrap();
    let recs = read_all(&b, "nospace");
    assert_acked_present(&recs, &acked, true, "after a restart");
    let next = produce_ok(&b, "nospace", &["--count", "1", "--start", "5000"]);
    assert_eq!(next, vec![(5000, 0, end)]);
    broker.stop();
    drop(fs);
}

/// acks=all with the default write.caching=false, and with write caching on:
/// every acknowledged record survives kill -9 in the middle of producing.
#[test]
fn kill_9_while_producing_keeps_every_acknowledged_record() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create_topic(&b, "synced", 4, &[]);
    create_topic(
        &b,
        "cached",
        4,
        &["write.caching=true", "flush.messages=1000", "flush.ms=50"],
    );
    let mut producers = Vec::new();
    for topic in ["synced", "cached"] {
        let state = broker.work_dir().join(format!("{topic}.acks"));
        let log = broker.work_dir().join(format!("{topic}.producer.log"));
        let bg = Background::spawn(
            "storage.py",
            &[
                "--bootstrap",
                &b,
                "produce",
                "--topic",
                topic,
                "--count",
                "200000",
                "--state",
                &state.display().to_string(),
                "--message-timeout-ms",
                "5000",
                "--timeout",
                "30",
            ],
            log,
        );
        producers.push((topic, state, bg));
    }
    for (topic, state, bg) in &producers {
        wait_for(
            &format!("5000 acknowledgements on {topic}"),
            Duration::from_secs(20),
            || (state_acks(state).len() >= 5000).then_some(()),
        );
        assert!(
            !bg.output().contains("FAIL"),
            "{topic} producer: {}",
            bg.output()
        );
    }
    for (topic, _, bg) in &mut producers {
        assert!(
            bg.running(),
            "{topic} producer stopped early: {}",
            bg.output()
        );
    }
    broker.kill9();
    let mut acked = Vec::new();
    for (_, state, mut bg) in producers {
        bg.kill();
        acked.push(state_acks(&state));
    }
    broker.restart();
    let b = broker.bootstrap();
    for (topic, acked) in ["synced", "cached"].into_iter().zip(acked) {
        let recs = read_all(&b, topic);
        assert_acked_present(&recs, &acked, false, topic);
        let partitions: BTreeSet<i64> = recs.iter().map(|r| r.partition).collect();
        assert_eq!(
            partitions.len(),
            4,
            "{topic}: keys spread over 4 partitions"
        );
    }
    broker.stop();
}

// ------------------------------------------- disk full: checkpoints and rolls

/// With the disk completely full, the periodic checkpoint write
/// (log.flush.offset.checkpoint.interval.ms) must not stop the broker.
#[test]
fn disk_full_periodic_checkpoint_keeps_the_broker_running() {
    let fs = Tmpfs::mount(32);
    let config =
        "strom.log.dir.min.free.bytes = 0\nlog.flush.offset.checkpoint.interval.ms = 200\n";
    let mut broker = Broker::start(
        BrokerOpts::default()
            .config(config)
            .data_dir(fs.path().join("data")),
    );
    let b = broker.bootstrap();
    create_topic(&b, "cp", 1, &[]);
    let one = [
        "--count",
        "1",
        "--value-size",
        "500",
        "--one-at-a-time",
        "--message-timeout-ms",
        "5000",
    ];
    let mut acked = produce_ok(&b, "cp", &one);
    let filler = fs.fill_leaving(0);
    // The next record fits in the segment's last, already allocated page, so
    // the append succeeds on the full file system and leaves the checkpoint
    // stale; the next checkpoint tick then has no room for it.
    let segs = segments(&partition_dir(&broker, "cp", 0));
    assert!(segs[0].1 % 4096 < 3000, "{segs:?}");
    acked.extend(produce_ok(
        &b,
        "cp",
        &[&one[..], &["--start", "1"]].concat(),
    ));
    thread::sleep(Duration::from_millis(1000));
    broker.assert_running();
    assert_acked_present(&read_all(&b, "cp"), &acked, true, "while the disk is full");
    std::fs::remove_file(filler).expect("remove filler");
    produce_ok(&b, "cp", &["--count", "5", "--start", "200"]);
    drop(broker);
    drop(fs);
}

/// With the disk completely full, a produce that needs a segment roll must
/// get KAFKA_STORAGE_ERROR, not stop the broker.
#[test]
fn disk_full_segment_roll_keeps_the_broker_running() {
    let fs = Tmpfs::mount(32);
    let config =
        "strom.log.dir.min.free.bytes = 0\nlog.flush.offset.checkpoint.interval.ms = 600000\n";
    let mut broker = Broker::start(
        BrokerOpts::default()
            .config(config)
            .data_dir(fs.path().join("data")),
    );
    let b = broker.bootstrap();
    create_topic(&b, "roll", 1, &["segment.bytes=4096"]);
    let acked = produce_ok(&b, "roll", &["--count", "1", "--value-size", "3000"]);
    let filler = fs.fill_leaving(0);
    // 3000 + 2000 bytes do not fit in 4096: this append rolls first.
    let refused = produce(
        &b,
        "roll",
        &[
            "--count",
            "1",
            "--start",
            "1",
            "--value-size",
            "2000",
            "--retries",
            "0",
            "--one-at-a-time",
        ],
    );
    broker.assert_running();
    assert_eq!(error_codes(&refused), vec![STORAGE_ERROR], "{refused}");
    assert_acked_present(
        &read_all(&b, "roll"),
        &acked,
        true,
        "while the disk is full",
    );
    std::fs::remove_file(filler).expect("remove filler");
    thread::sleep(Duration::from_millis(700));
    produce_ok(
        &b,
        "roll",
        &[
            "--count",
            "1",
            "--start",
            "2",
            "--value-size",
            "2000",
            "--retries",
            "0",
        ],
    );
    drop(broker);
    drop(fs);
}

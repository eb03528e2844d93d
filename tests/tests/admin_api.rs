//! Admin APIs and topic configs with real clients: confluent-kafka's AdminClient
//! (librdkafka), kafka-python's protocol classes at pinned versions (and its
//! KafkaAdminClient for DescribeLogDirs), and a raw DescribeTopicPartitions
//! request encoded with the kafka-protocol crate. Each test checks what a user
//! sees: error codes, config values and sources, records, files on disk.

use bytes::Buf;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::Value;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strom_net::request::encode_request;
use strom_tests::*;

const UNKNOWN_TOPIC_OR_PARTITION: i64 = 3;
const MESSAGE_TOO_LARGE: i64 = 10;
const INVALID_TOPIC_EXCEPTION: i64 = 17;
const NOT_ENOUGH_REPLICAS: i64 = 19;
const TOPIC_ALREADY_EXISTS: i64 = 36;
const INVALID_PARTITIONS: i64 = 37;
const INVALID_CONFIG: i64 = 40;
const INVALID_REQUEST: i64 = 42;

/// No free-space floor: /tmp on the test machine may be small.
const NO_FREE_FLOOR: &str = "strom.log.dir.min.free.bytes = 0\n";
/// A static broker default that topics without an override inherit.
const STATIC_RETENTION: &str = "log.retention.ms = 3600000\n";

/// RecordBatch compression codecs (attributes bits 0-2).
const NONE: u8 = 0;
const GZIP: u8 = 1;
const SNAPPY: u8 = 2;
const LZ4: u8 = 3;
const ZSTD: u8 = 4;

// ---------------------------------------------------------------- clients

/// One long-lived `admin_api.py serve` process per test thread: each command
/// is one line in, one JSON line out, without a Python start-up per command.
struct Session {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl Session {
    fn start() -> Session {
        require_confluent_kafka();
        require_kafka_python();
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let mut child = Command::new(python)
            .arg(clients_dir().join("admin_api.py"))
            .arg("serve")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr.reopen().expect("reopen stderr file")))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start admin_api.py serve: {e}; {README_HINT}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Session {
            child,
            stdin,
            answers,
            stderr,
        }
    }

    fn call(&mut self, args: &[&str]) -> Value {
        let line = serde_json::to_string(args).expect("encode arguments");
        let sent = writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush());
        let answer = match sent {
            Ok(()) => self.answers.recv_timeout(CLIENT_TIMEOUT).ok(),
            Err(_) => None,
        };
        let stderr = || std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
        let Some(answer) = answer else {
            panic!(
                "admin_api.py {args:?}: no answer within {CLIENT_TIMEOUT:?}\n--- stderr ---\n{}",
                stderr()
            );
        };
        let answer: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("admin_api.py {args:?}: bad JSON ({e}): {answer}"));
        match answer.get("ok") {
            Some(summary) => summary.clone(),
            None => panic!(
                "admin_api.py {args:?} failed:\n{}\n--- stderr ---\n{}",
                answer["exception"].as_str().unwrap_or("?"),
                stderr()
            ),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Runs `admin_api.py --bootstrap B ARGS...` (in this thread's session) and
/// returns its JSON summary.
fn api(b: &str, args: &[&str]) -> Value {
    let mut all = vec!["--bootstrap", b];
    all.extend_from_slice(args);
    SESSION.with(|session| {
        let mut session = session.borrow_mut();
        session.get_or_insert_with(Session::start).call(&all)
    })
}

/// A kafka-python request at a pinned version: the decoded response.
fn kp(b: &str, command: &str, version: i16, args: &[&str]) -> Value {
    let version = version.to_string();
    let mut all = vec![command, "--version", &version];
    all.extend_from_slice(args);
    let out = api(b, &all);
    out["response"].clone()
}

fn create(b: &str, topic: &str, partitions: u32, configs: &[&str]) {
    let partitions = partitions.to_string();
    let mut args = vec!["create", topic, "--partitions", &partitions];
    for c in configs {
        args.extend(["--config", c]);
    }
    let out = api(b, &args);
    assert!(
        out["results"][topic].is_null(),
        "creating {topic} {configs:?}: {out}"
    );
}

/// DescribeConfigs with confluent-kafka; the configs by name (asserting no error).
fn describe(b: &str, kind: &str, name: &str) -> Value {
    let out = api(b, &["describe-configs", kind, name]);
    assert!(out["error"].is_null(), "describe {kind} {name:?}: {out}");
    out["configs"].clone()
}

fn entry<'a>(configs: &'a Value, key: &str) -> &'a Value {
    let e = &configs[key];
    assert!(
        e.is_object(),
        "no config {key:?} in {:?}",
        configs
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    );
    e
}

/// Asserts a described config's value and source (confluent-kafka's names).
fn assert_config(configs: &Value, key: &str, value: &str, source: &str) {
    let e = entry(configs, key);
    assert_eq!(e["value"], value, "value of {key}: {e}");
    assert_eq!(e["source"], source, "source of {key}: {e}");
}

/// IncrementalAlterConfigs with confluent-kafka: `ops` like "set:k=v", "delete:k".
fn incremental(b: &str, kind: &str, name: &str, ops: &[&str]) -> Value {
    let mut args = vec!["incremental", kind, name];
    args.extend_from_slice(ops);
    api(b, &args)
}

/// Legacy AlterConfigs with confluent-kafka: `pairs` like "k=v".
fn alter(b: &str, kind: &str, name: &str, pairs: &[&str]) -> Value {
    let mut args = vec!["alter-configs", kind, name];
    args.extend_from_slice(pairs);
    api(b, &args)
}

fn assert_ok(out: &Value, what: &str) {
    assert!(out["error"].is_null(), "{what}: {out}");
}

/// `out["error"]` is `[code, name, message]` with this code, and the message
/// mentions `mentions`.
fn assert_error(out: &Value, code: i64, mentions: &str, what: &str) {
    assert_eq!(out["error"][0], code, "{what}: {out}");
    let message = out["error"][2].as_str().unwrap_or("");
    assert!(
        message.contains(mentions),
        "{what}: the error message should name {mentions:?}: {out}"
    );
}

/// Produces `count` messages of `size` bytes to partition 0 (no retries).
fn produce(b: &str, topic: &str, count: u32, size: u32, extra: &[&str]) -> Value {
    let (count, size) = (count.to_string(), size.to_string());
    let mut args = vec!["produce", topic, "--count", &count, "--size", &size];
    args.extend_from_slice(extra);
    api(b, &args)
}

/// Produces one message and returns its error code (0 when acknowledged).
fn produce_one(b: &str, topic: &str, size: u32, extra: &[&str]) -> i64 {
    let out = produce(b, topic, 1, size, extra);
    match out["errors"].as_array().and_then(|e| e.first()) {
        Some(err) => err[0].as_i64().expect("error code"),
        None => {
            assert_eq!(out["acked"].as_array().map(Vec::len), Some(1), "{out}");
            0
        }
    }
}

/// Produces one message to each of partitions 0..`partitions`, asserting they
/// all get the same answer (each shard applies the same config); that code.
fn produce_each(b: &str, topic: &str, partitions: u32, size: u32, extra: &[&str]) -> i64 {
    let (n, size) = (partitions.to_string(), size.to_string());
    let mut args = vec!["produce", topic, "--each-partition", &n, "--size", &size];
    args.extend_from_slice(extra);
    let out = api(b, &args);
    let codes: Vec<i64> = out["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| {
            c.as_i64()
                .unwrap_or_else(|| panic!("no delivery report: {out}"))
        })
        .collect();
    assert_eq!(codes.len(), partitions as usize, "{out}");
    assert!(
        codes.iter().all(|c| *c == codes[0]),
        "{topic}: partitions answered differently: {codes:?}"
    );
    codes[0]
}

/// The earliest and latest offsets of partition `p` (ListOffsets).
fn offsets(b: &str, topic: &str, p: u32) -> (i64, i64) {
    let p = p.to_string();
    let out = api(b, &["list-offsets", topic, "--partition", &p]);
    let get = |k: &str| {
        out[k]
            .as_i64()
            .unwrap_or_else(|| panic!("{k} offset of {topic}: {out}"))
    };
    (get("earliest"), get("latest"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Polls `check` every 100 ms until it returns Some, failing after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
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

/// The codec of every batch of one partition, in log order, from its segments.
fn partition_codecs(dir: &Path) -> Vec<u8> {
    let mut codecs = Vec::new();
    for (base, _) in segments(dir) {
        let path = dir.join(format!("{base:020}.log"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut pos = 0;
        while pos + strom_storage::batch::BATCH_HEADER_BYTES <= bytes.len() {
            let header = strom_storage::batch::parse_header(&bytes[pos..])
                .unwrap_or_else(|e| panic!("bad batch in {}: {e}", path.display()));
            pos += header.total_bytes();
            codecs.push(header.compression());
        }
    }
    codecs
}

/// Names of the `<topic>-<n>` partition directories in the data dir.
fn partition_dirs(data_dir: &Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut dirs: Vec<String> = std::fs::read_dir(data_dir)
        .expect("read data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|p| p.parse::<u32>().is_ok())
        })
        .collect();
    dirs.sort();
    dirs
}

/// Sends one raw request (kafka-protocol crate) and decodes the response.
fn exchange<Req: Encodable, Resp: Decodable>(
    bootstrap: &str,
    api_key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let frame =
        encode_request(api_key, version, 7, "strom-admin-test", request).expect("encode request");
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

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

// ---------------------------------------------------------------- DescribeConfigs

/// Every known topic config is described with its effective value and source:
/// a topic override, a built-in default, or the broker's config file.
#[test]
fn describe_topic_configs_values_sources_and_synonyms() {
    let config = format!("{NO_FREE_FLOOR}{STATIC_RETENTION}");
    let broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    create(
        &b,
        "overridden",
        1,
        &["retention.ms=60000", "cleanup.policy=compact"],
    );
    create(&b, "plain", 1, &[]);

    let configs = describe(&b, "topic", "overridden");
    assert_config(&configs, "retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG");
    assert_config(
        &configs,
        "cleanup.policy",
        "compact",
        "DYNAMIC_TOPIC_CONFIG",
    );
    assert_config(&configs, "segment.bytes", "1073741824", "DEFAULT_CONFIG");

    let configs = describe(&b, "topic", "plain");
    for key in [
        "cleanup.policy",
        "retention.ms",
        "retention.bytes",
        "segment.bytes",
        "segment.ms",
        "max.message.bytes",
        "message.timestamp.type",
        "min.insync.replicas",
        "flush.messages",
        "flush.ms",
        "compression.type",
        "write.caching",
        "index.interval.bytes",
    ] {
        let e = entry(&configs, key);
        assert!(e["value"].is_string(), "{key} has a value: {e}");
        assert_eq!(e["read_only"], false, "{key} is alterable: {e}");
        assert_eq!(e["sensitive"], false, "{key}: {e}");
    }
    // The broker's config file sets log.retention.ms.
    assert_config(&configs, "retention.ms", "3600000", "STATIC_BROKER_CONFIG");
    assert_config(&configs, "cleanup.policy", "delete", "DEFAULT_CONFIG");
    assert_config(&configs, "retention.bytes", "-1", "DEFAULT_CONFIG");
    assert_config(&configs, "segment.bytes", "1073741824", "DEFAULT_CONFIG");
    assert_config(&configs, "max.message.bytes", "1048588", "DEFAULT_CONFIG");
    assert_config(
        &configs,
        "message.timestamp.type",
        "CreateTime",
        "DEFAULT_CONFIG",
    );
    assert_config(&configs, "min.insync.replicas", "1", "DEFAULT_CONFIG");
    assert_config(&configs, "compression.type", "producer", "DEFAULT_CONFIG");
    // Kafka's other topic keys are described with Kafka's defaults.
    assert_config(
        &configs,
        "delete.retention.ms",
        "86400000",
        "DEFAULT_CONFIG",
    );
    assert_config(&configs, "min.compaction.lag.ms", "0", "DEFAULT_CONFIG");
    // Only the keys asked for (kafka-python: librdkafka always asks for all).
    for version in [1, 4] {
        let r = kp(
            &b,
            "kp-describe-configs",
            version,
            &[
                "topic",
                "plain",
                "--key",
                "retention.bytes",
                "--key",
                "segment.ms",
            ],
        );
        let mut keys: Vec<&str> = r["results"][0]["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["retention.bytes", "segment.ms"], "v{version}: {r}");
    }

    // Unknown topic.
    let out = api(&b, &["describe-configs", "topic", "no-such-topic"]);
    assert_eq!(out["error"][0], UNKNOWN_TOPIC_OR_PARTITION, "{out}");

    // Synonyms in precedence order, at every version that has them (kafka-python).
    for version in 1..=4 {
        let r = kp(
            &b,
            "kp-describe-configs",
            version,
            &["topic", "overridden", "--synonyms"],
        );
        let result = &r["results"][0];
        assert_eq!(result["error_code"], 0, "v{version}: {r}");
        assert_eq!(result["resource_name"], "overridden", "v{version}");
        let configs = result["configs"].as_array().expect("configs");
        let retention = configs
            .iter()
            .find(|c| c["name"] == "retention.ms")
            .unwrap_or_else(|| panic!("v{version}: no retention.ms in {r}"));
        assert_eq!(retention["value"], "60000", "v{version}: {retention}");
        assert_eq!(
            retention["config_source"], 1,
            "DYNAMIC_TOPIC_CONFIG: {retention}"
        );
        let synonyms = retention["synonyms"].as_array().expect("synonyms");
        assert!(synonyms.len() >= 2, "v{version}: {retention}");
        assert_eq!(
            (
                &synonyms[0]["name"],
                &synonyms[0]["value"],
                &synonyms[0]["source"]
            ),
            (&"retention.ms".into(), &"60000".into(), &1.into()),
            "v{version}: {retention}"
        );
        assert_eq!(
            (
                &synonyms[1]["name"],
                &synonyms[1]["value"],
                &synonyms[1]["source"]
            ),
            (&"log.retention.ms".into(), &"3600000".into(), &4.into()),
            "v{version}: then the static broker config: {retention}"
        );
        assert_precedence(synonyms, "retention.ms", &format!("v{version}"));
        if version >= 3 {
            // Kafka's ConfigType: 2 STRING, 3 INT, 5 LONG, 7 LIST.
            for (key, kind) in [
                ("retention.ms", 5),
                ("retention.bytes", 5),
                ("segment.bytes", 3),
                ("max.message.bytes", 3),
                ("min.insync.replicas", 3),
                ("cleanup.policy", 7),
                ("compression.type", 2),
                ("message.timestamp.type", 2),
            ] {
                let c = configs
                    .iter()
                    .find(|c| c["name"] == key)
                    .unwrap_or_else(|| panic!("v{version}: no {key}"));
                assert_eq!(c["config_type"], kind, "v{version}: type of {key}: {c}");
            }
        }
        let segment = configs
            .iter()
            .find(|c| c["name"] == "segment.bytes")
            .expect("segment.bytes");
        assert_eq!(segment["config_source"], 5, "DEFAULT_CONFIG: {segment}");
        assert_eq!(
            segment["synonyms"].as_array().and_then(|s| s.last()),
            Some(
                &serde_json::json!({"name": "log.segment.bytes", "value": "1073741824", "source": 5})
            ),
            "v{version}: {segment}"
        );
    }
    // No topic override: the static broker config comes first.
    let r = kp(
        &b,
        "kp-describe-configs",
        4,
        &["topic", "plain", "--key", "retention.ms", "--synonyms"],
    );
    let retention = &r["results"][0]["configs"][0];
    assert_eq!(retention["config_source"], 4, "STATIC_BROKER_CONFIG: {r}");
    let synonyms = retention["synonyms"].as_array().expect("synonyms");
    assert_eq!(
        (
            &synonyms[0]["name"],
            &synonyms[0]["value"],
            &synonyms[0]["source"]
        ),
        (&"log.retention.ms".into(), &"3600000".into(), &4.into()),
        "{r}"
    );
    assert_precedence(synonyms, "retention.ms", "plain");
    // Without include_synonyms there are none.
    let r = kp(&b, "kp-describe-configs", 4, &["topic", "overridden"]);
    for c in r["results"][0]["configs"].as_array().expect("configs") {
        assert_eq!(c["synonyms"], serde_json::json!([]), "{c}");
    }
    // Unknown topic, by kafka-python.
    let r = kp(&b, "kp-describe-configs", 4, &["topic", "no-such-topic"]);
    assert_eq!(
        r["results"][0]["error_code"], UNKNOWN_TOPIC_OR_PARTITION,
        "{r}"
    );
}

/// Synonym sources never go back up the precedence order
/// (topic 1 < node 2 < cluster default 3 < static 4 < default 5), and every
/// synonym after the first is a broker key.
fn assert_precedence(synonyms: &[Value], key: &str, what: &str) {
    let sources: Vec<i64> = synonyms
        .iter()
        .map(|s| s["source"].as_i64().expect("source"))
        .collect();
    assert!(
        sources.windows(2).all(|w| w[0] <= w[1]),
        "{what}: synonyms of {key} out of precedence order: {synonyms:?}"
    );
    assert!(
        sources.iter().all(|s| (1..=5).contains(s)),
        "{what}: {synonyms:?}"
    );
}

/// The BROKER resource named by the node id lists broker configs with their
/// sources; another broker id is refused; "" lists the dynamic cluster defaults.
#[test]
fn describe_broker_configs() {
    let config = format!("{NO_FREE_FLOOR}{STATIC_RETENTION}");
    let broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    let configs = describe(&b, "broker", "1");
    assert_config(
        &configs,
        "log.retention.ms",
        "3600000",
        "STATIC_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "log.segment.bytes",
        "1073741824",
        "DEFAULT_CONFIG",
    );
    assert_config(&configs, "message.max.bytes", "1048588", "DEFAULT_CONFIG");
    assert_config(&configs, "min.insync.replicas", "1", "DEFAULT_CONFIG");
    assert_config(&configs, "compression.type", "producer", "DEFAULT_CONFIG");
    // Dynamic keys are alterable; static ones like log.dirs are read-only.
    for key in ["log.retention.ms", "message.max.bytes", "log.segment.bytes"] {
        assert_eq!(entry(&configs, key)["read_only"], false, "{key}");
    }
    let dirs = entry(&configs, "log.dirs");
    assert_eq!(dirs["read_only"], true, "{dirs}");
    assert_eq!(
        dirs["source"], "STATIC_BROKER_CONFIG",
        "--data-dir sets it: {dirs}"
    );
    let path = dirs["value"].as_str().expect("log.dirs value");
    assert_eq!(
        Path::new(path).canonicalize().ok(),
        broker.data_dir().canonicalize().ok(),
        "{dirs}"
    );
    for key in [
        "log.cleanup.policy",
        "log.retention.bytes",
        "log.roll.ms",
        "log.message.timestamp.type",
        "log.flush.interval.messages",
        "log.flush.interval.ms",
    ] {
        entry(&configs, key);
    }

    for version in 1..=4 {
        // Another broker id: INVALID_REQUEST.
        let r = kp(&b, "kp-describe-configs", version, &["broker", "2"]);
        assert_eq!(
            r["results"][0]["error_code"], INVALID_REQUEST,
            "v{version}: {r}"
        );
        // The node itself.
        let r = kp(
            &b,
            "kp-describe-configs",
            version,
            &["broker", "1", "--key", "log.retention.ms"],
        );
        let result = &r["results"][0];
        assert_eq!(result["error_code"], 0, "v{version}: {r}");
        assert_eq!(result["configs"][0]["name"], "log.retention.ms", "{r}");
        assert_eq!(result["configs"][0]["value"], "3600000", "{r}");
        assert_eq!(result["configs"][0]["config_source"], 4, "STATIC: {r}");
        // The cluster default resource: nothing set dynamically yet.
        let r = kp(&b, "kp-describe-configs", version, &["broker", ""]);
        let result = &r["results"][0];
        assert_eq!(result["error_code"], 0, "v{version}: {r}");
        let dynamic: Vec<&Value> = result["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .filter(|c| c["config_source"] == 3)
            .collect();
        assert!(dynamic.is_empty(), "v{version}: {r}");
    }
}

// ---------------------------------------------------------------- AlterConfigs

/// Legacy AlterConfigs replaces the whole set of a topic's overrides; invalid
/// values and unknown keys are refused by name and change nothing.
#[test]
fn alter_configs_replaces_topic_overrides() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(
        &b,
        "legacy",
        1,
        &["retention.ms=60000", "cleanup.policy=compact"],
    );

    assert_ok(
        &alter(&b, "topic", "legacy", &["retention.bytes=5000000"]),
        "alter",
    );
    let configs = describe(&b, "topic", "legacy");
    assert_config(
        &configs,
        "retention.bytes",
        "5000000",
        "DYNAMIC_TOPIC_CONFIG",
    );
    // The overrides not in the request are gone.
    assert_config(&configs, "retention.ms", "604800000", "DEFAULT_CONFIG");
    assert_config(&configs, "cleanup.policy", "delete", "DEFAULT_CONFIG");

    // validate_only changes nothing.
    let out = api(
        &b,
        &[
            "alter-configs",
            "topic",
            "legacy",
            "max.message.bytes=2000",
            "--validate-only",
        ],
    );
    assert_ok(&out, "validate-only alter");
    let configs = describe(&b, "topic", "legacy");
    assert_config(&configs, "max.message.bytes", "1048588", "DEFAULT_CONFIG");
    assert_config(
        &configs,
        "retention.bytes",
        "5000000",
        "DYNAMIC_TOPIC_CONFIG",
    );

    // Invalid value, unknown key, and a valid key next to an invalid one.
    let out = alter(&b, "topic", "legacy", &["retention.ms=abc"]);
    assert_error(&out, INVALID_CONFIG, "retention.ms", "retention.ms=abc");
    let out = alter(&b, "topic", "legacy", &["no.such.config=1"]);
    assert_error(&out, INVALID_CONFIG, "no.such.config", "unknown key");
    let out = alter(
        &b,
        "topic",
        "legacy",
        &["segment.ms=60000", "segment.bytes=13"],
    );
    assert_error(&out, INVALID_CONFIG, "segment.bytes", "segment.bytes=13");
    let out = api(
        &b,
        &[
            "alter-configs",
            "topic",
            "legacy",
            "retention.ms=-7",
            "--validate-only",
        ],
    );
    assert_error(
        &out,
        INVALID_CONFIG,
        "retention.ms",
        "validate-only, invalid",
    );
    let configs = describe(&b, "topic", "legacy");
    assert_config(
        &configs,
        "retention.bytes",
        "5000000",
        "DYNAMIC_TOPIC_CONFIG",
    );
    assert_config(&configs, "segment.ms", "604800000", "DEFAULT_CONFIG");
    assert_config(&configs, "segment.bytes", "1073741824", "DEFAULT_CONFIG");

    // Unknown topic.
    let out = alter(&b, "topic", "no-such-topic", &["retention.ms=1000"]);
    assert_eq!(out["error"][0], UNKNOWN_TOPIC_OR_PARTITION, "{out}");

    // Every AlterConfigs version (kafka-python): the set replaces the previous one.
    for (version, value) in [(0, "1000000"), (1, "2000000"), (2, "3000000")] {
        let pair = format!("retention.bytes={value}");
        let r = kp(
            &b,
            "kp-alter-configs",
            version,
            &["topic", "legacy", &pair, "segment.ms=3600000"],
        );
        assert_eq!(r["responses"][0]["error_code"], 0, "v{version}: {r}");
        assert_eq!(r["responses"][0]["resource_name"], "legacy", "{r}");
        let configs = describe(&b, "topic", "legacy");
        assert_config(&configs, "retention.bytes", value, "DYNAMIC_TOPIC_CONFIG");
        assert_config(&configs, "segment.ms", "3600000", "DYNAMIC_TOPIC_CONFIG");
        let r = kp(
            &b,
            "kp-alter-configs",
            version,
            &["topic", "legacy", "cleanup.policy=bogus"],
        );
        assert_eq!(
            r["responses"][0]["error_code"], INVALID_CONFIG,
            "v{version}: {r}"
        );
        let r = kp(
            &b,
            "kp-alter-configs",
            version,
            &["topic", "legacy", "retention.ms=5", "--validate-only"],
        );
        assert_eq!(r["responses"][0]["error_code"], 0, "v{version}: {r}");
        assert_config(
            &describe(&b, "topic", "legacy"),
            "retention.ms",
            "604800000",
            "DEFAULT_CONFIG",
        );
    }
    // An empty set removes every override.
    assert_ok(&alter(&b, "topic", "legacy", &[]), "alter to no overrides");
    let configs = describe(&b, "topic", "legacy");
    for (key, e) in configs.as_object().expect("configs") {
        assert_ne!(e["source"], "DYNAMIC_TOPIC_CONFIG", "{key}: {e}");
    }
}

/// IncrementalAlterConfigs: SET and DELETE one key at a time, APPEND and
/// SUBTRACT on list configs only; every invalid value is refused by name.
#[test]
fn incremental_alter_configs_set_delete_append_subtract() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "inc", 1, &["segment.ms=3600000"]);

    let ok = |ops: &[&str]| assert_ok(&incremental(&b, "topic", "inc", ops), &format!("{ops:?}"));
    ok(&["set:retention.ms=120000"]);
    let configs = describe(&b, "topic", "inc");
    assert_config(&configs, "retention.ms", "120000", "DYNAMIC_TOPIC_CONFIG");
    // Unlike AlterConfigs, the other override stays.
    assert_config(&configs, "segment.ms", "3600000", "DYNAMIC_TOPIC_CONFIG");

    ok(&["delete:retention.ms"]);
    let configs = describe(&b, "topic", "inc");
    assert_config(&configs, "retention.ms", "604800000", "DEFAULT_CONFIG");
    assert_config(&configs, "segment.ms", "3600000", "DYNAMIC_TOPIC_CONFIG");
    // Deleting a key that is not set is fine.
    ok(&["delete:retention.bytes"]);

    // APPEND starts from the current value (the default "delete").
    ok(&["append:cleanup.policy=compact"]);
    let policy = |b: &str| describe(b, "topic", "inc")["cleanup.policy"]["value"].clone();
    assert_eq!(policy(&b), "delete,compact");
    // Appending a value already there does not repeat it.
    ok(&["append:cleanup.policy=compact"]);
    assert_eq!(policy(&b), "delete,compact");
    ok(&["subtract:cleanup.policy=delete"]);
    assert_eq!(policy(&b), "compact");
    assert_config(
        &describe(&b, "topic", "inc"),
        "cleanup.policy",
        "compact",
        "DYNAMIC_TOPIC_CONFIG",
    );
    ok(&["set:cleanup.policy=compact,delete"]);
    assert_eq!(policy(&b), "compact,delete");

    // APPEND / SUBTRACT on a non-list config.
    for op in ["append:retention.ms=1000", "subtract:retention.ms=1000"] {
        let out = incremental(&b, "topic", "inc", &[op]);
        assert_error(&out, INVALID_CONFIG, "retention.ms", op);
    }
    // Invalid values and unknown keys, one request each.
    for op in [
        "set:retention.ms=abc",
        "set:retention.ms=-2",
        "set:retention.bytes=-2",
        "set:segment.bytes=13",
        "set:segment.ms=0",
        "set:max.message.bytes=-1",
        "set:message.timestamp.type=Bogus",
        "set:min.insync.replicas=0",
        "set:cleanup.policy=foo",
        "set:compression.type=brotli",
        "set:no.such.config=1",
    ] {
        let key = op["set:".len()..].split('=').next().expect("key");
        let out = incremental(&b, "topic", "inc", &[op]);
        assert_error(&out, INVALID_CONFIG, key, op);
    }
    // A valid SET next to an invalid one changes nothing.
    let out = incremental(
        &b,
        "topic",
        "inc",
        &["set:retention.bytes=1000000", "set:segment.bytes=1"],
    );
    assert_error(&out, INVALID_CONFIG, "segment.bytes", "partly invalid");
    // validate_only changes nothing.
    let out = api(
        &b,
        &[
            "incremental",
            "topic",
            "inc",
            "set:retention.bytes=2000000",
            "--validate-only",
        ],
    );
    assert_ok(&out, "validate-only");
    let configs = describe(&b, "topic", "inc");
    assert_config(&configs, "retention.bytes", "-1", "DEFAULT_CONFIG");
    assert_config(&configs, "segment.bytes", "1073741824", "DEFAULT_CONFIG");
    assert_config(
        &configs,
        "cleanup.policy",
        "compact,delete",
        "DYNAMIC_TOPIC_CONFIG",
    );
    // Every value the contract accepts.
    ok(&[
        "set:compression.type=uncompressed",
        "set:message.timestamp.type=LogAppendTime",
        "set:retention.ms=-1",
        "set:retention.bytes=-1",
        "set:segment.bytes=14",
        "set:segment.ms=1",
        "set:min.insync.replicas=1",
        "set:flush.messages=100",
        "set:flush.ms=1000",
        "set:write.caching=true",
        "set:index.interval.bytes=1024",
        // Kafka topic keys Strom stores without acting on them.
        "set:delete.retention.ms=86400001",
        "set:min.compaction.lag.ms=5",
    ]);
    let configs = describe(&b, "topic", "inc");
    for (key, value) in [
        ("compression.type", "uncompressed"),
        ("message.timestamp.type", "LogAppendTime"),
        ("retention.ms", "-1"),
        ("segment.bytes", "14"),
        ("segment.ms", "1"),
        ("flush.messages", "100"),
        ("flush.ms", "1000"),
        ("write.caching", "true"),
        ("index.interval.bytes", "1024"),
        ("delete.retention.ms", "86400001"),
        ("min.compaction.lag.ms", "5"),
    ] {
        assert_config(&configs, key, value, "DYNAMIC_TOPIC_CONFIG");
    }
    // Unknown topic.
    let out = incremental(&b, "topic", "no-such-topic", &["set:retention.ms=1000"]);
    assert_eq!(out["error"][0], UNKNOWN_TOPIC_OR_PARTITION, "{out}");

    // One request, two resources: each gets its own answer; the good one applies.
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &[
            "topic",
            "inc",
            "set:retention.ms=777000",
            "--also",
            "no-such-topic",
        ],
    );
    let codes: Vec<(&Value, &Value)> = r["responses"]
        .as_array()
        .expect("responses")
        .iter()
        .map(|x| (&x["resource_name"], &x["error_code"]))
        .collect();
    assert_eq!(
        codes,
        [
            (&"inc".into(), &0.into()),
            (&"no-such-topic".into(), &UNKNOWN_TOPIC_OR_PARTITION.into())
        ],
        "{r}"
    );
    assert_config(
        &describe(&b, "topic", "inc"),
        "retention.ms",
        "777000",
        "DYNAMIC_TOPIC_CONFIG",
    );
    // The same key twice in one resource: INVALID_REQUEST, nothing changes.
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &[
            "topic",
            "inc",
            "set:retention.ms=1000",
            "set:retention.ms=2000",
        ],
    );
    assert_eq!(r["responses"][0]["error_code"], INVALID_REQUEST, "{r}");
    assert_eq!(
        describe(&b, "topic", "inc")["retention.ms"]["value"],
        "777000"
    );

    // Both IncrementalAlterConfigs versions (kafka-python).
    for version in 0..=1 {
        let value = format!("set:retention.ms={}", 1000 + version);
        let r = kp(&b, "kp-incremental", version, &["topic", "inc", &value]);
        assert_eq!(r["responses"][0]["error_code"], 0, "v{version}: {r}");
        assert_config(
            &describe(&b, "topic", "inc"),
            "retention.ms",
            &(1000 + version).to_string(),
            "DYNAMIC_TOPIC_CONFIG",
        );
        let r = kp(
            &b,
            "kp-incremental",
            version,
            &["topic", "inc", "append:segment.ms=5"],
        );
        let response = &r["responses"][0];
        assert_eq!(response["error_code"], INVALID_CONFIG, "v{version}: {r}");
        assert!(
            response["error_message"]
                .as_str()
                .is_some_and(|m| m.contains("segment.ms")),
            "v{version}: {r}"
        );
    }
}

/// Topic config changes apply at once (no restart) on every shard, and survive
/// a restart and a kill -9 right after the answer.
#[test]
fn topic_config_changes_apply_at_once_and_survive_restart() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    // Two partitions: one on each shard.
    create(&b, "live", 2, &[]);
    for p in ["0", "1"] {
        assert_eq!(produce_one(&b, "live", 5000, &["--partition", p]), 0);
        let out = produce(
            &b,
            "live",
            2,
            100,
            &["--timestamp", "1000000", "--partition", p],
        );
        assert_eq!(out["acked"], serde_json::json!([1, 2]), "{out}");
    }

    assert_ok(
        &incremental(
            &b,
            "topic",
            "live",
            &[
                "set:max.message.bytes=1000",
                "set:message.timestamp.type=LogAppendTime",
            ],
        ),
        "lower max.message.bytes, LogAppendTime",
    );
    let check = |b: &str, first_offset: i64| {
        for p in ["0", "1"] {
            assert_eq!(
                produce_one(b, "live", 5000, &["--partition", p]),
                MESSAGE_TOO_LARGE,
                "partition {p}: a 5000-byte message above max.message.bytes=1000"
            );
            let before = now_ms();
            let out = produce(
                b,
                "live",
                2,
                100,
                &["--timestamp", "1000000", "--start", "10", "--partition", p],
            );
            assert_eq!(out["errors"], serde_json::json!([]), "{out}");
            let first = first_offset.to_string();
            let read = api(
                b,
                &[
                    "consume",
                    "live",
                    "--partition",
                    p,
                    "--from",
                    &first,
                    "--count",
                    "2",
                ],
            );
            let messages = read["messages"].as_array().expect("messages");
            assert_eq!(messages.len(), 2, "partition {p}: {read}");
            for m in messages {
                // librdkafka: timestamp type 2 = LogAppendTime.
                assert_eq!(m[1], 2, "partition {p}: LogAppendTime: {read}");
                let ts = m[2].as_i64().expect("timestamp");
                assert!(
                    ts >= before - 1000 && ts <= now_ms() + 1000,
                    "partition {p}: timestamp {ts} should be the broker's clock ({before}): {read}"
                );
                assert_eq!(m[4], true, "value intact: {read}");
            }
        }
    };
    check(&b, 3);
    // The records written before the change keep their CreateTime.
    for p in ["0", "1"] {
        let read = api(
            &b,
            &[
                "consume",
                "live",
                "--partition",
                p,
                "--from",
                "1",
                "--count",
                "2",
            ],
        );
        for m in read["messages"].as_array().expect("messages") {
            assert_eq!(
                (m[1].as_i64(), m[2].as_i64()),
                (Some(1), Some(1_000_000)),
                "{read}"
            );
        }
    }

    broker.restart();
    let b = broker.bootstrap();
    let configs = describe(&b, "topic", "live");
    assert_config(
        &configs,
        "max.message.bytes",
        "1000",
        "DYNAMIC_TOPIC_CONFIG",
    );
    assert_config(
        &configs,
        "message.timestamp.type",
        "LogAppendTime",
        "DYNAMIC_TOPIC_CONFIG",
    );
    check(&b, 5);

    // A change is durable once answered: kill -9 right after it.
    assert_ok(
        &incremental(
            &b,
            "topic",
            "live",
            &["delete:max.message.bytes", "set:retention.ms=123456789"],
        ),
        "delete max.message.bytes, set retention.ms",
    );
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    let configs = describe(&b, "topic", "live");
    assert_config(
        &configs,
        "retention.ms",
        "123456789",
        "DYNAMIC_TOPIC_CONFIG",
    );
    assert_config(&configs, "max.message.bytes", "1048588", "DEFAULT_CONFIG");
    for p in ["0", "1"] {
        assert_eq!(
            produce_one(&b, "live", 5000, &["--partition", p]),
            0,
            "partition {p}"
        );
    }
}

/// Dynamic broker configs on the cluster default ("") and on the node apply to
/// topics without an override, in Kafka's precedence order, and survive a restart;
/// static-only keys are refused.
#[test]
fn dynamic_broker_configs() {
    let config = format!("{NO_FREE_FLOOR}{STATIC_RETENTION}");
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    create(&b, "plain", 2, &[]);
    create(&b, "own", 2, &["max.message.bytes=2000000"]);

    // Cluster default "" (kafka-python: librdkafka needs a numeric broker id).
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &[
            "broker",
            "",
            "set:message.max.bytes=1000",
            "set:log.retention.ms=7200000",
            "set:log.flush.interval.messages=5000",
            "set:log.flush.interval.ms=6000",
            "set:log.cleanup.policy=delete",
        ],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(produce_each(&b, "plain", 2, 5000, &[]), MESSAGE_TOO_LARGE);
    assert_eq!(
        produce_each(&b, "own", 2, 5000, &[]),
        0,
        "topic override wins"
    );
    let configs = describe(&b, "topic", "plain");
    assert_config(
        &configs,
        "max.message.bytes",
        "1000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "retention.ms",
        "7200000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
    for (key, value) in [
        ("flush.messages", "5000"),
        ("flush.ms", "6000"),
        ("cleanup.policy", "delete"),
    ] {
        assert_config(&configs, key, value, "DYNAMIC_DEFAULT_BROKER_CONFIG");
    }
    assert_config(
        &describe(&b, "topic", "own"),
        "max.message.bytes",
        "2000000",
        "DYNAMIC_TOPIC_CONFIG",
    );
    let configs = describe(&b, "broker", "1");
    assert_config(
        &configs,
        "log.retention.ms",
        "7200000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "message.max.bytes",
        "1000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );

    // The node's own dynamic config beats the cluster default.
    assert_ok(
        &incremental(
            &b,
            "broker",
            "1",
            &[
                "set:message.max.bytes=3000",
                "set:log.segment.bytes=2097152",
            ],
        ),
        "node-level broker configs",
    );
    assert_eq!(produce_each(&b, "plain", 2, 2000, &[]), 0, "limit now 3000");
    assert_eq!(produce_each(&b, "plain", 2, 5000, &[]), MESSAGE_TOO_LARGE);
    let configs = describe(&b, "topic", "plain");
    assert_config(
        &configs,
        "max.message.bytes",
        "3000",
        "DYNAMIC_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "segment.bytes",
        "2097152",
        "DYNAMIC_BROKER_CONFIG",
    );
    let r = kp(
        &b,
        "kp-describe-configs",
        4,
        &["topic", "plain", "--key", "max.message.bytes", "--synonyms"],
    );
    let synonyms = &r["results"][0]["configs"][0]["synonyms"];
    let listed: Vec<(String, String, i64)> = synonyms
        .as_array()
        .expect("synonyms")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("?").to_string(),
                s["value"].as_str().unwrap_or("?").to_string(),
                s["source"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let expected = [
        ("message.max.bytes", "3000", 2),
        ("message.max.bytes", "1000", 3),
        ("message.max.bytes", "1048588", 5),
    ]
    .map(|(n, v, s)| (n.to_string(), v.to_string(), s));
    assert_eq!(listed, expected, "synonyms of max.message.bytes: {r}");
    let r = kp(
        &b,
        "kp-describe-configs",
        4,
        &["topic", "plain", "--key", "retention.ms", "--synonyms"],
    );
    let synonyms = r["results"][0]["configs"][0]["synonyms"]
        .as_array()
        .expect("synonyms")
        .clone();
    assert_eq!(
        (
            &synonyms[0]["name"],
            &synonyms[0]["value"],
            &synonyms[0]["source"]
        ),
        (&"log.retention.ms".into(), &"7200000".into(), &3.into()),
        "{r}"
    );
    assert!(
        synonyms.iter().any(|s| s["name"] == "log.retention.ms"
            && s["value"] == "3600000"
            && s["source"] == 4),
        "the static value is a later synonym: {r}"
    );
    assert_precedence(&synonyms, "retention.ms", "dynamic default");

    // The cluster default resource lists what was set on it.
    let r = kp(&b, "kp-describe-configs", 4, &["broker", ""]);
    let result = &r["results"][0];
    assert_eq!(result["error_code"], 0, "{r}");
    for (key, value) in [
        ("message.max.bytes", "1000"),
        ("log.retention.ms", "7200000"),
    ] {
        let c = result["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| c["name"] == key)
            .unwrap_or_else(|| panic!("{key} not described on \"\": {r}"));
        assert_eq!(c["value"], value, "{c}");
        assert_eq!(c["config_source"], 3, "DYNAMIC_DEFAULT_BROKER_CONFIG: {c}");
    }

    // Static-only keys, unknown keys, invalid values, another broker id.
    for (resource, op, key) in [
        ("1", "set:log.dirs=/tmp/elsewhere", "log.dirs"),
        ("1", "set:listeners=PLAINTEXT://127.0.0.1:1", "listeners"),
        ("", "set:log.dirs=/tmp/elsewhere", "log.dirs"),
        ("", "set:node.id=7", "node.id"),
    ] {
        let r = kp(&b, "kp-incremental", 1, &["broker", resource, op]);
        let response = &r["responses"][0];
        let code = response["error_code"].as_i64().expect("error code");
        assert!(
            code == INVALID_REQUEST || code == INVALID_CONFIG,
            "{op} on broker {resource:?} must be refused: {r}"
        );
        assert!(
            response["error_message"]
                .as_str()
                .is_some_and(|m| m.contains(key)),
            "the message names {key}: {r}"
        );
    }
    let out = incremental(&b, "broker", "1", &["set:no.such.broker.config=1"]);
    assert_error(
        &out,
        INVALID_CONFIG,
        "no.such.broker.config",
        "unknown broker key",
    );
    let out = incremental(&b, "broker", "1", &["set:log.retention.ms=soon"]);
    assert_error(
        &out,
        INVALID_CONFIG,
        "log.retention.ms",
        "invalid broker value",
    );
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "2", "set:message.max.bytes=5000"],
    );
    assert_eq!(r["responses"][0]["error_code"], INVALID_REQUEST, "{r}");

    // Survives a restart.
    broker.restart();
    let b = broker.bootstrap();
    let configs = describe(&b, "broker", "1");
    assert_config(
        &configs,
        "message.max.bytes",
        "3000",
        "DYNAMIC_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "log.segment.bytes",
        "2097152",
        "DYNAMIC_BROKER_CONFIG",
    );
    assert_config(
        &configs,
        "log.retention.ms",
        "7200000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
    assert_eq!(produce_each(&b, "plain", 2, 5000, &[]), MESSAGE_TOO_LARGE);

    // Deleting the node's value falls back to the cluster default, then to the
    // built-in default.
    assert_ok(
        &incremental(&b, "broker", "1", &["delete:message.max.bytes"]),
        "delete node message.max.bytes",
    );
    assert_eq!(produce_each(&b, "plain", 2, 2000, &[]), MESSAGE_TOO_LARGE);
    let r = kp(
        &b,
        "kp-incremental",
        0,
        &["broker", "", "delete:message.max.bytes"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(produce_each(&b, "plain", 2, 5000, &[]), 0);
    assert_config(
        &describe(&b, "topic", "plain"),
        "max.message.bytes",
        "1048588",
        "DEFAULT_CONFIG",
    );

    // validate_only on a broker resource changes nothing.
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &[
            "broker",
            "",
            "set:message.max.bytes=1000",
            "--validate-only",
        ],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(produce_each(&b, "plain", 2, 5000, &[]), 0);
    // Legacy AlterConfigs on "" replaces the whole set of cluster defaults.
    let r = kp(
        &b,
        "kp-alter-configs",
        2,
        &["broker", "", "log.roll.ms=3600000"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    let r = kp(&b, "kp-describe-configs", 4, &["broker", ""]);
    let set: Vec<(&Value, &Value)> = r["results"][0]["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .filter(|c| c["config_source"] == 3)
        .map(|c| (&c["name"], &c["value"]))
        .collect();
    assert_eq!(
        set,
        [(&"log.roll.ms".into(), &"3600000".into())],
        "only the new set is left on \"\": {r}"
    );
    let configs = describe(&b, "topic", "plain");
    assert_config(&configs, "retention.ms", "3600000", "STATIC_BROKER_CONFIG");
    assert_config(
        &configs,
        "segment.ms",
        "3600000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );

    // A dynamic broker config answered is durable: kill -9 right after.
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_config(
        &describe(&b, "topic", "plain"),
        "segment.ms",
        "3600000",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
}

/// Broker defaults set in the config file apply to topics without an override
/// (source STATIC_BROKER_CONFIG); a dynamic default beats them.
#[test]
fn static_broker_defaults_apply_to_topics() {
    let config = format!(
        "{NO_FREE_FLOOR}min.insync.replicas = 2\ncompression.type = \"gzip\"\n\
         message.max.bytes = 3000\nlog.message.timestamp.type = \"LogAppendTime\"\n"
    );
    let broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    create(&b, "plain", 2, &[]);
    create(&b, "own", 2, &["min.insync.replicas=1"]);
    let configs = describe(&b, "topic", "plain");
    for (key, value) in [
        ("min.insync.replicas", "2"),
        ("compression.type", "gzip"),
        ("max.message.bytes", "3000"),
        ("message.timestamp.type", "LogAppendTime"),
    ] {
        assert_config(&configs, key, value, "STATIC_BROKER_CONFIG");
    }
    let configs = describe(&b, "broker", "1");
    assert_config(&configs, "min.insync.replicas", "2", "STATIC_BROKER_CONFIG");
    assert_config(
        &configs,
        "message.max.bytes",
        "3000",
        "STATIC_BROKER_CONFIG",
    );

    assert_eq!(
        produce_each(&b, "plain", 2, 100, &["--acks", "all"]),
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(
        produce_each(&b, "plain", 2, 5000, &["--acks", "1"]),
        MESSAGE_TOO_LARGE
    );
    assert_eq!(produce_each(&b, "plain", 2, 100, &["--acks", "1"]), 0);
    assert_eq!(produce_each(&b, "own", 2, 100, &["--acks", "all"]), 0);
    assert_eq!(stored_codecs(broker.data_dir(), "plain"), [GZIP].into());
    let read = api(&b, &["consume", "plain", "--count", "1"]);
    assert_eq!(read["messages"][0][1], 2, "LogAppendTime: {read}");
    assert_eq!(read["messages"][0][4], true, "value intact: {read}");

    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "", "set:min.insync.replicas=1"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(produce_each(&b, "plain", 2, 100, &["--acks", "all"]), 0);
    let r = kp(
        &b,
        "kp-describe-configs",
        4,
        &[
            "topic",
            "plain",
            "--key",
            "min.insync.replicas",
            "--synonyms",
        ],
    );
    let c = &r["results"][0]["configs"][0];
    assert_eq!(c["value"], "1", "{r}");
    assert_eq!(c["config_source"], 3, "DYNAMIC_DEFAULT_BROKER_CONFIG: {r}");
    let synonyms: Vec<(&Value, &Value)> = c["synonyms"]
        .as_array()
        .expect("synonyms")
        .iter()
        .map(|s| (&s["value"], &s["source"]))
        .collect();
    assert_eq!(
        synonyms[..2],
        [(&"1".into(), &3.into()), (&"2".into(), &4.into())],
        "{r}"
    );
}

// ---------------------------------------------------------------- min.insync.replicas

/// One node means an ISR of 1: min.insync.replicas=2 refuses acks=all produce
/// with NOT_ENOUGH_REPLICAS; acks=1 still works.
#[test]
fn min_insync_replicas_refuses_acks_all() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "strict", 2, &["min.insync.replicas=2"]);
    create(&b, "relaxed", 2, &[]);
    assert_eq!(
        produce_each(&b, "strict", 2, 100, &["--acks", "all"]),
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(produce_each(&b, "strict", 2, 100, &["--acks", "1"]), 0);
    assert_eq!(produce_each(&b, "relaxed", 2, 100, &["--acks", "all"]), 0);
    // Nothing refused was stored: one record, from the acks=1 produce.
    assert_eq!(offsets(&b, "strict", 0), (0, 1));
    assert_eq!(offsets(&b, "strict", 1), (0, 1));

    assert_ok(
        &incremental(&b, "topic", "strict", &["set:min.insync.replicas=1"]),
        "lower min.insync.replicas",
    );
    assert_eq!(produce_each(&b, "strict", 2, 100, &["--acks", "all"]), 0);

    // As a dynamic cluster default.
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "", "set:min.insync.replicas=2"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(
        produce_each(&b, "relaxed", 2, 100, &["--acks", "all"]),
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(produce_each(&b, "relaxed", 2, 100, &["--acks", "1"]), 0);
    assert_eq!(
        produce_each(&b, "strict", 2, 100, &["--acks", "all"]),
        0,
        "the topic's own min.insync.replicas=1 wins"
    );
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "", "delete:min.insync.replicas"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    assert_eq!(produce_each(&b, "relaxed", 2, 100, &["--acks", "all"]), 0);

    // min.insync.replicas=0 is not a valid topic config.
    let out = api(
        &b,
        &["create", "zero-isr", "--config", "min.insync.replicas=0"],
    );
    assert_eq!(out["results"]["zero-isr"][0], INVALID_CONFIG, "{out}");
}

// ---------------------------------------------------------------- compression.type

/// compression.type: producer keeps batches as produced, a codec makes the
/// broker re-compress with it, uncompressed stores them uncompressed; records
/// read back intact either way.
#[test]
fn compression_type_controls_stored_batches() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    // (topic, its config, the producer's codec, the codec stored)
    let cases: [(&str, Option<&str>, &str, u8); 7] = [
        ("c-producer", None, "lz4", LZ4),
        (
            "c-explicit-producer",
            Some("compression.type=producer"),
            "lz4",
            LZ4,
        ),
        ("c-gzip", Some("compression.type=gzip"), "lz4", GZIP),
        (
            "c-gzip-from-none",
            Some("compression.type=gzip"),
            "none",
            GZIP,
        ),
        ("c-zstd", Some("compression.type=zstd"), "snappy", ZSTD),
        ("c-lz4", Some("compression.type=lz4"), "lz4", LZ4),
        (
            "c-uncompressed",
            Some("compression.type=uncompressed"),
            "zstd",
            NONE,
        ),
    ];
    for (topic, config, _, _) in cases {
        let configs: Vec<&str> = config.into_iter().collect();
        // Two partitions: one on each shard.
        create(&b, topic, 2, &configs);
    }
    // The producers run side by side; each reads its records back and checks
    // keys, values, headers and timestamps.
    std::thread::scope(|scope| {
        for (topic, _, produced, codec) in cases {
            let (b, data_dir) = (&b, broker.data_dir());
            scope.spawn(move || {
                let summary = produce_consume(
                    b,
                    topic,
                    &[
                        "--compression",
                        produced,
                        "--partitions",
                        "2",
                        "--count",
                        "300",
                        "--headers",
                        "--timestamps",
                        "--no-create",
                    ],
                );
                assert_eq!(json_u64(&summary, "consumed"), 300, "{topic}: {summary}");
                assert_eq!(
                    stored_codecs(data_dir, topic),
                    [codec].into(),
                    "{topic}: codecs on disk"
                );
            });
        }
    });

    // max.message.bytes applies to the batch as produced, before the broker
    // re-compresses it (Kafka checks the incoming batch, then the re-compressed one).
    create(
        &b,
        "c-limited",
        2,
        &["compression.type=gzip", "max.message.bytes=3000"],
    );
    assert_eq!(
        produce_each(&b, "c-limited", 2, 5000, &["--compressible"]),
        MESSAGE_TOO_LARGE,
        "a 5000-byte batch (that gzip would shrink) above max.message.bytes=3000"
    );
    assert_eq!(
        produce_each(&b, "c-limited", 2, 1000, &["--compressible"]),
        0
    );

    // Changed at run time: new batches get the new codec.
    assert_ok(
        &incremental(&b, "topic", "c-producer", &["set:compression.type=snappy"]),
        "compression.type=snappy",
    );
    for p in [0u32, 1] {
        let (_, end) = offsets(&b, "c-producer", p);
        let part = p.to_string();
        let out = produce(
            &b,
            "c-producer",
            50,
            200,
            &[
                "--compression",
                "lz4",
                "--start",
                "1000",
                "--partition",
                &part,
            ],
        );
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
        let from = end.to_string();
        let read = api(
            &b,
            &[
                "consume",
                "c-producer",
                "--partition",
                &part,
                "--from",
                &from,
                "--count",
                "50",
            ],
        );
        let messages = read["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 50, "{read}");
        assert!(
            messages.iter().all(|m| m[4] == true),
            "values intact: {read}"
        );
    }
    // On each partition (each shard): lz4 batches as produced, then snappy only.
    for p in 0..2 {
        let codecs = partition_codecs(&broker.data_dir().join(format!("c-producer-{p}")));
        let first_snappy = codecs
            .iter()
            .position(|c| *c == SNAPPY)
            .unwrap_or_else(|| panic!("partition {p}: no snappy batch: {codecs:?}"));
        assert!(
            codecs[..first_snappy].iter().all(|c| *c == LZ4)
                && codecs[first_snappy..].iter().all(|c| *c == SNAPPY),
            "partition {p}: {codecs:?}"
        );
    }

    // As a dynamic cluster default, for topics without an override.
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "", "set:compression.type=gzip"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    create(&b, "c-later", 1, &[]);
    let out = produce(&b, "c-later", 50, 200, &["--compression", "zstd"]);
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    assert_eq!(stored_codecs(broker.data_dir(), "c-later"), [GZIP].into());
    let read = api(&b, &["consume", "c-later", "--count", "50"]);
    let messages = read["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 50, "{read}");
    assert!(
        messages.iter().all(|m| m[4] == true),
        "values intact: {read}"
    );
    assert_config(
        &describe(&b, "topic", "c-later"),
        "compression.type",
        "gzip",
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
}

// ---------------------------------------------------------------- CreatePartitions

fn partition_count(b: &str, topic: &str) -> Value {
    api(b, &["metadata"])["topics"][topic]["partitions"].clone()
}

/// CreatePartitions only grows a topic; new partitions work at once and
/// survive a restart.
#[test]
fn create_partitions_grows_topics() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "grow", 2, &["max.message.bytes=1000"]);

    for count in ["2", "1"] {
        let out = api(&b, &["create-partitions", "grow", count]);
        assert_eq!(out["error"][0], INVALID_PARTITIONS, "to {count}: {out}");
    }
    let out = api(&b, &["create-partitions", "no-such-topic", "3"]);
    assert_eq!(out["error"][0], UNKNOWN_TOPIC_OR_PARTITION, "{out}");
    let out = api(&b, &["create-partitions", "grow", "1", "--validate-only"]);
    assert_eq!(
        out["error"][0], INVALID_PARTITIONS,
        "validate-only, fewer: {out}"
    );
    let out = api(&b, &["create-partitions", "grow", "4", "--validate-only"]);
    assert_ok(&out, "validate-only");
    assert_eq!(partition_count(&b, "grow"), 2);
    assert_eq!(
        partition_dirs(broker.data_dir(), "grow"),
        ["grow-0", "grow-1"]
    );

    assert_ok(&api(&b, &["create-partitions", "grow", "4"]), "grow to 4");
    assert_eq!(partition_count(&b, "grow"), 4);
    assert_eq!(
        partition_dirs(broker.data_dir(), "grow"),
        ["grow-0", "grow-1", "grow-2", "grow-3"]
    );
    // The new partitions (on both shards) work at once, with the topic's config.
    for p in ["2", "3"] {
        let out = produce(&b, "grow", 3, 100, &["--partition", p]);
        assert_eq!(out["acked"], serde_json::json!([0, 1, 2]), "{out}");
        let read = api(&b, &["consume", "grow", "--partition", p, "--count", "3"]);
        assert_eq!(read["messages"].as_array().map(Vec::len), Some(3), "{read}");
    }
    assert_eq!(
        produce_each(&b, "grow", 4, 5000, &[]),
        MESSAGE_TOO_LARGE,
        "max.message.bytes=1000 holds on the new partitions too"
    );

    // Every CreatePartitions version (kafka-python), one more partition each.
    create(&b, "grow-kp", 1, &[]);
    for version in 0..=3 {
        let count = (version + 2).to_string();
        let r = kp(&b, "kp-create-partitions", version, &["grow-kp", &count]);
        let result = &r["results"][0];
        assert_eq!(result["name"], "grow-kp", "v{version}: {r}");
        assert_eq!(result["error_code"], 0, "v{version}: {r}");
        let r = kp(&b, "kp-create-partitions", version, &["grow-kp", &count]);
        assert_eq!(
            r["results"][0]["error_code"], INVALID_PARTITIONS,
            "v{version}: {r}"
        );
        assert!(
            r["results"][0]["error_message"].is_string(),
            "v{version}: a message says why: {r}"
        );
    }
    assert_eq!(partition_count(&b, "grow-kp"), 5);

    // Answered means durable: kill -9 right after the last one.
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    assert_eq!(partition_count(&b, "grow"), 4);
    assert_eq!(partition_count(&b, "grow-kp"), 5);
    let read = api(&b, &["consume", "grow", "--partition", "3", "--count", "3"]);
    let messages = read["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "{read}");
    assert!(messages.iter().all(|m| m[4] == true), "{read}");
    assert_eq!(produce_one(&b, "grow-kp", 100, &["--partition", "4"]), 0);
}

// ---------------------------------------------------------------- CreateTopics, DeleteTopics

/// CreateTopics errors (existing name, invalid names, '.'/'_' collisions) and
/// DeleteTopics removing the partition directories.
#[test]
fn create_topic_errors_and_delete_removes_files() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "exists", 1, &[]);
    let out = api(&b, &["create", "exists"]);
    assert_eq!(out["results"]["exists"][0], TOPIC_ALREADY_EXISTS, "{out}");
    assert_eq!(out["results"]["exists"][1], "TOPIC_ALREADY_EXISTS", "{out}");

    let long = "x".repeat(250);
    let invalid = ["", ".", "..", long.as_str(), "bad/name", "spa ce"];
    let mut args = vec!["create"];
    args.extend(invalid);
    let out = api(&b, &args);
    for name in invalid {
        assert_eq!(
            out["results"][name][0], INVALID_TOPIC_EXCEPTION,
            "{name:?}: {out}"
        );
    }
    // Invalid topic configs are refused at creation, by name.
    for config in [
        "no.such.config=1",
        "retention.ms=soon",
        "cleanup.policy=sometimes",
    ] {
        let out = api(&b, &["create", "bad-config", "--config", config]);
        assert_eq!(
            out["results"]["bad-config"][0], INVALID_CONFIG,
            "{config}: {out}"
        );
        let key = config.split('=').next().expect("key");
        let message = out["results"]["bad-config"][2].as_str().unwrap_or("");
        assert!(message.contains(key), "{config}: {out}");
    }
    assert!(partition_dirs(broker.data_dir(), "bad-config").is_empty());
    // 249 characters is the longest valid name.
    create(&b, &"y".repeat(249), 1, &[]);

    // '.' and '_' collide in metric names: Kafka refuses the second topic.
    create(&b, "a.b", 1, &[]);
    let out = api(&b, &["create", "a_b"]);
    assert_eq!(out["results"]["a_b"][0], INVALID_TOPIC_EXCEPTION, "{out}");
    create(&b, "x_y", 1, &[]);
    let out = api(&b, &["create", "x.y"]);
    assert_eq!(out["results"]["x.y"][0], INVALID_TOPIC_EXCEPTION, "{out}");
    let topics = api(&b, &["metadata"])["topics"].clone();
    assert!(
        topics["a_b"].is_null() && topics["x.y"].is_null(),
        "{topics}"
    );
    assert!(!broker.data_dir().join("a_b-0").exists());

    // DeleteTopics removes the data; a new topic of the same name is empty and
    // has none of the old topic's configs.
    create(&b, "gone", 3, &["retention.ms=1234567"]);
    assert_ok(
        &incremental(&b, "topic", "gone", &["set:segment.ms=999999"]),
        "alter gone",
    );
    for p in ["0", "1", "2"] {
        let out = produce(&b, "gone", 20, 500, &["--partition", p]);
        assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    }
    assert_eq!(partition_dirs(broker.data_dir(), "gone").len(), 3);
    let out = api(&b, &["delete", "gone"]);
    assert!(out["results"]["gone"].is_null(), "{out}");
    wait_for(
        "the partition directories of gone to be removed",
        Duration::from_secs(10),
        || {
            partition_dirs(broker.data_dir(), "gone")
                .is_empty()
                .then_some(())
        },
    );
    let leftovers: Vec<String> = std::fs::read_dir(broker.data_dir())
        .expect("data dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gone"))
        .collect();
    assert!(leftovers.is_empty(), "left in the data dir: {leftovers:?}");
    let out = api(&b, &["delete", "gone"]);
    assert_eq!(
        out["results"]["gone"][0], UNKNOWN_TOPIC_OR_PARTITION,
        "{out}"
    );

    // A deletion answered is final: kill -9 right after it, the topic stays gone.
    create(&b, "gone-too", 2, &[]);
    let out = produce(&b, "gone-too", 5, 100, &[]);
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    let out = api(&b, &["delete", "gone-too"]);
    assert!(out["results"]["gone-too"].is_null(), "{out}");
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    let topics = api(&b, &["metadata"])["topics"].clone();
    assert!(
        topics["gone"].is_null() && topics["gone-too"].is_null(),
        "{topics}"
    );
    wait_for(
        "gone-too's directories to be removed after the restart",
        Duration::from_secs(10),
        || {
            partition_dirs(broker.data_dir(), "gone-too")
                .is_empty()
                .then_some(())
        },
    );
    assert!(partition_dirs(broker.data_dir(), "gone").is_empty());

    create(&b, "gone", 2, &[]);
    for p in 0..2 {
        assert_eq!(
            offsets(&b, "gone", p),
            (0, 0),
            "re-created gone-{p} is empty"
        );
    }
    assert_eq!(
        partition_dirs(broker.data_dir(), "gone"),
        ["gone-0", "gone-1"]
    );
    let configs = describe(&b, "topic", "gone");
    assert_config(&configs, "retention.ms", "604800000", "DEFAULT_CONFIG");
    assert_config(&configs, "segment.ms", "604800000", "DEFAULT_CONFIG");
    let out = produce(&b, "gone", 1, 100, &[]);
    assert_eq!(out["acked"], serde_json::json!([0]), "{out}");
}

// ---------------------------------------------------------------- DescribeCluster, DescribeLogDirs

#[test]
fn describe_cluster_names_this_node() {
    let mut broker = Broker::start(BrokerOpts::default().config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    let port = i64::from(broker.port());
    let md = api(&b, &["metadata"]);
    let cluster_id = md["cluster_id"]
        .as_str()
        .expect("metadata cluster id")
        .to_string();
    assert_eq!(cluster_id.len(), 22, "{md}");

    let out = api(&b, &["describe-cluster"]);
    assert_ok(&out, "describe_cluster");
    assert_eq!(out["cluster_id"], cluster_id, "{out}");
    assert_eq!(
        out["controller"],
        serde_json::json!([1, "127.0.0.1", port]),
        "{out}"
    );
    assert_eq!(
        out["nodes"],
        serde_json::json!([[1, "127.0.0.1", port]]),
        "{out}"
    );

    for version in 0..=2 {
        let r = kp(&b, "kp-describe-cluster", version, &[]);
        assert_eq!(r["error_code"], 0, "v{version}: {r}");
        assert_eq!(r["cluster_id"], cluster_id, "v{version}: {r}");
        assert_eq!(r["controller_id"], 1, "v{version}: {r}");
        let brokers = r["brokers"].as_array().expect("brokers");
        assert_eq!(brokers.len(), 1, "v{version}: {r}");
        assert_eq!(brokers[0]["broker_id"], 1, "v{version}: {r}");
        assert_eq!(brokers[0]["host"], "127.0.0.1", "v{version}: {r}");
        assert_eq!(brokers[0]["port"], port, "v{version}: {r}");
        if version >= 2 {
            assert_eq!(brokers[0]["is_fenced"], false, "v{version}: {r}");
        }
    }
    // The cluster id is kept across restarts.
    broker.restart();
    let out = api(&broker.bootstrap(), &["describe-cluster"]);
    assert_eq!(out["cluster_id"], cluster_id, "{out}");
}

/// The size DescribeLogDirs reports for a partition (kafka-python response).
fn log_dir_size(r: &Value, topic: &str, partition: i64) -> Option<i64> {
    r["results"][0]["topics"]
        .as_array()?
        .iter()
        .filter(|t| t["name"] == topic)
        .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
        .find(|p| p["partition_index"] == partition)?["partition_size"]
        .as_i64()
}

#[test]
fn describe_log_dirs_reports_path_and_sizes() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "sized", 2, &[]);
    create(&b, "other", 1, &[]);
    let data_dir = broker.data_dir().canonicalize().expect("data dir");

    let before = kp(
        &b,
        "kp-describe-log-dirs",
        4,
        &["--topic", "sized", "--partitions", "2"],
    );
    assert_eq!(log_dir_size(&before, "sized", 0), Some(0), "{before}");
    assert_eq!(log_dir_size(&before, "sized", 1), Some(0), "{before}");
    // 200 records of 500 bytes: ~100 KB on disk with record and batch headers;
    // 100 on the other partition (the other shard): ~50 KB.
    let out = produce(&b, "sized", 200, 500, &[]);
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    let out = produce(&b, "sized", 100, 500, &["--partition", "1"]);
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    let on_disk = |p: u32| -> i64 {
        let dir = broker.data_dir().join(format!("sized-{p}"));
        segments(&dir).iter().map(|s| s.1 as i64).sum()
    };

    for version in 1..=4 {
        let r = kp(&b, "kp-describe-log-dirs", version, &[]);
        if version >= 3 {
            assert_eq!(r["error_code"], 0, "v{version}: {r}");
        }
        let results = r["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "one log dir: {r}");
        assert_eq!(results[0]["error_code"], 0, "v{version}: {r}");
        let path = results[0]["log_dir"].as_str().expect("log_dir");
        assert_eq!(
            Path::new(path).canonicalize().ok().as_deref(),
            Some(data_dir.as_path()),
            "v{version}: log dir {path}"
        );
        let size = log_dir_size(&r, "sized", 0).unwrap_or_else(|| panic!("v{version}: {r}"));
        assert!(
            (100_000..=150_000).contains(&size),
            "v{version}: sized-0 holds ~100 KB, reported {size}"
        );
        let size1 = log_dir_size(&r, "sized", 1).unwrap_or_else(|| panic!("v{version}: {r}"));
        assert!(
            (50_000..=75_000).contains(&size1),
            "v{version}: sized-1 holds ~50 KB, reported {size1}"
        );
        for (p, reported) in [(0, size), (1, size1)] {
            let disk = on_disk(p);
            assert!(
                (reported - disk).abs() <= disk / 20,
                "v{version}: sized-{p}: reported {reported} bytes, {disk} in its segment files"
            );
        }
        assert_eq!(log_dir_size(&r, "other", 0), Some(0), "all topics: {r}");
        if version >= 4 {
            let total = results[0]["total_bytes"].as_i64().expect("total_bytes");
            let usable = results[0]["usable_bytes"].as_i64().expect("usable_bytes");
            assert!(total > 0 && usable > 0 && usable <= total, "v4: {r}");
        }
    }
    // Asking for one topic lists only it.
    let r = kp(&b, "kp-describe-log-dirs", 2, &["--topic", "other"]);
    let names: Vec<&Value> = r["results"][0]["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| &t["name"])
        .collect();
    assert_eq!(names, ["other"], "{r}");

    // The KafkaAdminClient call users make.
    let out = api(&b, &["kp-log-dirs", "--topic", "sized"]);
    let result = &out["result"][0];
    assert_eq!(result["broker"], 1, "{out}");
    let dir = &result["log_dirs"][0];
    let path = dir["log_dir"].as_str().expect("log_dir");
    assert_eq!(
        Path::new(path).canonicalize().ok().as_deref(),
        Some(data_dir.as_path())
    );
    let sizes: Vec<i64> = dir["topics"][0]["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["partition_size"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(sizes.len(), 2, "{out}");
    assert!(sizes.iter().any(|s| *s >= 100_000), "{out}");
}

// ---------------------------------------------------------------- DescribeTopicPartitions

fn describe_topic_partitions(
    b: &str,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(topic_name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(topic_name(t))
                .with_partition_index(p)
        }));
    exchange(b, ApiKey::DescribeTopicPartitions, 0, &request)
}

/// (topic, partition) pairs of a response, in order.
fn listed(r: &DescribeTopicPartitionsResponse) -> Vec<(String, i32)> {
    r.topics
        .iter()
        .flat_map(|t| {
            let name = t.name.as_ref().map_or("?", |n| n.0.as_str()).to_string();
            t.partitions
                .iter()
                .map(move |p| (name.clone(), p.partition_index))
        })
        .collect()
}

fn next_cursor(r: &DescribeTopicPartitionsResponse) -> Option<(String, i32)> {
    r.next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index))
}

#[test]
fn describe_topic_partitions_raw() {
    let broker = Broker::start(BrokerOpts::default().config(NO_FREE_FLOOR));
    let b = broker.bootstrap();
    create(&b, "dtp", 5, &[]);
    create(&b, "dtq", 1, &[]);

    // The topic id Metadata gives.
    let mut metadata = MetadataRequest::default();
    metadata.topics = Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name("dtp")))
    ]);
    let md: MetadataResponse = exchange(&b, ApiKey::Metadata, 12, &metadata);
    let topic_id = md.topics[0].topic_id;
    assert!(!topic_id.is_nil(), "Metadata v12 topic id: {md:?}");

    let r = describe_topic_partitions(&b, &["dtp"], 2000, None);
    assert_eq!(r.topics.len(), 1, "{r:?}");
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0, "{r:?}");
    assert_eq!(t.name.as_ref().map(|n| n.0.as_str()), Some("dtp"));
    assert_eq!(t.topic_id, topic_id, "same id as Metadata");
    assert!(!t.is_internal);
    assert_eq!(
        t.partitions
            .iter()
            .map(|p| p.partition_index)
            .collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    for p in &t.partitions {
        assert_eq!(p.error_code, 0, "{p:?}");
        assert_eq!(p.leader_id.0, 1, "{p:?}");
        assert!(p.leader_epoch >= 0, "{p:?}");
        assert_eq!(p.replica_nodes.iter().map(|n| n.0).collect::<Vec<_>>(), [1]);
        assert_eq!(p.isr_nodes.iter().map(|n| n.0).collect::<Vec<_>>(), [1]);
        assert!(p.offline_replicas.is_empty(), "{p:?}");
    }
    assert!(r.next_cursor.is_none(), "{r:?}");

    // Unknown topic.
    let r = describe_topic_partitions(&b, &["nope"], 2000, None);
    assert_eq!(r.topics.len(), 1, "{r:?}");
    assert_eq!(
        r.topics[0].error_code as i64, UNKNOWN_TOPIC_OR_PARTITION,
        "{r:?}"
    );
    assert_eq!(
        r.topics[0].name.as_ref().map(|n| n.0.as_str()),
        Some("nope")
    );
    assert!(r.topics[0].partitions.is_empty());

    // Pagination: limit 2 on 5 partitions.
    let r = describe_topic_partitions(&b, &["dtp"], 2, None);
    assert_eq!(listed(&r), [("dtp".into(), 0), ("dtp".into(), 1)], "{r:?}");
    assert_eq!(next_cursor(&r), Some(("dtp".into(), 2)), "{r:?}");
    let r = describe_topic_partitions(&b, &["dtp"], 2, Some(("dtp", 2)));
    assert_eq!(listed(&r), [("dtp".into(), 2), ("dtp".into(), 3)], "{r:?}");
    assert_eq!(next_cursor(&r), Some(("dtp".into(), 4)), "{r:?}");
    let r = describe_topic_partitions(&b, &["dtp"], 2, Some(("dtp", 4)));
    assert_eq!(listed(&r), [("dtp".into(), 4)], "{r:?}");
    assert!(r.next_cursor.is_none(), "{r:?}");
    // Across two topics.
    let r = describe_topic_partitions(&b, &["dtq", "dtp"], 4, None);
    assert_eq!(
        listed(&r),
        (0..4).map(|p| ("dtp".to_string(), p)).collect::<Vec<_>>(),
        "{r:?}"
    );
    assert_eq!(next_cursor(&r), Some(("dtp".into(), 4)), "{r:?}");
    let r = describe_topic_partitions(&b, &["dtq", "dtp"], 4, Some(("dtp", 4)));
    assert_eq!(listed(&r), [("dtp".into(), 4), ("dtq".into(), 0)], "{r:?}");
    assert!(r.next_cursor.is_none(), "{r:?}");

    // No topics named: every topic, by name.
    let r = describe_topic_partitions(&b, &[], 2000, None);
    let names: Vec<&str> = r
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
        .collect();
    assert!(
        names.contains(&"dtp") && names.contains(&"dtq"),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "topics in name order");

    // __consumer_offsets (created by FindCoordinator) is internal.
    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_static_str("some-group");
    let found: FindCoordinatorResponse = exchange(&b, ApiKey::FindCoordinator, 3, &find);
    assert_eq!(found.error_code, 0, "{found:?}");
    let r = describe_topic_partitions(&b, &["__consumer_offsets"], 2000, None);
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0, "{r:?}");
    assert!(t.is_internal, "__consumer_offsets is internal: {t:?}");
    assert_eq!(t.partitions.len(), 50, "offsets.topic.num.partitions");
}

// ---------------------------------------------------------------- retention at run time

/// Retention altered at run time deletes old segments at the next retention
/// pass, on every shard, without a restart; the earliest offset moves up.
#[test]
fn retention_altered_at_run_time_deletes_segments() {
    let config = format!("{NO_FREE_FLOOR}log.retention.check.interval.ms = 200\n");
    let broker = Broker::start(BrokerOpts::default().smp(2).config(&config));
    let b = broker.bootstrap();
    // Two partitions each: one on each shard. 40 records of ~270 bytes per
    // partition, one per batch, in 1 KiB segments.
    for topic in ["shrink", "expire", "by-default"] {
        create(&b, topic, 2, &["segment.bytes=1024"]);
        for p in ["0", "1"] {
            let out = python(
                "storage.py",
                &[
                    "--bootstrap",
                    &b,
                    "produce",
                    "--topic",
                    topic,
                    "--partition",
                    p,
                    "--count",
                    "40",
                    "--value-size",
                    "200",
                    "--one-at-a-time",
                ],
            )
            .json();
            assert_eq!(out["errors"], serde_json::json!([]), "{out}");
            assert_eq!(out["acked"].as_array().map(Vec::len), Some(40), "{out}");
        }
    }
    let dir = |topic: &str, p: u32| broker.data_dir().join(format!("{topic}-{p}"));
    let before: Vec<Vec<(i64, u64)>> = (0..2).map(|p| segments(&dir("shrink", p))).collect();
    for segs in &before {
        assert!(segs.len() >= 6, "1 KiB segments roll: {segs:?}");
    }
    // Nothing goes while retention is the default (7 days, unlimited size).
    std::thread::sleep(Duration::from_millis(600));
    for p in 0..2 {
        assert_eq!(segments(&dir("shrink", p)), before[p as usize]);
        assert_eq!(offsets(&b, "shrink", p), (0, 40));
    }

    // Sealed segments go, oldest first, while the rest stays above the limit.
    let trimmed = |topic: &str, p: u32, limit: u64| {
        let d = dir(topic, p);
        let left = wait_for(
            &format!("retention.bytes={limit} to delete {topic}-{p}'s oldest segments"),
            Duration::from_secs(15),
            || {
                let segs = segments(&d);
                let total: u64 = segs.iter().map(|s| s.1).sum();
                // Done when removing the oldest segment would go below the limit.
                (segs.len() >= 2 && segs[0].0 > 0 && total - segs[0].1 < limit).then_some(segs)
            },
        );
        let total: u64 = left.iter().map(|s| s.1).sum();
        assert!(
            total >= limit,
            "{topic}-{p}: more than needed was deleted: {left:?}"
        );
        let (earliest, latest) = offsets(&b, topic, p);
        assert_eq!(
            earliest, left[0].0,
            "{topic}-{p}: earliest offset = first kept segment"
        );
        assert_eq!(latest, 40);
        left
    };
    assert_ok(
        &incremental(&b, "topic", "shrink", &["set:retention.bytes=2500"]),
        "retention.bytes=2500",
    );
    for p in 0..2 {
        let left = trimmed("shrink", p, 2500);
        assert_eq!(
            left.last().map(|s| s.0),
            before[p as usize].last().map(|s| s.0),
            "the active segment stays"
        );
    }

    // retention.ms=1 with the legacy API: every record is older than that.
    let last_base: Vec<i64> = (0..2)
        .map(|p| segments(&dir("expire", p)).last().expect("segment").0)
        .collect();
    assert_ok(
        &alter(
            &b,
            "topic",
            "expire",
            &["segment.bytes=1024", "retention.ms=1"],
        ),
        "retention.ms=1",
    );
    for p in 0..2 {
        let earliest = wait_for(
            &format!("retention.ms=1 to delete expire-{p}'s segments"),
            Duration::from_secs(15),
            || {
                let (earliest, _) = offsets(&b, "expire", p);
                (earliest >= last_base[p as usize]).then_some(earliest)
            },
        );
        let left = segments(&dir("expire", p));
        assert!(left.len() <= 2, "{left:?}");
        assert_eq!(left[0].0, earliest, "{left:?}");
        assert_eq!(offsets(&b, "expire", p).1, 40);
    }

    // A dynamic cluster default (log.retention.bytes) applies to a topic
    // without an override.
    assert_eq!(offsets(&b, "by-default", 0), (0, 40));
    let r = kp(
        &b,
        "kp-incremental",
        1,
        &["broker", "", "set:log.retention.bytes=2500"],
    );
    assert_eq!(r["responses"][0]["error_code"], 0, "{r}");
    for p in 0..2 {
        trimmed("by-default", p, 2500);
    }
}

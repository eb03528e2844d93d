//! `strom topic`, `strom produce`, `strom consume` and `strom cluster` against a
//! real broker, checked against clients nobody here wrote: kcat (librdkafka)
//! consumes what `strom produce` wrote and produces the partitioner oracle;
//! a confluent_kafka consumer shares a group with `strom consume -g`.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use strom_tests::*;

const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms = 0\n";
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// `strom ARGS --brokers B` with the broker environment variables cleared
/// (`strom group` spells the flag `--bootstrap`).
fn strom(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let flag = if args.first() == Some(&"group") {
        "--bootstrap"
    } else {
        "--brokers"
    };
    let mut cmd = Command::new(strom_bin());
    cmd.args(args)
        .arg(flag)
        .arg(bootstrap)
        .env_remove("STROM_BROKERS")
        .env_remove("STROM_BOOTSTRAP");
    run_command(cmd, stdin, Duration::from_secs(60))
}

fn exit_code(out: &Output) -> Option<i32> {
    out.status.and_then(|s| s.code())
}

/// `strom ARGS`, asserting exit status 0.
fn ok(bootstrap: &str, args: &[&str]) -> Output {
    let out = strom(bootstrap, args, None);
    assert!(out.success(), "strom {args:?} failed\n{out}");
    out
}

/// `strom ARGS`, asserting exit status `code` and a message on stderr.
fn fails(bootstrap: &str, args: &[&str], code: i32, stderr_has: &str) -> Output {
    let out = strom(bootstrap, args, None);
    assert_eq!(exit_code(&out), Some(code), "strom {args:?}\n{out}");
    assert!(
        out.stderr.contains(stderr_has),
        "strom {args:?}: stderr lacks {stderr_has:?}\n{out}"
    );
    out
}

/// Every stdout line parsed as JSON.
fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}\n{out}"))
        })
        .collect()
}

fn describe(b: &str, topic: &str) -> Value {
    ok(b, &["topic", "describe", topic, "--format", "json"]).json()
}

/// (value, source) of a config key in `topic describe` JSON.
fn config(description: &Value, key: &str) -> (String, String) {
    let entry = description["configs"]
        .as_array()
        .unwrap_or_else(|| panic!("no configs: {description}"))
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no config {key}: {description}"));
    (
        entry["value"].as_str().unwrap_or("").to_string(),
        entry["source"].as_str().unwrap().to_string(),
    )
}

fn list_names(b: &str, extra: &[&str]) -> Vec<(String, i64, i64, bool)> {
    let mut args = vec!["topic", "list", "--format", "json"];
    args.extend_from_slice(extra);
    let list = ok(b, &args).json();
    list["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("no topics: {list}"))
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["partitions"].as_i64().unwrap(),
                t["replicas"].as_i64().unwrap(),
                t["internal"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn topic_create_list_describe_alter_grow_delete() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();

    let out = ok(
        &b,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-c",
            "retention.ms=3600000",
        ],
    );
    assert_eq!(out.stdout, "TOPIC   STATUS\norders  OK\n", "{out}");
    let out = fails(
        &b,
        &["topic", "create", "orders"],
        1,
        "TOPIC_ALREADY_EXISTS",
    );
    assert!(out.stdout.contains("orders  TOPIC_ALREADY_EXISTS"), "{out}");
    // A bad config: exit 1, and the message names the key.
    let out = fails(
        &b,
        &["topic", "create", "bad", "-c", "nonsense.key=1"],
        1,
        "INVALID_CONFIG",
    );
    assert!(out.stderr.contains("nonsense.key"), "{out}");
    let dry = ok(
        &b,
        &[
            "topic",
            "create",
            "dry",
            "-p",
            "2",
            "--dry-run",
            "--format",
            "json",
        ],
    )
    .json();
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["topics"][0]["error"], Value::Null, "{dry}");

    // list: only what was really created; internal topics need -i.
    assert_eq!(
        list_names(&b, &[]),
        vec![("orders".to_string(), 3, 1, false)]
    );
    let table = ok(&b, &["topic", "list"]).stdout;
    assert_eq!(
        table,
        "NAME    PARTITIONS  REPLICAS\norders  3           1\n"
    );
    // A group member (of an empty topic: -e ends at once) creates __consumer_offsets.
    let out = ok(&b, &["consume", "orders", "-g", "probe", "-e"]);
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(list_names(&b, &[]).len(), 1);
    let all = list_names(&b, &["-i"]);
    assert!(
        all.iter()
            .any(|(n, _, _, internal)| n == "__consumer_offsets" && *internal),
        "{all:?}"
    );

    // describe: summary, configs with their sources, partitions with offsets.
    let d = describe(&b, "orders");
    assert_eq!(d["name"], "orders", "{d}");
    assert_eq!(d["partition_count"], 3, "{d}");
    assert_eq!(d["replication_factor"], 1, "{d}");
    assert_eq!(d["internal"], false, "{d}");
    assert_eq!(d["topic_id"].as_str().map(str::len), Some(36), "{d}");
    assert_eq!(
        config(&d, "retention.ms"),
        ("3600000".to_string(), "DYNAMIC_TOPIC_CONFIG".to_string())
    );
    assert_eq!(
        config(&d, "cleanup.policy"),
        ("delete".to_string(), "DEFAULT_CONFIG".to_string())
    );
    let partitions = d["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3, "{d}");
    for (i, p) in partitions.iter().enumerate() {
        assert_eq!(p["partition"], i as i64, "{d}");
        assert_eq!(p["leader"], 1, "{d}");
        assert_eq!(p["replicas"], serde_json::json!([1]), "{d}");
        assert_eq!(p["isr"], serde_json::json!([1]), "{d}");
        assert_eq!(
            (p["log_start_offset"].as_i64(), p["high_watermark"].as_i64()),
            (Some(0), Some(0))
        );
    }
    ok(&b, &["produce", "orders", "-p", "1"]); // no input: nothing produced
    let out = strom(&b, &["produce", "orders", "-p", "1"], Some(b"a\nb\nc\n"));
    assert!(out.success(), "{out}");
    let d = describe(&b, "orders");
    assert_eq!(d["partitions"][1]["high_watermark"], 3, "{d}");
    let table = ok(&b, &["topic", "describe", "orders"]).stdout;
    for section in [
        "SUMMARY",
        "CONFIGS",
        "PARTITIONS",
        "LOG-START-OFFSET  HIGH-WATERMARK",
    ] {
        assert!(table.contains(section), "{section}: {table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"]),
        "{table}"
    );
    let only = ok(&b, &["topic", "describe", "orders", "-p"]).stdout;
    assert!(only.starts_with("PARTITION  LEADER"), "{only}");
    assert!(!only.contains("retention.ms"), "{only}");
    let only = ok(
        &b,
        &["topic", "describe", "orders", "-c", "--format", "json"],
    )
    .json();
    assert!(
        only.get("partitions").is_none() && only["configs"].is_array(),
        "{only}"
    );

    // alter-config: set, append, dry run, delete, and refusals naming the key.
    let out = ok(
        &b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=1000",
            "--append",
            "cleanup.policy=compact",
        ],
    );
    assert_eq!(out.stdout, "TOPIC   STATUS\norders  OK\n", "{out}");
    let d = describe(&b, "orders");
    assert_eq!(
        config(&d, "retention.ms"),
        ("1000".to_string(), "DYNAMIC_TOPIC_CONFIG".to_string())
    );
    // APPEND adds to the list (Kafka keeps "delete,compact"; the order does not matter).
    let (policy, source) = config(&d, "cleanup.policy");
    let policy: BTreeSet<&str> = policy.split(',').collect();
    assert_eq!(policy, BTreeSet::from(["compact", "delete"]), "{d}");
    assert_eq!(source, "DYNAMIC_TOPIC_CONFIG");
    ok(
        &b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=5",
            "--dry-run",
        ],
    );
    assert_eq!(config(&describe(&b, "orders"), "retention.ms").0, "1000");
    ok(
        &b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--delete",
            "retention.ms",
        ],
    );
    assert_eq!(
        config(&describe(&b, "orders"), "retention.ms").1,
        "DEFAULT_CONFIG"
    );
    let out = fails(
        &b,
        &["topic", "alter-config", "orders", "--set", "no.such.key=1"],
        1,
        "INVALID_CONFIG",
    );
    assert!(out.stderr.contains("no.such.key"), "{out}");
    let out = fails(
        &b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=soon",
        ],
        1,
        "INVALID_CONFIG",
    );
    assert!(out.stderr.contains("retention.ms"), "{out}");
    fails(
        &b,
        &["topic", "alter-config", "nope", "--set", "retention.ms=1"],
        1,
        "UNKNOWN_TOPIC_OR_PARTITION",
    );
    fails(&b, &["topic", "alter-config", "orders"], 2, "--set");

    // add-partitions: --num adds to the current count, --to sets it.
    ok(&b, &["topic", "add-partitions", "orders", "--num", "2"]);
    assert_eq!(describe(&b, "orders")["partition_count"], 5);
    fails(
        &b,
        &["topic", "add-partitions", "orders", "--to", "4"],
        1,
        "INVALID_PARTITIONS",
    );
    ok(
        &b,
        &[
            "topic",
            "add-partitions",
            "orders",
            "--to",
            "7",
            "--dry-run",
        ],
    );
    assert_eq!(describe(&b, "orders")["partition_count"], 5);
    let out = fails(
        &b,
        &["topic", "add-partitions", "orders", "nope", "--to", "6"],
        1,
        "'nope'",
    );
    assert!(out.stdout.contains("orders  OK"), "{out}");
    assert!(out.stdout.contains("topic 'nope' does not exist"), "{out}");
    assert_eq!(describe(&b, "orders")["partition_count"], 6);

    // delete: the topic is gone; a missing one is named.
    let out = fails(
        &b,
        &["topic", "delete", "orders", "nope"],
        1,
        "topic 'nope' does not exist",
    );
    assert!(out.stdout.contains("orders  OK"), "{out}");
    assert_eq!(list_names(&b, &[]), vec![]);
    fails(
        &b,
        &["topic", "describe", "orders"],
        1,
        "UNKNOWN_TOPIC_OR_PARTITION: topic 'orders' does not exist",
    );
}

/// (partition, offset, key, value, headers) of a consumed JSON record.
type Row = (i64, i64, Option<String>, Option<String>, String);

fn row(record: &Value) -> Row {
    let headers: Vec<String> = record["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no headers: {record}"))
        .iter()
        .map(|h| {
            format!(
                "{}={}",
                h["key"].as_str().unwrap(),
                h["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    (
        record["partition"].as_i64().unwrap(),
        record["offset"].as_i64().unwrap(),
        record["key"].as_str().map(str::to_string),
        record["value"].as_str().map(str::to_string),
        headers.join(","),
    )
}

#[test]
fn produce_every_codec_and_consume_back() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    ok(&b, &["topic", "create", "keyed", "-p", "3"]);

    // 100 keyed lines per codec, each with two headers.
    let mut produced: BTreeMap<i64, i64> = BTreeMap::new(); // partition → records
    let mut first_of_codec: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for codec in CODECS {
        let input: String = (0..100)
            .map(|i| format!("key{i}\tvalue{i}-{codec}\n"))
            .collect();
        let header = format!("codec={codec}");
        let out = strom(
            &b,
            &[
                "produce",
                "keyed",
                "-k",
                "\\t",
                "-H",
                "source=cli",
                "-H",
                &header,
                "-z",
                codec,
                "--format",
                "json",
            ],
            Some(input.as_bytes()),
        );
        assert!(out.success(), "produce -z {codec}\n{out}");
        let report = out.json();
        assert_eq!(report["topic"], "keyed", "{report}");
        assert_eq!(report["records"], 100, "{report}");
        let mut sum = 0;
        for (p, r) in report["partitions"].as_object().expect("partitions") {
            let p: i64 = p.parse().unwrap();
            let count = r["count"].as_i64().unwrap();
            let first = r["first_offset"].as_i64().unwrap();
            // Offsets continue where the previous codec's records ended.
            assert_eq!(first, *produced.get(&p).unwrap_or(&0), "{report}");
            assert_eq!(
                r["last_offset"].as_i64().unwrap(),
                first + count - 1,
                "{report}"
            );
            first_of_codec.insert((codec, p), first);
            *produced.entry(p).or_default() += count;
            sum += count;
        }
        assert_eq!(sum, 100, "{report}");
    }
    // The broker stored each codec as produced.
    assert_eq!(
        stored_codecs(broker.data_dir(), "keyed"),
        BTreeSet::from([0, 1, 2, 3, 4])
    );

    // The partitioner oracle: librdkafka's murmur2 partitioner (the Java
    // client's) places the same keys in the same partitions.
    ok(&b, &["topic", "create", "oracle", "-p", "3"]);
    let oracle_input: String = (0..100).map(|i| format!("key{i}\tx\n")).collect();
    kcat(
        &[
            "-b",
            &b,
            "-P",
            "-t",
            "oracle",
            "-K",
            "\t",
            "-X",
            "partitioner=murmur2_random",
        ],
        Some(oracle_input.as_bytes()),
    );
    let oracle: BTreeMap<String, i64> = kcat(
        &["-b", &b, "-C", "-t", "oracle", "-e", "-q", "-f", "%k\t%p\n"],
        None,
    )
    .stdout
    .lines()
    .map(|l| {
        let (k, p) = l.split_once('\t').unwrap();
        (k.to_string(), p.parse().unwrap())
    })
    .collect();
    assert_eq!(oracle.len(), 100);

    // Everything back, decoded from all five codecs.
    let out = ok(&b, &["consume", "keyed", "-e", "--format", "json"]);
    let records = json_lines(&out);
    assert_eq!(records.len(), 500, "{out}");
    let mut rows: Vec<Row> = records.iter().map(row).collect();
    for r in &records {
        assert_eq!(r["topic"], "keyed");
        assert!(r["timestamp"].as_i64().unwrap() > 1_600_000_000_000, "{r}");
    }
    let mut seen = BTreeSet::new();
    let mut keys_and_codecs = BTreeSet::new();
    for (partition, offset, key, value, headers) in &rows {
        let key = key.as_deref().expect("every record has a key");
        let i: usize = key.strip_prefix("key").unwrap().parse().unwrap();
        let value = value.as_deref().unwrap();
        let codec = value
            .strip_prefix(&format!("value{i}-"))
            .unwrap_or_else(|| panic!("{value}"));
        assert!(CODECS.contains(&codec), "{value}");
        assert_eq!(headers, &format!("source=cli,codec={codec}"));
        assert_eq!(
            Some(partition),
            oracle.get(key),
            "key {key} in the Java partition"
        );
        assert!(
            seen.insert((*partition, *offset)),
            "duplicate {partition}/{offset}"
        );
        assert!(keys_and_codecs.insert((i, codec)), "{key} {codec} twice");
    }
    // kcat reads the same records at the same offsets.
    let kcat_rows: Vec<Row> = kcat(
        &[
            "-b",
            &b,
            "-C",
            "-t",
            "keyed",
            "-e",
            "-q",
            "-f",
            "%p\t%o\t%k\t%s\t%h\n",
        ],
        None,
    )
    .stdout
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            Some(f[2].to_string()),
            Some(f[3].to_string()),
            f[4].to_string(),
        )
    })
    .collect();
    let mut kcat_rows = kcat_rows;
    kcat_rows.sort();
    rows.sort();
    assert_eq!(rows, kcat_rows);

    // From an offset inside a gzip batch of partition 1: records below it are skipped.
    let inside = first_of_codec[&("gzip", 1)] + 3;
    let out = ok(
        &b,
        &[
            "consume",
            "keyed",
            "-p",
            "1",
            "-o",
            &inside.to_string(),
            "-n",
            "3",
            "--format",
            "json",
        ],
    );
    let got: Vec<(i64, i64)> = json_lines(&out)
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(1, inside), (1, inside + 1), (1, inside + 2)]);
    assert!(
        json_lines(&out)[0]["value"]
            .as_str()
            .unwrap()
            .ends_with("-gzip"),
        "{out}"
    );

    // -N from the end, on two partitions, with a template.
    let out = ok(
        &b,
        &[
            "consume",
            "keyed",
            "-p",
            "0,2",
            "-o",
            "-2",
            "-e",
            "-f",
            "%p|%o|%k|%v|%h\\n",
        ],
    );
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 4, "{out}");
    for (line, p) in lines.iter().zip([0, 0, 2, 2]) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], p.to_string(), "{out}");
        let end = produced[&p];
        assert!(
            f[1] == (end - 1).to_string() || f[1] == (end - 2).to_string(),
            "{out}"
        );
        assert!(
            f[3].ends_with("-zstd") && f[4] == "source=cli,codec=zstd",
            "{out}"
        );
    }
    // Plain text: the value per line.
    let out = ok(&b, &["consume", "keyed", "-p", "2", "-n", "1"]);
    let first_p2 = rows.iter().find(|r| r.0 == 2).unwrap();
    assert_eq!(out.stdout, format!("{}\n", first_p2.3.as_deref().unwrap()));

    // @TIMESTAMP: the first record at or after it (the second produce run).
    ok(&b, &["topic", "create", "times", "-p", "1"]);
    let first = strom(&b, &["produce", "times"], Some(b"early-1\nearly-2\n"));
    assert!(first.success(), "{first}");
    std::thread::sleep(Duration::from_millis(20));
    let second = strom(&b, &["produce", "times"], Some(b"late-1\nlate-2\n"));
    assert!(second.success(), "{second}");
    let all = json_lines(&ok(&b, &["consume", "times", "-e", "--format", "json"]));
    assert_eq!(all.len(), 4);
    let late_ts = all[2]["timestamp"].as_i64().unwrap();
    assert!(late_ts > all[1]["timestamp"].as_i64().unwrap(), "{all:?}");
    let out = ok(
        &b,
        &["consume", "times", "-o", &format!("@{late_ts}"), "-e"],
    );
    assert_eq!(out.stdout, "late-1\nlate-2\n");
    let out = ok(
        &b,
        &[
            "consume",
            "times",
            "-o",
            &format!("@{}", late_ts + 60_000),
            "-e",
        ],
    );
    assert_eq!(
        out.stdout, "",
        "a time after every record starts at the end"
    );

    // Batches librdkafka compressed with every codec decode too (values that
    // compress well: librdkafka keeps a batch uncompressed when that is smaller).
    ok(&b, &["topic", "create", "fromkcat", "-p", "1"]);
    let padding = "z".repeat(2000);
    for codec in &CODECS[1..] {
        let input = format!("k-{codec}\t{codec}-{padding}\n");
        kcat(
            &["-b", &b, "-P", "-t", "fromkcat", "-K", "\t", "-z", codec],
            Some(input.as_bytes()),
        );
    }
    assert_eq!(
        stored_codecs(broker.data_dir(), "fromkcat"),
        BTreeSet::from([1, 2, 3, 4])
    );
    let out = ok(&b, &["consume", "fromkcat", "-e", "-f", "%k=%v\\n"]);
    let expected: String = CODECS[1..]
        .iter()
        .map(|c| format!("k-{c}={c}-{padding}\n"))
        .collect();
    assert_eq!(out.stdout, expected);

    // Small batches: keyless records move to the next partition with each batch.
    ok(&b, &["topic", "create", "spread", "-p", "3"]);
    let input: String = (0..100).map(|i| format!("{i:0>90}\n")).collect();
    let out = strom(
        &b,
        &[
            "produce",
            "spread",
            "--batch-bytes",
            "2048",
            "--format",
            "json",
        ],
        Some(input.as_bytes()),
    );
    assert!(out.success(), "{out}");
    let report = out.json();
    assert_eq!(report["records"], 100, "{report}");
    assert_eq!(
        report["partitions"].as_object().unwrap().len(),
        3,
        "{report}"
    );
    let batches = stored_batches(broker.data_dir(), "spread");
    assert!(batches.len() >= 5, "{} batches", batches.len());
    assert!(
        batches.iter().all(|h| h.total_bytes() <= 2048),
        "{batches:?}"
    );
    let out = ok(&b, &["consume", "spread", "-e", "-f", "%p %v\\n"]);
    let mut by_partition: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for line in out.stdout.lines() {
        let (p, v) = line.split_once(' ').unwrap();
        by_partition.entry(p).or_default().push(v.parse().unwrap());
    }
    let mut all: Vec<u64> = by_partition.values().flatten().copied().collect();
    for values in by_partition.values() {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "in order per partition: {values:?}"
        );
    }
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<u64>>());

    // acks=0: no offsets known, but the records arrive.
    let out = strom(
        &b,
        &["produce", "times", "--acks", "0", "--format", "json"],
        Some(b"fire\n"),
    );
    assert!(out.success(), "{out}");
    assert_eq!(
        out.json()["partitions"]["0"]["first_offset"],
        Value::Null,
        "{out}"
    );
    let out = ok(&b, &["consume", "times", "-o", "4", "-n", "1"]);
    assert_eq!(out.stdout, "fire\n");
}

/// A confluent_kafka consumer that holds its group membership until released.
struct PythonMember {
    child: Child,
    lines: mpsc::Receiver<String>,
    stop_file: std::path::PathBuf,
}

impl PythonMember {
    /// Starts the member and waits for its first assignment.
    fn join(
        bootstrap: &str,
        topic: &str,
        group: &str,
        stop_file: std::path::PathBuf,
    ) -> (Self, Value) {
        require_confluent_kafka();
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let mut child = Command::new(python)
            .arg(clients_dir().join("group_cli_consumer.py"))
            .args([
                "consume",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--group",
                group,
            ])
            .args(["--client-id", "librdkafka-member", "--hold-until"])
            .arg(&stop_file)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the python consumer");
        let lines = spawn_line_reader(child.stdout.take().expect("stdout"));
        let member = PythonMember {
            child,
            lines,
            stop_file,
        };
        let line = member
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the python consumer got no assignment within 30 s");
        let holding: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(holding["holding"], true, "{holding}");
        (member, holding)
    }

    fn release(mut self) {
        std::fs::write(&self.stop_file, b"stop").expect("write stop file");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "python consumer exited with {status}");
    }
}

impl Drop for PythonMember {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_line_reader(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Partitions of the member whose client id is `client_id` in `group describe` JSON.
fn assignment_of(description: &Value, client_id: &str) -> Vec<i64> {
    let member = description["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members: {description}"))
        .iter()
        .find(|m| m["client_id"] == client_id)
        .unwrap_or_else(|| panic!("no member {client_id}: {description}"));
    member["assignment"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_i64().unwrap())
        })
        .collect()
}

/// (partition, committed offset, log end offset) in `group describe` JSON.
fn commits(description: &Value) -> Vec<(i64, Option<i64>, i64)> {
    description["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions: {description}"))
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["current_offset"].as_i64(),
                p["log_end_offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn consume_as_a_group_member_with_librdkafka() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    ok(&b, &["topic", "create", "events", "-p", "3"]);
    let input: String = (0..30).map(|i| format!("k{i}:v{i}\n")).collect();
    let report = strom(
        &b,
        &["produce", "events", "-k", ":", "--format", "json"],
        Some(input.as_bytes()),
    );
    assert!(report.success(), "{report}");
    let ends: BTreeMap<i64, i64> = report.json()["partitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, r)| (p.parse().unwrap(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(ends.len(), 3, "30 keys spread over 3 partitions: {ends:?}");

    // Alone in the group: every record, then the commits are visible.
    let out = ok(
        &b,
        &["consume", "events", "-g", "solo", "-e", "--format", "json"],
    );
    assert_eq!(json_lines(&out).len(), 30, "{out}");
    let d = ok(&b, &["group", "describe", "solo", "--format", "json"]).json();
    assert_eq!(d["state"], "Empty", "{d}");
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    assert_eq!(
        commits(&d),
        ends.iter()
            .map(|(p, n)| (*p, Some(*n), *n))
            .collect::<Vec<_>>()
    );
    // Again: it starts from the commits, so nothing is left.
    let out = ok(&b, &["consume", "events", "-g", "solo", "-e"]);
    assert_eq!(out.stdout, "", "{out}");

    // strom leads: a librdkafka member joins and gets its partitions from
    // strom's range assignment.
    let mut strom_member = Command::new(strom_bin())
        .args([
            "consume",
            "events",
            "-g",
            "shared",
            "--format",
            "json",
            "--brokers",
            &b,
        ])
        .env_remove("STROM_BROKERS")
        .env_remove("STROM_BOOTSTRAP")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strom consume");
    let strom_lines = spawn_line_reader(strom_member.stdout.take().unwrap());
    let mut strom_rows = Vec::new();
    while strom_rows.len() < 30 {
        let line = strom_lines
            .recv_timeout(Duration::from_secs(20))
            .expect("strom consume -g printed fewer than 30 records within 20 s");
        strom_rows.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let stop_file = broker.work_dir().join("release-shared");
    let (python, holding) = PythonMember::join(&b, "events", "shared", stop_file);
    let python_partitions: Vec<i64> = holding["assignment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tp| tp[1].as_i64().unwrap())
        .collect();
    let d = ok(&b, &["group", "describe", "shared", "--format", "json"]).json();
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol"], "range", "{d}");
    let ours = assignment_of(&d, "strom-cli");
    let theirs = assignment_of(&d, "librdkafka-member");
    assert_eq!(theirs, python_partitions, "{d}");
    assert!(!ours.is_empty() && !theirs.is_empty(), "{d}");
    let mut union: Vec<i64> = ours.iter().chain(&theirs).copied().collect();
    union.sort();
    assert_eq!(union, vec![0, 1, 2], "disjoint and complete: {d}");
    // strom committed what it printed before the rebalance.
    assert_eq!(
        commits(&d),
        ends.iter()
            .map(|(p, n)| (*p, Some(*n), *n))
            .collect::<Vec<_>>()
    );
    python.release();
    // Ctrl-C: strom commits, leaves the group and exits 0.
    let status = Command::new("kill")
        .args(["-INT", &strom_member.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = strom_member.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.unwrap_or_else(|| {
        let _ = strom_member.kill();
        panic!("strom consume did not exit within 5 s of SIGINT")
    });
    assert_eq!(exited.code(), Some(0), "exit status after SIGINT");
    let d = ok(&b, &["group", "describe", "shared", "--format", "json"]).json();
    assert_eq!(d["state"], "Empty", "strom left the group: {d}");

    // librdkafka leads: strom joins and reads only what it is assigned, to the end.
    let stop_file = broker.work_dir().join("release-led");
    let (python, _) = PythonMember::join(&b, "events", "led", stop_file);
    let out = ok(
        &b,
        &["consume", "events", "-g", "led", "-e", "--format", "json"],
    );
    let got: BTreeSet<i64> = json_lines(&out)
        .iter()
        .map(|r| r["partition"].as_i64().unwrap())
        .collect();
    assert!(
        !got.is_empty() && got.len() < 3,
        "strom got a share, not all: {got:?}\n{out}"
    );
    let expected: i64 = got.iter().map(|p| ends[p]).sum();
    assert_eq!(json_lines(&out).len() as i64, expected, "{out}");
    let d = ok(&b, &["group", "describe", "led", "--format", "json"]).json();
    for (p, committed, end) in commits(&d) {
        if got.contains(&p) {
            assert_eq!(committed, Some(end), "{d}");
        } else {
            assert_eq!(committed, None, "{d}");
        }
    }
    python.release();
}

#[test]
fn errors_name_the_problem() {
    let broker = Broker::start(BrokerOpts::default().config("auto.create.topics.enable = false\n"));
    let b = broker.bootstrap();

    // Nothing listens on port 1.
    for args in [
        &["topic", "list"][..],
        &["consume", "t", "-e"],
        &["cluster", "info"],
    ] {
        fails(
            "127.0.0.1:1",
            args,
            1,
            "cannot connect to the broker at 127.0.0.1:1",
        );
    }
    let out = strom("127.0.0.1:1", &["produce", "t"], Some(b"x\n"));
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("cannot connect to the broker at 127.0.0.1:1"),
        "{out}"
    );

    // Missing topics.
    fails(
        &b,
        &["topic", "describe", "nope"],
        1,
        "UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist",
    );
    fails(
        &b,
        &["consume", "nope", "-e"],
        1,
        "UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist",
    );
    let out = strom(&b, &["produce", "nope"], Some(b"x\n"));
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(out.stderr.contains("topic 'nope' does not exist"), "{out}");
    assert!(out.stderr.contains("strom topic create nope"), "{out}");

    ok(&b, &["topic", "create", "small", "-p", "2"]);
    let out = strom(&b, &["produce", "small", "-p", "0"], Some(b"a\nb\n"));
    assert!(out.success(), "{out}");
    fails(
        &b,
        &["consume", "small", "-p", "0", "-o", "100"],
        1,
        "OFFSET_OUT_OF_RANGE",
    );
    fails(
        &b,
        &["consume", "small", "-p", "5"],
        1,
        "partition 5 of topic 'small' does not exist",
    );
    let out = strom(&b, &["produce", "small", "-p", "9"], Some(b"a\n"));
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("partition 9 of topic 'small' does not exist"),
        "{out}"
    );
    // A record larger than the topic allows: the broker's error, per partition.
    ok(
        &b,
        &[
            "topic",
            "alter-config",
            "small",
            "--set",
            "max.message.bytes=2000",
        ],
    );
    let big = format!("{}\n", "x".repeat(5000));
    let out = strom(&b, &["produce", "small", "-p", "1"], Some(big.as_bytes()));
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(
        out.stderr.contains("partition 1: MESSAGE_TOO_LARGE"),
        "{out}"
    );

    // Usage errors exit 2.
    fails(&b, &["produce"], 2, "TOPIC");
    fails(&b, &["consume", "small", "-o", "soon"], 2, "not an offset");
    fails(&b, &["produce", "small", "--acks", "2"], 2, "--acks");

    // The cluster: info, broker configs, a dynamic default and a refused key.
    let info = ok(&b, &["cluster", "info", "--format", "json"]).json();
    assert!(
        !info["cluster_id"].as_str().unwrap_or("").is_empty(),
        "{info}"
    );
    assert_eq!(info["controller_id"], 1, "{info}");
    assert_eq!(info["topics"], 1, "{info}");
    assert_eq!(
        info["brokers"],
        serde_json::json!([{"node_id": 1, "host": "127.0.0.1", "port": broker.port(), "rack": null, "state": "active"}])
    );
    // A single node is a controller quorum of itself.
    assert_eq!(info["quorum"]["leader_id"], 1, "{info}");
    assert_eq!(info["quorum"]["voters"][0]["node_id"], 1, "{info}");
    assert_eq!(info["quorum"]["voters"][0]["lag"], 0, "{info}");
    let table = ok(&b, &["cluster", "info"]).stdout;
    assert!(
        table.contains(&format!("1*  127.0.0.1  {}", broker.port())),
        "{table}"
    );
    ok(
        &b,
        &["cluster", "config", "--set", "log.retention.ms=7200000"],
    );
    let configs = ok(&b, &["cluster", "config", "--format", "json"]).json();
    let entry = configs["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "log.retention.ms")
        .unwrap_or_else(|| panic!("{configs}"))
        .clone();
    assert_eq!(entry["value"], "7200000", "{configs}");
    assert_eq!(
        entry["source"], "DYNAMIC_DEFAULT_BROKER_CONFIG",
        "{configs}"
    );
    let out = fails(
        &b,
        &["cluster", "config", "--set", "no.such.broker.key=1"],
        1,
        "no.such.broker.key",
    );
    assert!(out.stderr.contains("INVALID"), "{out}");
}

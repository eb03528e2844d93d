//! Topic behaviour a user configures: auto-creation off, small segments that roll
//! (and survive a crash), and broker-assigned LogAppendTime timestamps.

use strom_tests::*;

#[test]
fn auto_create_disabled_rejects_unknown_topics() {
    let broker = Broker::start(BrokerOpts::default().config("auto.create.topics.enable = false\n"));
    let b = broker.bootstrap();
    let out = try_kcat(
        &[
            "-b",
            &b,
            "-t",
            "missing-topic",
            "-P",
            "-X",
            "message.timeout.ms=3000",
        ],
        Some(b"hello\n"),
    );
    assert!(
        !out.success(),
        "producing to a missing topic must fail when auto-creation is off: {}",
        out.stderr
    );
    let metadata = kcat_metadata(&b);
    let names: Vec<&str> = metadata["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .filter_map(|t| t["topic"].as_str())
        .collect();
    assert!(!names.contains(&"missing-topic"), "{metadata}");
    assert!(!broker.data_dir().join("missing-topic-0").exists());
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("partition dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .count()
}

#[test]
fn small_segments_roll_and_survive_kill_9() {
    let mut broker = Broker::start(BrokerOpts::default().config("log.segment.bytes = 65536\n"));
    let state = broker
        .work_dir()
        .join("rolled.state.json")
        .display()
        .to_string();
    let args = |verify: bool| {
        let mut a = vec![
            "--partitions".to_string(),
            "2".into(),
            "--count".into(),
            "20000".into(),
            "--state".into(),
            state.clone(),
            // Batches of at most 16 KiB, so 64 KiB segments must roll many times.
            "--batch-bytes".into(),
            "16384".into(),
        ];
        if verify {
            a.push("--verify-only".into());
        }
        a
    };
    let first: Vec<String> = args(false);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let summary = produce_consume(&broker.bootstrap(), "rolled", &first);
    assert_eq!(json_u64(&summary, "consumed"), 20000, "{summary}");
    for p in 0..2 {
        let segments = segment_files(&broker.data_dir().join(format!("rolled-{p}")));
        assert!(
            segments >= 5,
            "partition {p} has {segments} segments of 64 KiB"
        );
    }
    broker.kill9();
    broker.restart();
    let again: Vec<String> = args(true);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let summary = produce_consume(&broker.bootstrap(), "rolled", &again);
    assert_eq!(json_u64(&summary, "consumed"), 20000, "{summary}");
}

#[test]
fn log_append_time_topics_get_broker_timestamps() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let created = python(
        "admin.py",
        &[
            "--bootstrap",
            &b,
            "create",
            "appended",
            "--config",
            "message.timestamp.type=LogAppendTime",
        ],
    )
    .json();
    assert_eq!(created["error_code"], 0, "{created}");
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    // The producer sets CreateTime 1,000,000 ms (1970); the broker must replace it.
    let read = python(
        "timestamps.py",
        &[
            "--bootstrap",
            &b,
            "--topic",
            "appended",
            "--timestamp",
            "1000000",
        ],
    )
    .json();
    let messages = read["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "{read}");
    for m in messages {
        // librdkafka: 1 = CreateTime, 2 = LogAppendTime.
        assert_eq!(m["type"], 2, "{read}");
        let ts = m["timestamp"].as_i64().expect("timestamp");
        assert!(
            ts >= before_ms - 1000 && ts <= before_ms + 60_000,
            "LogAppendTime {ts} should be the broker's clock (~{before_ms})"
        );
    }
    // A CreateTime topic keeps the producer's timestamp.
    let read = python(
        "timestamps.py",
        &[
            "--bootstrap",
            &b,
            "--topic",
            "created",
            "--timestamp",
            "1000000",
        ],
    )
    .json();
    for m in read["messages"].as_array().expect("messages") {
        assert_eq!(m["type"], 1, "{read}");
        assert_eq!(m["timestamp"], 1_000_000, "{read}");
    }
}

/// Regression: under the common default soft limit of 1024 open files, a topic of
/// a few hundred partitions (3 files each) made the broker fail-stop, and then fail
/// again at every restart. The broker now raises its soft limit to the hard one.
#[test]
fn many_partitions_under_a_low_soft_open_file_limit() {
    let mut broker = Broker::start(BrokerOpts::default().smp(2).open_files_limits(256, None));
    let created = python(
        "admin.py",
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "create",
            "wide",
            "--partitions",
            "300",
        ],
    )
    .json();
    assert_eq!(created["error_code"], 0, "{created}");
    broker.assert_running();
    let summary = produce_consume(
        &broker.bootstrap(),
        "wide",
        &["--partitions", "300", "--count", "3000", "--no-create"],
    );
    assert_eq!(json_u64(&summary, "consumed"), 3000, "{summary}");
    broker.stop();
    broker.restart();
    broker.assert_running();
    assert_eq!(
        std::fs::read_dir(broker.data_dir())
            .expect("data dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("wide-"))
            .count(),
        300
    );
}

/// A topic that would need more open files than the broker may have is refused
/// with a clear error instead of stopping the broker at every start.
#[test]
fn a_topic_beyond_the_open_file_limit_is_refused() {
    // Hard limit 4096: about 1,300 partitions fit, 2,000 do not.
    let mut broker = Broker::start(BrokerOpts::default().open_files_limits(256, Some(4096)));
    let create = |name: &str, partitions: &str| {
        python(
            "admin.py",
            &[
                "--bootstrap",
                &broker.bootstrap(),
                "create",
                name,
                "--partitions",
                partitions,
            ],
        )
        .json()
    };
    let refused = create("too-wide", "2000");
    assert_eq!(
        refused["error_code"], 37,
        "INVALID_PARTITIONS expected: {refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("open-file limit"),
        "{refused}"
    );
    let accepted = create("fits", "100");
    assert_eq!(accepted["error_code"], 0, "{accepted}");
    broker.assert_running();
    broker.stop();
    broker.restart();
    broker.assert_running();
}

//! python confluent_kafka (librdkafka 2.x): produce/consume at volume, codecs,
//! headers, timestamps, big messages, admin errors, ListOffsets.

use serde_json::Value;
use strom_tests::*;

fn admin(b: &str, args: &[&str]) -> Value {
    let mut all = vec!["--bootstrap", b];
    all.extend_from_slice(args);
    python("admin.py", &all).json()
}

fn topics(b: &str) -> Value {
    admin(b, &["topics"])["topics"].clone()
}

fn assert_all_consumed(summary: &Value, count: u64, partitions: u64) {
    assert_eq!(json_u64(summary, "count"), count, "{summary}");
    assert_eq!(json_u64(summary, "consumed"), count, "{summary}");
    assert_eq!(json_u64(summary, "partitions"), partitions, "{summary}");
    let ends: u64 = summary["end_offsets"]
        .as_object()
        .expect("end_offsets")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        ends, count,
        "end offsets must add up to the count: {summary}"
    );
}

#[test]
fn hundred_thousand_keyed_messages_on_8_partitions() {
    let broker = Broker::start_default();
    let summary = produce_consume(
        &broker.bootstrap(),
        "bulk",
        &["--partitions", "8", "--count", "100000", "--timeout", "50"],
    );
    assert_all_consumed(&summary, 100_000, 8);
    assert_eq!(json_u64(&summary, "nonempty_partitions"), 8, "{summary}");
}

fn acks_round_trip(acks: &str) {
    let broker = Broker::start_default();
    let topic = format!("acks-{acks}");
    let summary = produce_consume(
        &broker.bootstrap(),
        &topic,
        &["--partitions", "3", "--count", "5000", "--acks", acks],
    );
    assert_all_consumed(&summary, 5000, 3);
}

#[test]
fn acks_0_messages_are_all_stored() {
    acks_round_trip("0");
}

#[test]
fn acks_1_messages_round_trip() {
    acks_round_trip("1");
}

fn codec_round_trip(codec: &str) {
    let broker = Broker::start_default();
    let topic = format!("codec-{codec}");
    let summary = produce_consume(
        &broker.bootstrap(),
        &topic,
        &[
            "--partitions",
            "4",
            "--count",
            "2000",
            "--compression",
            codec,
            "--headers",
        ],
    );
    assert_all_consumed(&summary, 2000, 4);
    assert_eq!(summary["compression"], codec);
    // Batches are stored exactly as produced. (librdkafka only compresses with
    // LZ4 when FindCoordinator v0 is advertised, so this also guards that.)
    let expected: u8 = match codec {
        "none" => 0,
        "gzip" => 1,
        "snappy" => 2,
        "lz4" => 3,
        "zstd" => 4,
        other => panic!("unknown codec {other}"),
    };
    let stored = stored_codecs(broker.data_dir(), &topic);
    assert_eq!(
        stored,
        std::collections::BTreeSet::from([expected]),
        "codecs stored for {topic}"
    );
}

#[test]
fn codec_none_round_trips() {
    codec_round_trip("none");
}

#[test]
fn codec_gzip_round_trips() {
    codec_round_trip("gzip");
}

#[test]
fn codec_snappy_round_trips() {
    codec_round_trip("snappy");
}

#[test]
fn codec_lz4_round_trips() {
    codec_round_trip("lz4");
}

#[test]
fn codec_zstd_round_trips() {
    codec_round_trip("zstd");
}

#[test]
fn headers_and_create_timestamps_round_trip() {
    let broker = Broker::start_default();
    let summary = produce_consume(
        &broker.bootstrap(),
        "headers-ts",
        &[
            "--partitions",
            "2",
            "--count",
            "500",
            "--headers",
            "--timestamps",
        ],
    );
    assert_all_consumed(&summary, 500, 2);
}

#[test]
fn message_of_900_kb_round_trips() {
    let broker = Broker::start_default();
    let summary = produce_consume(
        &broker.bootstrap(),
        "big",
        &["--partitions", "1", "--count", "5", "--big"],
    );
    assert_all_consumed(&summary, 5, 1);
}

#[test]
fn create_topics_errors() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let ok = admin(&b, &["create", "exists", "--partitions", "2"]);
    assert_eq!(ok["error_code"], 0, "{ok}");

    let r = admin(&b, &["create", "exists", "--partitions", "2"]);
    assert_eq!(r["error_code"], 36, "TOPIC_ALREADY_EXISTS: {r}");

    let r = admin(&b, &["create", "rf3", "--rf", "3"]);
    assert_eq!(r["error_code"], 38, "INVALID_REPLICATION_FACTOR: {r}");

    let r = admin(&b, &["create", "badcfg", "--config", "retention.ms=abc"]);
    assert_eq!(r["error_code"], 40, "INVALID_CONFIG: {r}");

    let r = admin(
        &b,
        &["create", "badcfg2", "--config", "cleanup.policy=sometimes"],
    );
    assert_eq!(r["error_code"], 40, "INVALID_CONFIG: {r}");

    for name in ["bad/name", "..", "spaces in name", &"x".repeat(250)] {
        let r = admin(&b, &["create", name]);
        assert_eq!(
            r["error_code"], 17,
            "INVALID_TOPIC_EXCEPTION for {name:?}: {r}"
        );
    }

    let r = admin(&b, &["create", "zero", "--partitions", "0"]);
    assert_eq!(r["error_code"], 37, "INVALID_PARTITIONS: {r}");

    // Only the one good topic exists, with its 2 partitions.
    let t = topics(&b);
    let names: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["exists"], "{t}");
    assert_eq!(t["exists"]["partitions"], 2, "{t}");
}

#[test]
fn create_topics_validate_only_creates_nothing() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let r = admin(
        &b,
        &["create", "dry", "--partitions", "3", "--validate-only"],
    );
    assert_eq!(r["error_code"], 0, "{r}");
    let r = admin(&b, &["create", "dry-bad", "--rf", "3", "--validate-only"]);
    assert_eq!(r["error_code"], 38, "validation still reports errors: {r}");
    let t = topics(&b);
    assert_eq!(t.as_object().map(|o| o.len()), Some(0), "{t}");
    assert!(!broker.data_dir().join("dry-0").exists());
    // And it can really be created afterwards.
    let r = admin(&b, &["create", "dry", "--partitions", "3"]);
    assert_eq!(r["error_code"], 0, "{r}");
    assert_eq!(topics(&b)["dry"]["partitions"], 3);
}

#[test]
fn delete_topic_removes_metadata_and_directory() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    produce_consume(&b, "doomed", &["--partitions", "2", "--count", "100"]);
    produce_consume(&b, "kept", &["--partitions", "1", "--count", "10"]);
    for p in 0..2 {
        assert!(broker.data_dir().join(format!("doomed-{p}")).is_dir());
    }
    let r = admin(&b, &["delete", "doomed"]);
    assert_eq!(r["error_code"], 0, "{r}");

    let t = topics(&b);
    assert!(
        t.get("doomed").is_none(),
        "deleted topic still in metadata: {t}"
    );
    assert_eq!(t["kept"]["partitions"], 1, "{t}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (0..2).any(|p| broker.data_dir().join(format!("doomed-{p}")).exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "partition directories of the deleted topic still exist after 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(broker.data_dir().join("kept-0").is_dir());

    let r = admin(&b, &["delete", "doomed"]);
    assert_eq!(r["error_code"], 3, "UNKNOWN_TOPIC_OR_PARTITION: {r}");

    // The name can be reused and starts empty.
    let summary = produce_consume(&b, "doomed", &["--partitions", "1", "--count", "7"]);
    assert_all_consumed(&summary, 7, 1);
}

#[test]
fn list_offsets_earliest_latest_and_by_timestamp() {
    list_offsets_case(false);
}

#[test]
fn list_offsets_by_timestamp_finds_records_inside_one_batch() {
    list_offsets_case(true);
}

fn list_offsets_case(one_batch: bool) {
    let broker = Broker::start_default();
    let base: i64 = 1_600_000_000_000;
    let q = |ms: i64| (base + ms).to_string();
    let queries = [
        q(0),
        q(2500),
        q(3000),
        q(9000),
        q(9001),
        q(-5000),
        q(3_600_000),
    ];
    let mut args = vec!["--bootstrap".to_string(), broker.bootstrap()];
    args.extend(["--topic", "offsets", "--count", "10"].map(String::from));
    if one_batch {
        args.push("--one-batch".into());
    }
    for query in &queries {
        args.push("--query".into());
        args.push(query.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = python("offsets.py", &args).json();
    let batches = stored_batches(broker.data_dir(), "offsets").len();
    if one_batch {
        assert_eq!(batches, 1, "all ten records in one batch");
    } else {
        assert_eq!(batches, 10, "one batch per record");
    }
    assert_eq!(r["base_ts"], base, "{r}");
    assert_eq!(r["low"], 0, "{r}");
    assert_eq!(r["high"], 10, "{r}");
    assert_eq!(r["earliest"], 0, "{r}");
    assert_eq!(r["latest"], 10, "{r}");
    assert_eq!(
        r["max_timestamp"],
        serde_json::json!([9, base + 9000]),
        "MAX_TIMESTAMP names the record holding the largest timestamp: {r}"
    );
    let t = &r["by_time"];
    assert_eq!(t[&q(0)], 0, "exact first timestamp: {r}");
    assert_eq!(t[&q(2500)], 3, "first message at or after +2.5 s: {r}");
    assert_eq!(t[&q(3000)], 3, "exact timestamp: {r}");
    assert_eq!(t[&q(9000)], 9, "last message: {r}");
    assert_eq!(t[&q(9001)], -1, "after the last message: {r}");
    assert_eq!(t[&q(-5000)], 0, "before the first message: {r}");
    assert_eq!(t[&q(3_600_000)], -1, "far future: {r}");
}

#[test]
fn message_over_topic_max_message_bytes_is_rejected() {
    let broker = Broker::start_default();
    let r = limited_topic(&broker.bootstrap(), true);
    assert_eq!(r["big_error_code"], 10, "MSG_SIZE_TOO_LARGE expected: {r}");
    assert_eq!(r["small_error_code"], 0, "{r}");
    assert_eq!(
        r["small_offset"], 0,
        "the rejected message took no offset: {r}"
    );
}

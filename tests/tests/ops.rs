//! Operating a broker: the admin HTTP API (`/metrics` parsed by the
//! Prometheus project's own parser, `/v1/health`, `/v1/ready`, `/v1/status`),
//! JSON logs with the shard id and per-module levels, systemd readiness, and
//! a clear refusal when the admin address is taken.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;
use strom_tests::*;

/// A plain HTTP/1.1 GET (or other method); returns (status, body).
fn http(method: &str, url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        path = path.trim_start_matches('/')
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_string())
}

fn get_json(url: &str) -> (u16, Value) {
    let (status, body) = http("GET", url);
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    (status, json)
}

/// Samples of one scrape: (name, labels, value).
struct Scrape(Vec<(String, serde_json::Map<String, Value>, f64)>, Value);

impl Scrape {
    fn take(broker: &Broker) -> Scrape {
        let url = format!("{}/metrics", broker.admin_url());
        let out = python("ops_metrics.py", &["scrape", "--url", &url]).json();
        let samples = out["samples"]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_string(),
                    s[1].as_object().unwrap().clone(),
                    s[2].as_f64().unwrap(),
                )
            })
            .collect();
        Scrape(samples, out["types"].clone())
    }

    /// Sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = (&'a serde_json::Map<String, Value>, f64)> + 'a {
        self.0
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l, *v))
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(name, labels).count()
    }
}

/// Bytes of a partition's segment files on disk.
fn log_bytes_on_disk(data_dir: &Path, topic: &str, partition: i32) -> u64 {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn metrics_move_by_the_amounts_clients_sent() {
    require_confluent_kafka();
    require_kcat();
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    let topic = "ops-metrics";
    let traffic = python(
        "ops_metrics.py",
        &[
            "traffic",
            "--bootstrap",
            &b,
            "--topic",
            topic,
            "--partitions",
            "3",
            "--count",
            "300",
            "--group",
            "ops-group",
            "--commit",
            "10",
        ],
    )
    .json();
    assert_eq!(json_u64(&traffic, "consumed"), 300);

    let m = Scrape::take(&broker);
    // The exposition is typed as documented.
    assert_eq!(m.1["strom_kafka_request_latency_seconds"], "histogram");
    assert_eq!(m.1["strom_storage_fsync_latency_seconds"], "histogram");
    assert_eq!(m.1["strom_partition_records_in"], "counter");
    assert_eq!(m.1["strom_partition_log_end_offset"], "gauge");
    assert_eq!(m.sum("strom_shards", &[]), 2.0);
    assert!(m.sum("strom_uptime_seconds", &[]) > 0.0);

    let t = [("topic", topic)];
    assert_eq!(m.sum("strom_partition_records_in_total", &t), 300.0);
    assert_eq!(m.sum("strom_partition_records_out_total", &t), 300.0);
    assert_eq!(m.sum("strom_partition_log_end_offset", &t), 300.0);
    assert_eq!(m.sum("strom_partition_high_watermark", &t), 300.0);
    assert_eq!(m.sum("strom_partition_log_start_offset", &t), 0.0);
    assert_eq!(m.count("strom_partition_segments", &t), 3);
    let mut bytes_in_total = 0.0;
    for p in 0..3 {
        let ps = p.to_string();
        let labels = [("topic", topic), ("partition", ps.as_str())];
        let on_disk = log_bytes_on_disk(broker.data_dir(), topic, p) as f64;
        assert!(on_disk > 0.0, "partition {p} got records");
        assert_eq!(
            m.sum("strom_partition_bytes_in_total", &labels),
            on_disk,
            "partition {p}"
        );
        assert_eq!(
            m.sum("strom_partition_size_bytes", &labels),
            on_disk,
            "partition {p}"
        );
        // One consumer read every batch exactly once.
        assert_eq!(
            m.sum("strom_partition_bytes_out_total", &labels),
            on_disk,
            "partition {p}"
        );
        bytes_in_total += on_disk;
        // Committed 10 on every partition: lag is the rest.
        let g = [
            ("group", "ops-group"),
            ("topic", topic),
            ("partition", ps.as_str()),
        ];
        assert_eq!(m.sum("strom_group_committed_offset", &g), 10.0);
        let end = m.sum("strom_partition_high_watermark", &labels);
        assert_eq!(m.sum("strom_group_lag", &g), end - 10.0);
    }
    assert_eq!(m.sum("strom_group_lag", &[("group", "ops-group")]), 270.0);
    assert!(m.sum("strom_kafka_request_bytes_total", &[]) > bytes_in_total);
    assert!(m.sum("strom_kafka_response_bytes_total", &[]) > bytes_in_total);
    assert!(m.sum("strom_kafka_requests_total", &[("api", "Produce")]) >= 1.0);
    assert!(m.sum("strom_kafka_requests_total", &[("api", "Fetch")]) >= 1.0);
    assert!(m.sum("strom_kafka_requests_total", &[("api", "OffsetCommit")]) >= 1.0);
    // Every request is in its API's latency histogram, once.
    for (labels, requests) in m.matching("strom_kafka_requests_total", &[]) {
        let shard = labels["shard"].as_str().unwrap();
        let api = labels["api"].as_str().unwrap();
        let key = [("shard", shard), ("api", api)];
        assert_eq!(
            m.sum("strom_kafka_request_latency_seconds_count", &key),
            requests,
            "{api} on shard {shard}"
        );
        let inf = [("shard", shard), ("api", api), ("le", "+Inf")];
        assert_eq!(
            m.sum("strom_kafka_request_latency_seconds_bucket", &inf),
            requests
        );
    }
    assert!(m.sum("strom_connections_accepted_total", &[]) >= 3.0);
    assert!(
        m.sum("strom_storage_fsync_latency_seconds_count", &[]) >= 1.0,
        "acks=all synced"
    );
    assert_eq!(m.count("strom_connections", &[]), 2, "one series per shard");
    assert_eq!(m.count("strom_cross_shard_messages_total", &[]), 2);
    assert_eq!(m.count("strom_reactor_stall_seconds_total", &[]), 2);
    assert_eq!(
        m.sum("strom_storage_corrupt_batch_truncations_total", &[]),
        0.0
    );

    // Counters move by exactly what is sent next.
    let lines: String = (0..5).map(|i| format!("more-{i}\n")).collect();
    let out = kcat(
        &["-b", &b, "-t", topic, "-p", "0", "-P"],
        Some(lines.as_bytes()),
    );
    assert!(out.success(), "{}", out.stderr);
    let after = Scrape::take(&broker);
    let p0 = [("topic", topic), ("partition", "0")];
    assert_eq!(
        after.sum("strom_partition_records_in_total", &p0),
        m.sum("strom_partition_records_in_total", &p0) + 5.0
    );
    assert_eq!(
        after.sum("strom_partition_log_end_offset", &p0),
        m.sum("strom_partition_log_end_offset", &p0) + 5.0
    );
    assert_eq!(
        after.sum(
            "strom_group_lag",
            &[("group", "ops-group"), ("topic", topic), ("partition", "0")]
        ),
        m.sum(
            "strom_group_lag",
            &[("group", "ops-group"), ("topic", topic), ("partition", "0")]
        ) + 5.0
    );
}

#[test]
fn health_ready_and_status_through_a_restart() {
    require_confluent_kafka();
    let mut broker = Broker::start(BrokerOpts::default().smp(2));
    let created = python(
        "admin.py",
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "create",
            "ops-status",
            "--partitions",
            "4",
        ],
    )
    .json();
    assert_eq!(created["error_code"], 0, "{created}");
    for start in 0..2 {
        let admin = broker.admin_url();
        let (status, health) = get_json(&format!("{admin}/v1/health"));
        assert_eq!(
            (status, &health["status"]),
            (200, &Value::from("ok")),
            "start {start}"
        );
        let (status, ready) = get_json(&format!("{admin}/v1/ready"));
        assert_eq!(
            (status, &ready["ready"]),
            (200, &Value::from(true)),
            "start {start}"
        );
        let (status, s) = get_json(&format!("{admin}/v1/status"));
        assert_eq!(status, 200);
        assert_eq!(s["node_id"], 1);
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(s["cluster_id"].as_str().unwrap().len(), 22);
        assert_eq!(s["topics"], 1);
        assert_eq!(s["partitions"], 4, "{s}");
        let shards = s["shards"].as_array().unwrap();
        assert_eq!(shards.len(), 2);
        let per_shard: u64 = shards
            .iter()
            .map(|x| x["partitions"].as_u64().unwrap())
            .sum();
        assert_eq!(per_shard, 4);
        assert!(s["uptime_seconds"].as_f64().unwrap() < 120.0);
        assert_eq!(http("GET", &format!("{admin}/nope")).0, 404);
        assert_eq!(http("POST", &format!("{admin}/metrics")).0, 405);
        broker.restart();
    }
}

#[test]
fn json_logs_carry_the_shard_and_levels_are_per_module() {
    require_kcat();
    let mut broker = Broker::start(BrokerOpts::default().smp(2).config(
        "strom.log.format = \"json\"\n\
         strom.log.level = \"info,strom_engine::kafka::create_topics=warn\"\n",
    ));
    let b = broker.bootstrap();
    let out = kcat(&["-b", &b, "-t", "ops-logs", "-P"], Some(b"one\n"));
    assert!(out.success(), "{}", out.stderr);
    broker.stop();
    let stderr = broker.stderr();
    let mut with_shard = 0;
    let mut messages = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        let message = v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if v["span"]["name"] == "shard" {
            assert!(v["span"]["id"].is_u64(), "{line}");
            with_shard += 1;
        }
        messages.push(message);
    }
    assert!(
        with_shard >= 2,
        "shard lines carry the shard span:\n{stderr}"
    );
    assert!(messages.iter().any(|m| m == "strom stopped"), "{stderr}");
    assert!(
        !messages.iter().any(|m| m.contains("auto-created topic")),
        "create_topics is filtered to warn:\n{stderr}"
    );
}

#[test]
fn systemd_is_told_when_the_broker_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let broker = Broker::start(BrokerOpts::default().env("NOTIFY_SOCKET", path.to_str().unwrap()));
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 from strom");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.lines().any(|l| l == "READY=1"), "{text}");
    drop(broker);
}

#[test]
fn a_taken_admin_address_is_refused_with_the_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(strom_bin());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--smp",
        "1",
        "--admin-listen",
        &addr,
    ])
    .arg("--data-dir")
    .arg(dir.path().join("data"));
    let out = run_command(cmd, None, Duration::from_secs(60));
    assert!(!out.timed_out, "strom kept running");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on {addr} for the admin API")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--admin-listen"), "{}", out.stderr);
}

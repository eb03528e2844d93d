//! `strom-bench` against a real `strom`: every shipped workload with small
//! counts, checking that every message sent was received and that the JSON
//! result is complete. No assertion here is about speed.
//!
//! The generator binary is `$STROM_BENCH_BIN`, else `strom-bench` next to the
//! `strom` binary; when it is missing it is built with `cargo build -p
//! strom-bench` (the same target directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use strom_tests::{run_command, strom_bin, Broker, BrokerOpts, Output};

/// Limit on one generator run (its own limits end it much sooner).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn bench_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STROM_BENCH_BIN") {
        return PathBuf::from(bin);
    }
    let strom = strom_bin();
    let bin = strom.with_file_name("strom-bench");
    if !bin.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = strom
            .parent()
            .and_then(Path::parent)
            .expect("<target>/debug/strom");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "strom-bench"])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(workspace_dir());
        let out = run_command(cmd, None, Duration::from_secs(900));
        assert!(out.success(), "building strom-bench failed:\n{out}");
    }
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

fn workspace_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

fn workloads() -> Vec<PathBuf> {
    let dir = workspace_dir().join("bench").join("workloads");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    files
}

fn bench(args: &[&str]) -> Output {
    let mut cmd = Command::new(bench_bin());
    cmd.args(args);
    run_command(cmd, None, RUN_TIMEOUT)
}

fn u64_at(v: &serde_json::Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing or not a count in {v:#}"))
}

fn f64_at(v: &serde_json::Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing or not a number"))
}

/// Checks one run's result.
fn check_result(name: &str, result: &serde_json::Value, messages: u64, consumers: bool) {
    assert_eq!(result["schema"], "strom-bench/run/1", "{name}");
    assert_eq!(result["workload"]["name"], name);
    for key in [
        "bootstrap",
        "topic",
        "started_at",
        "machine",
        "generator_cpus",
        "produce",
        "verification",
        "broker_cpu",
        "generator_cpu",
        "errors",
        "curves",
    ] {
        assert!(!result[key].is_null(), "{name}: {key} missing");
    }
    assert_eq!(
        result["errors"].as_array().map(Vec::len),
        Some(0),
        "{name}: {:#}",
        result["errors"]
    );
    assert_eq!(u64_at(result, "/produce/acked"), messages, "{name}");
    assert_eq!(u64_at(result, "/produce/errors"), 0, "{name}");
    assert!(f64_at(result, "/produce/throughput/msgs_per_s") > 0.0);
    assert!(f64_at(result, "/produce/throughput/mb_per_s") > 0.0);
    for p in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        let produce = u64_at(result, &format!("/produce/latency_us/{p}"));
        assert!(produce >= 1, "{name}: produce {p}");
    }
    assert_eq!(u64_at(result, "/produce/latency_us/count"), messages);
    assert!(f64_at(result, "/broker_cpu/cpu_seconds") >= 0.0);
    assert!(!result["curves"]["produce"].as_array().unwrap().is_empty());
    let v = &result["verification"];
    assert_eq!(u64_at(v, "/produced"), messages, "{name}");
    if consumers {
        assert_eq!(v["complete"], true, "{name}: {v:#}");
        assert_eq!(u64_at(v, "/received"), messages, "{name}");
        assert_eq!(u64_at(v, "/missing"), 0, "{name}");
        assert_eq!(u64_at(v, "/gaps"), 0, "{name}");
        assert_eq!(u64_at(result, "/consume/throughput/messages"), messages);
        assert_eq!(u64_at(result, "/consume/e2e_latency_us/count"), messages);
        assert!(u64_at(result, "/consume/e2e_latency_us/p99") >= 1);
        assert!(!result["curves"]["e2e"].as_array().unwrap().is_empty());
    }
}

#[test]
fn every_workload_delivers_every_message_with_a_complete_report() {
    let mut broker = Broker::start(BrokerOpts::default());
    let pid = broker.pid().to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let messages: u64 = 3000;
    for file in workloads() {
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        let out = work.path().join(format!("{name}.json"));
        let svg = work.path().join(format!("{name}.svg"));
        let mut args = vec![
            "run".to_string(),
            file.display().to_string(),
            "--bootstrap".into(),
            broker.bootstrap(),
            "--broker-pid".into(),
            pid.clone(),
            "--messages".into(),
            messages.to_string(),
            "--duration".into(),
            "60".into(),
            "--warmup".into(),
            "0".into(),
            "--quiet".into(),
            "--out".into(),
            out.display().to_string(),
            "--svg".into(),
            svg.display().to_string(),
        ];
        if name == "backlog" {
            args.extend(["--backlog".into(), "1000".into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = bench(&args);
        assert!(run.success(), "{name}:\n{run}");
        assert!(
            run.stdout.contains("verification"),
            "{name}: {}",
            run.stdout
        );
        let text = std::fs::read_to_string(&out).expect("result file");
        let result: serde_json::Value = serde_json::from_str(&text).expect("result is JSON");
        check_result(&name, &result, messages, true);
        if name == "backlog" {
            assert_eq!(u64_at(&result, "/backlog/backlog_messages"), 1000);
        }
        let plot = std::fs::read_to_string(&svg).expect("svg file");
        assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
        assert_eq!(plot.matches("<polyline").count(), 2, "{name}");
    }
    broker.assert_running();
}

#[test]
fn codecs_and_acks_round_trip() {
    let broker = Broker::start(BrokerOpts::default());
    let pid = broker.pid().to_string();
    let messages: u64 = 2000;
    for (compression, acks) in [
        ("gzip", "1"),
        ("snappy", "all"),
        ("lz4", "1"),
        ("zstd", "all"),
        ("none", "0"),
    ] {
        let run = bench(&[
            "run",
            "small-messages",
            "--bootstrap",
            &broker.bootstrap(),
            "--broker-pid",
            &pid,
            "--messages",
            &messages.to_string(),
            "--warmup",
            "0",
            "--compression",
            compression,
            "--acks",
            acks,
            "--quiet",
        ]);
        assert!(run.success(), "{compression} acks={acks}:\n{run}");
        // Without --out the JSON is the last line, after the summary.
        let result = run.json();
        assert_eq!(result["workload"]["producer"]["compression"], compression);
        check_result("small-messages", &result, messages, true);
    }
}

#[test]
fn compare_alternates_and_reports_ratios() {
    let broker = Broker::start(BrokerOpts::default());
    let pid = broker.pid().to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("compare.json");
    let run = bench(&[
        "compare",
        "max-throughput",
        "--a",
        &broker.bootstrap(),
        "--b",
        &broker.bootstrap(),
        "--a-pid",
        &pid,
        "--b-pid",
        &pid,
        "--a-topic-config",
        "write.caching=true",
        "--rounds",
        "2",
        "--pause-s",
        "0",
        "--messages",
        "1000",
        "--warmup",
        "0",
        "--quiet",
        "--out",
        &out.display().to_string(),
    ]);
    assert!(run.success(), "{run}");
    assert!(run.stdout.contains("produce MB/s"), "{}", run.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("compare file")).unwrap();
    assert_eq!(report["rounds"].as_array().map(Vec::len), Some(2));
    for round in report["rounds"].as_array().unwrap() {
        check_result("max-throughput", &round[0], 1000, true);
        check_result("max-throughput", &round[1], 1000, true);
        assert_eq!(
            round[0]["workload"]["topic"]["config"]["write.caching"],
            "true"
        );
        assert!(round[1]["workload"]["topic"]["config"]["write.caching"].is_null());
    }
    let figures = report["figures"].as_array().expect("figures");
    let mb = figures
        .iter()
        .find(|f| f["figure"] == "produce MB/s")
        .expect("produce MB/s");
    assert_eq!(mb["ratio"]["ratios"].as_array().map(Vec::len), Some(2));
    assert!(mb["ratio"]["geomean"].as_f64().unwrap() > 0.0);
}

#[test]
fn raw_baselines_report_json() {
    let work = tempfile::tempdir().expect("tempdir");
    let tcp = bench(&["baseline", "tcp", "--seconds", "1"]);
    assert!(tcp.success(), "{tcp}");
    assert!(tcp.json()["mb_per_s"].as_f64().unwrap() > 0.0);
    let disk = bench(&[
        "baseline",
        "disk",
        "--dir",
        &work.path().display().to_string(),
        "--total-mb",
        "8",
        "--sync-samples",
        "20",
    ]);
    assert!(disk.success(), "{disk}");
    let v = disk.json();
    assert!(v["raw"]["append_mb_per_s"].as_f64().unwrap() > 0.0);
    assert!(
        v["raw"]["synced_append_latency_us"]["p50"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

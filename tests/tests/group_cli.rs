//! `strom group` (the consumer group CLI) against a real broker, with groups made
//! by librdkafka consumers (`clients/group_cli_consumer.py`): list, describe with
//! lag, reset-offsets (dry run and --execute, every mode), refusals while members
//! are active, delete, delete-offsets, and the exit statuses.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use strom_tests::*;

const FAST_GROUPS: &str = "group.initial.rebalance.delay.ms = 0\n";

/// Runs `strom group ARGS --bootstrap B` (STROM_BOOTSTRAP cleared).
fn strom_group(bootstrap: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(strom_bin());
    cmd.arg("group")
        .args(args)
        .arg("--bootstrap")
        .arg(bootstrap)
        .env_remove("STROM_BOOTSTRAP");
    run_command(cmd, None, Duration::from_secs(90))
}

fn exit_code(out: &Output) -> Option<i32> {
    out.status.and_then(|s| s.code())
}

/// `strom group ARGS`, asserting exit status 0.
fn ok(bootstrap: &str, args: &[&str]) -> Output {
    let out = strom_group(bootstrap, args);
    assert!(out.success(), "strom group {args:?} failed\n{out}");
    out
}

/// `strom group ARGS`, asserting exit status `code` and a message on stderr.
fn fails(bootstrap: &str, args: &[&str], code: i32, stderr_has: &str) -> Output {
    let out = strom_group(bootstrap, args);
    assert_eq!(exit_code(&out), Some(code), "strom group {args:?}\n{out}");
    assert!(
        out.stderr.contains(stderr_has),
        "strom group {args:?}: stderr lacks {stderr_has:?}\n{out}"
    );
    out
}

fn describe(bootstrap: &str, group: &str) -> Value {
    ok(bootstrap, &["describe", group, "--format", "json"]).json()
}

/// (topic, partition, current offset, log end offset, lag) of each described partition.
type LagRow = (String, i64, Option<i64>, Option<i64>, Option<i64>);

fn lag_rows(description: &Value) -> Vec<LagRow> {
    description["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions: {description}"))
        .iter()
        .map(|p| {
            (
                p["topic"].as_str().unwrap().to_string(),
                p["partition"].as_i64().unwrap(),
                p["current_offset"].as_i64(),
                p["log_end_offset"].as_i64(),
                p["lag"].as_i64(),
            )
        })
        .collect()
}

fn row(topic: &str, p: i64, current: Option<i64>, end: i64, lag: Option<i64>) -> LagRow {
    (topic.to_string(), p, current, Some(end), lag)
}

/// (topic, partition, old, new) of one partition of a reset plan.
type PlanRow = (String, i64, Option<i64>, i64);

/// A reset plan (JSON) and its rows.
fn plan(bootstrap: &str, args: &[&str]) -> (Value, Vec<PlanRow>) {
    let mut all = vec!["reset-offsets"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = ok(bootstrap, &all);
    let json = out.json();
    let rows = json["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions: {json}"))
        .iter()
        .map(|p| {
            (
                p["topic"].as_str().unwrap().to_string(),
                p["partition"].as_i64().unwrap(),
                p["old"].as_i64(),
                p["new"].as_i64().unwrap(),
            )
        })
        .collect();
    (json, rows)
}

fn produce(bootstrap: &str, topic: &str, partitions: usize, per_partition: usize) {
    python(
        "group_cli_consumer.py",
        &[
            "produce",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--count",
            &per_partition.to_string(),
        ],
    );
}

/// A consumer that joins `group`, reads `read` records, commits `commit`
/// (`T:P:OFFSET,...`) and leaves. Returns its JSON summary.
fn consume(bootstrap: &str, topics: &str, group: &str, read: usize, commit: Option<&str>) -> Value {
    let read = read.to_string();
    let mut args = vec![
        "consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        topics,
        "--group",
        group,
        "--read",
        &read,
    ];
    if let Some(commit) = commit {
        args.extend_from_slice(&["--commit", commit]);
    }
    python("group_cli_consumer.py", &args).json()
}

/// A consumer that stays in its group until released.
struct ActiveMember {
    child: Child,
    lines: mpsc::Receiver<String>,
    stop_file: std::path::PathBuf,
}

impl ActiveMember {
    fn join(bootstrap: &str, topics: &str, group: &str, stop_file: std::path::PathBuf) -> Self {
        require_confluent_kafka();
        let python = std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let mut child = Command::new(python)
            .arg(clients_dir().join("group_cli_consumer.py"))
            .args(["consume", "--bootstrap", bootstrap, "--topic", topics])
            .args(["--group", group, "--client-id", "cli-test-member"])
            .arg("--hold-until")
            .arg(&stop_file)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the consumer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let member = ActiveMember {
            child,
            lines,
            stop_file,
        };
        let line = member
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the consumer did not join its group within 60 s");
        assert!(line.contains("\"holding\": true"), "unexpected line {line}");
        member
    }

    /// Lets the consumer leave its group (LeaveGroup) and waits for it to exit.
    fn release(mut self) -> Value {
        std::fs::write(&self.stop_file, b"stop").expect("write stop file");
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the consumer did not finish within 60 s");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "consumer exited with {status}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line}: {e}"))
    }
}

impl Drop for ActiveMember {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn describe_and_reset_an_inactive_group() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    produce(&b, "orders", 3, 10);
    produce(&b, "payments", 1, 5);
    consume(
        &b,
        "orders",
        "g1",
        30,
        Some("orders:0:4,orders:1:7,orders:2:10"),
    );

    // list: the group left, so it is Empty; --state filters.
    let list = ok(&b, &["list", "--format", "json"]).json();
    let groups = list["groups"].as_array().expect("groups");
    let g1: Vec<&Value> = groups.iter().filter(|g| g["group"] == "g1").collect();
    assert_eq!(g1.len(), 1, "{list}");
    assert_eq!(g1[0]["state"], "Empty", "{list}");
    assert_eq!(g1[0]["protocol_type"], "consumer", "{list}");
    let table = ok(&b, &["list"]).stdout;
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["g1", "Empty", "consumer"]),
        "{table}"
    );
    let stable = ok(&b, &["list", "--state", "stable", "--format", "json"]).json();
    assert_eq!(stable["groups"], serde_json::json!([]), "{stable}");
    let empty = ok(&b, &["list", "--state", "Empty", "--format", "json"]).json();
    assert_eq!(empty["groups"][0]["group"], "g1", "{empty}");

    // describe: committed 4/7/10 of 10 records each → lag 6/3/0.
    let d = describe(&b, "g1");
    assert_eq!(d["state"], "Empty", "{d}");
    assert_eq!(d["members"], serde_json::json!([]), "{d}");
    assert_eq!(d["coordinator"]["port"], i64::from(broker.port()), "{d}");
    assert_eq!(
        lag_rows(&d),
        vec![
            row("orders", 0, Some(4), 10, Some(6)),
            row("orders", 1, Some(7), 10, Some(3)),
            row("orders", 2, Some(10), 10, Some(0)),
        ]
    );
    assert_eq!(d["total_lag"], 9, "{d}");
    let table = ok(&b, &["describe", "g1"]).stdout;
    assert!(table.contains("TOTAL-LAG    9"), "{table}");
    assert!(table.contains("has no active members"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["orders", "1", "7", "10", "3", "-", "-", "-"]),
        "{table}"
    );

    // Dry runs of every mode change nothing.
    let old = |o: i64| Some(o);
    let (json, rows) = plan(&b, &["g1", "--topic", "orders", "--to-earliest"]);
    assert_eq!(json["executed"], false);
    assert_eq!(
        rows,
        vec![
            ("orders".to_string(), 0, old(4), 0),
            ("orders".to_string(), 1, old(7), 0),
            ("orders".to_string(), 2, old(10), 0),
        ]
    );
    let news = |args: &[&str]| -> Vec<i64> { plan(&b, args).1.iter().map(|r| r.3).collect() };
    assert_eq!(
        news(&["g1", "--topic", "orders", "--to-latest"]),
        [10, 10, 10]
    );
    assert_eq!(
        news(&["g1", "--topic", "orders", "--to-offset", "5"]),
        [5, 5, 5]
    );
    assert_eq!(
        news(&["g1", "--topic", "orders", "--to-offset", "99"]),
        [10, 10, 10]
    );
    assert_eq!(
        news(&["g1", "--topic", "orders", "--shift-by", "-5"]),
        [0, 2, 5]
    );
    assert_eq!(
        news(&["g1", "--topic", "orders", "--shift-by", "2"]),
        [6, 9, 10]
    );
    assert_eq!(
        news(&[
            "g1",
            "--topic",
            "orders",
            "--to-datetime",
            "2000-01-01T00:00:00Z"
        ]),
        [0, 0, 0]
    );
    assert_eq!(
        news(&[
            "g1",
            "--topic",
            "orders",
            "--to-datetime",
            "2100-01-01T00:00:00+01:00"
        ]),
        [10, 10, 10]
    );
    let (_, rows) = plan(&b, &["g1", "--topic", "orders:2,0", "--to-offset", "1"]);
    assert_eq!(
        rows,
        vec![
            ("orders".to_string(), 0, old(4), 1),
            ("orders".to_string(), 2, old(10), 1),
        ]
    );
    // A topic the group never committed: no old offsets.
    let (_, rows) = plan(&b, &["g1", "--topic", "payments", "--to-latest"]);
    assert_eq!(rows, vec![("payments".to_string(), 0, None, 5)]);
    let out = ok(
        &b,
        &["reset-offsets", "g1", "--topic", "orders", "--to-earliest"],
    );
    assert!(out.stdout.contains("OLD-OFFSET"), "{out}");
    assert!(
        out.stdout.contains("dry run: pass --execute to apply"),
        "{out}"
    );
    assert_eq!(
        lag_rows(&describe(&b, "g1")),
        lag_rows(&d),
        "a dry run changed offsets"
    );

    // --execute commits; a consumer then starts at the new offsets.
    let out = ok(
        &b,
        &[
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--to-offset",
            "2",
            "--execute",
        ],
    );
    assert!(out.stdout.contains("committed the new offsets"), "{out}");
    assert_eq!(
        lag_rows(&describe(&b, "g1")),
        vec![
            row("orders", 0, Some(2), 10, Some(8)),
            row("orders", 1, Some(2), 10, Some(8)),
            row("orders", 2, Some(2), 10, Some(8)),
        ]
    );
    let read = consume(&b, "orders", "g1", 24, None);
    assert_eq!(
        read["first"],
        serde_json::json!({"orders:0": 2, "orders:1": 2, "orders:2": 2}),
        "{read}"
    );
    assert_eq!(read["read"], 24, "{read}");

    // --all-topics covers every partition with a committed offset, across topics;
    // a partition subset and --shift-by execute too.
    consume(
        &b,
        "orders,payments",
        "g2",
        0,
        Some("orders:1:3,payments:0:1"),
    );
    let (_, rows) = plan(&b, &["g2", "--all-topics", "--to-latest", "--execute"]);
    assert_eq!(
        rows,
        vec![
            ("orders".to_string(), 1, old(3), 10),
            ("payments".to_string(), 0, old(1), 5),
        ]
    );
    ok(
        &b,
        &[
            "reset-offsets",
            "g2",
            "--topic",
            "orders:1",
            "--shift-by",
            "-4",
            "--execute",
        ],
    );
    assert_eq!(
        lag_rows(&describe(&b, "g2")),
        vec![
            row("orders", 0, None, 10, None),
            row("orders", 1, Some(6), 10, Some(4)),
            row("orders", 2, None, 10, None),
            row("payments", 0, Some(5), 5, Some(0)),
        ]
    );
    // --shift-by needs a committed offset.
    fails(
        &b,
        &[
            "reset-offsets",
            "g2",
            "--topic",
            "orders:0",
            "--shift-by",
            "1",
        ],
        1,
        "no committed offset",
    );

    // delete-offsets drops one topic's offsets of an empty group.
    let out = ok(&b, &["delete-offsets", "g2", "--topic", "payments"]);
    assert!(out.stdout.contains("deleted"), "{out}");
    let rows = lag_rows(&describe(&b, "g2"));
    assert!(rows.iter().all(|r| r.0 == "orders"), "{rows:?}");

    // A reset may create a group that does not exist yet.
    ok(
        &b,
        &[
            "reset-offsets",
            "fresh",
            "--topic",
            "payments",
            "--to-offset",
            "3",
            "--execute",
        ],
    );
    assert_eq!(
        lag_rows(&describe(&b, "fresh")),
        vec![row("payments", 0, Some(3), 5, Some(2))]
    );
}

#[test]
fn an_active_group_refuses_reset_and_delete() {
    let broker = Broker::start(BrokerOpts::default().smp(2).config(FAST_GROUPS));
    let b = broker.bootstrap();
    produce(&b, "events", 2, 6);
    consume(&b, "events", "live", 12, Some("events:0:1,events:1:2"));
    let member = ActiveMember::join(
        &b,
        "events",
        "live",
        broker.work_dir().join("release-member"),
    );

    // describe shows the member, its decoded assignment and who owns each partition.
    let d = describe(&b, "live");
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol_type"], "consumer", "{d}");
    let members = d["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{d}");
    assert_eq!(members[0]["client_id"], "cli-test-member", "{d}");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([{"topic": "events", "partitions": [0, 1]}]),
        "{d}"
    );
    let member_id = members[0]["member_id"].as_str().expect("member id");
    assert!(!member_id.is_empty(), "{d}");
    for p in d["partitions"].as_array().unwrap() {
        assert_eq!(p["member_id"], member_id, "{d}");
        assert_eq!(p["client_id"], "cli-test-member", "{d}");
    }
    assert_eq!(
        lag_rows(&d),
        vec![
            row("events", 0, Some(1), 6, Some(5)),
            row("events", 1, Some(2), 6, Some(4)),
        ]
    );
    let table = ok(&b, &["describe", "live"]).stdout;
    assert!(table.contains("events:0,1"), "{table}");
    assert!(table.contains("STATE        Stable"), "{table}");
    let stable = ok(&b, &["list", "--state", "stable", "--format", "json"]).json();
    assert_eq!(stable["groups"][0]["group"], "live", "{stable}");

    // reset --execute is refused, and nothing changes; a dry run still plans.
    fails(
        &b,
        &["reset-offsets", "live", "--topic", "events", "--to-earliest", "--execute"],
        1,
        "Assignments can only be reset if the group 'live' is inactive, but the current state is Stable",
    );
    let out = ok(
        &b,
        &[
            "reset-offsets",
            "live",
            "--topic",
            "events",
            "--to-earliest",
        ],
    );
    assert!(out.stderr.contains("--execute is refused"), "{out}");
    assert_eq!(lag_rows(&describe(&b, "live")), lag_rows(&d));

    // delete is refused while the group has members.
    let out = fails(
        &b,
        &["delete", "live"],
        1,
        "NON_EMPTY_GROUP: group 'live' is not empty (it has active members)",
    );
    assert_eq!(out.stdout, "", "{out}");
    let json = strom_group(&b, &["delete", "live", "--format", "json"]);
    assert_eq!(exit_code(&json), Some(1), "{json}");
    assert_eq!(
        json.json()["results"][0]["error"],
        "NON_EMPTY_GROUP",
        "{json}"
    );
    // delete-offsets of a topic the members consume is refused per partition.
    let out = strom_group(&b, &["delete-offsets", "live", "--topic", "events"]);
    assert_eq!(exit_code(&out), Some(1), "{out}");
    assert!(out.stdout.contains("GROUP_SUBSCRIBED_TO_TOPIC"), "{out}");

    // Once the member leaves: reset works, then delete works.
    member.release();
    let d = describe(&b, "live");
    assert_eq!(d["state"], "Empty", "{d}");
    ok(
        &b,
        &[
            "reset-offsets",
            "live",
            "--topic",
            "events",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(
        lag_rows(&describe(&b, "live")),
        vec![
            row("events", 0, Some(0), 6, Some(6)),
            row("events", 1, Some(0), 6, Some(6)),
        ]
    );
    let out = ok(&b, &["delete", "live"]);
    assert_eq!(out.stdout, "deleted group 'live'\n", "{out}");
    fails(
        &b,
        &["describe", "live"],
        1,
        "GROUP_ID_NOT_FOUND: group 'live' does not exist",
    );
    let list = ok(&b, &["list", "--format", "json"]).json();
    assert!(
        !list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "live"),
        "{list}"
    );
}

#[test]
fn errors_and_exit_statuses() {
    let broker = Broker::start(BrokerOpts::default().config(FAST_GROUPS));
    let b = broker.bootstrap();
    produce(&b, "t", 1, 3);
    consume(&b, "t", "known", 0, Some("t:0:1"));

    // Kafka errors: 1, naming the error.
    fails(&b, &["describe", "nope"], 1, "GROUP_ID_NOT_FOUND");
    let out = fails(
        &b,
        &["delete", "known", "nope"],
        1,
        "GROUP_ID_NOT_FOUND: group 'nope' does not exist",
    );
    assert_eq!(out.stdout, "deleted group 'known'\n", "{out}");
    fails(
        &b,
        &["reset-offsets", "g", "--topic", "missing", "--to-earliest"],
        1,
        "UNKNOWN_TOPIC_OR_PARTITION: topic 'missing' does not exist",
    );
    fails(
        &b,
        &["reset-offsets", "g", "--topic", "t:3", "--to-earliest"],
        1,
        "partition 3 of topic 't' does not exist",
    );
    fails(
        &b,
        &["reset-offsets", "g", "--all-topics", "--to-earliest"],
        1,
        "has no committed offsets",
    );

    // Usage errors: 2.
    for args in [
        &["reset-offsets", "g", "--topic", "t"][..],
        &[
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest",
        ],
        &[
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "yesterday",
        ],
        &["list", "--state", "sleepy"],
        &["describe"],
        &["delete"],
    ] {
        let out = strom_group(&b, args);
        assert_eq!(exit_code(&out), Some(2), "{args:?}\n{out}");
    }

    // Connection errors: 1, naming the address.
    fails(
        "127.0.0.1:1",
        &["list", "--timeout", "5"],
        1,
        "cannot connect to the broker at 127.0.0.1:1",
    );

    // STROM_BOOTSTRAP names the broker when --bootstrap is absent.
    let mut cmd = Command::new(strom_bin());
    cmd.args(["group", "list", "--format", "json"])
        .env("STROM_BOOTSTRAP", &b);
    let out = run_command(cmd, None, Duration::from_secs(60));
    assert!(out.success(), "{out}");
    assert!(out.json()["groups"].is_array(), "{out}");
}

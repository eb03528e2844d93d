//! Durability across restarts: graceful stop and kill -9.

use serde_json::Value;
use strom_tests::*;

fn state_file(broker: &Broker, name: &str) -> String {
    broker
        .work_dir()
        .join(format!("{name}.state.json"))
        .display()
        .to_string()
}

/// Produces (or, with `verify_only`, re-reads) numbered messages whose delivery
/// reports are kept in a state file, so a later run can check exact offsets.
fn run_with_state(
    broker: &Broker,
    topic: &str,
    partitions: &str,
    count: &str,
    verify_only: bool,
) -> Value {
    let state = state_file(broker, topic);
    let mut args = vec![
        "--partitions",
        partitions,
        "--count",
        count,
        "--headers",
        "--timestamps",
        "--state",
        &state,
    ];
    if verify_only {
        args.push("--verify-only");
    }
    produce_consume(&broker.bootstrap(), topic, &args)
}

fn produce_with_state(broker: &Broker, topic: &str, partitions: &str, count: &str) -> Value {
    run_with_state(broker, topic, partitions, count, false)
}

fn verify(broker: &Broker, topic: &str, partitions: &str, count: &str) -> Value {
    run_with_state(broker, topic, partitions, count, true)
}

/// The user topics (the consumers also create the internal `__consumer_offsets`).
fn topics(broker: &Broker) -> Value {
    let mut topics = python("admin.py", &["--bootstrap", &broker.bootstrap(), "topics"]).json()
        ["topics"]
        .clone();
    if let Some(map) = topics.as_object_mut() {
        map.retain(|name, _| !name.starts_with("__"));
    }
    topics
}

fn restart_keeps_everything(kill: bool) {
    let mut broker = Broker::start_default();
    let before = produce_with_state(&broker, "durable", "4", "20000");
    assert_eq!(json_u64(&before, "consumed"), 20000, "{before}");
    let small = produce_with_state(&broker, "small", "1", "3");
    assert_eq!(json_u64(&small, "consumed"), 3, "{small}");
    let limited = limited_topic(&broker.bootstrap(), true);
    assert_eq!(limited["big_error_code"], 10, "{limited}");
    assert_eq!(limited["small_offset"], 0, "{limited}");

    if kill {
        broker.kill9();
        broker.restart();
    } else {
        broker.restart(); // graceful: SIGTERM, exit 0, start again
    }

    // Same topics, same partition counts.
    let t = topics(&broker);
    assert_eq!(t["durable"]["partitions"], 4, "{t}");
    assert_eq!(t["small"]["partitions"], 1, "{t}");
    assert_eq!(t["limited"]["partitions"], 1, "{t}");
    assert_eq!(t.as_object().map(|o| o.len()), Some(3), "{t}");

    // Every acknowledged message, at the offset its delivery report gave.
    let after = verify(&broker, "durable", "4", "20000");
    assert_eq!(json_u64(&after, "consumed"), 20000, "{after}");
    assert_eq!(
        after["end_offsets"], before["end_offsets"],
        "end offsets changed"
    );
    let after = verify(&broker, "small", "1", "3");
    assert_eq!(json_u64(&after, "consumed"), 3, "{after}");

    // The topic config survived: the limit still applies; offsets continue.
    let limited = limited_topic(&broker.bootstrap(), false);
    assert_eq!(
        limited["big_error_code"], 10,
        "max.message.bytes lost: {limited}"
    );
    assert_eq!(limited["small_offset"], 1, "{limited}");

    // Appends continue after the recovered end.
    let b = broker.bootstrap();
    kcat(
        &["-b", &b, "-P", "-t", "small", "-p", "0"],
        Some(b"appended\n"),
    );
    let out = kcat(
        &[
            "-b", &b, "-C", "-t", "small", "-p", "0", "-o", "-1", "-e", "-f", "%o %s\n",
        ],
        None,
    );
    assert_eq!(out.stdout, "3 appended\n");

    // A second restart on the same data is fine too.
    broker.restart();
    let again = verify(&broker, "durable", "4", "20000");
    assert_eq!(json_u64(&again, "consumed"), 20000, "{again}");
    broker.stop();
}

#[test]
fn graceful_restart_keeps_messages_topics_and_configs() {
    restart_keeps_everything(false);
}

#[test]
fn kill_9_keeps_acknowledged_messages_topics_and_configs() {
    restart_keeps_everything(true);
}

#[test]
fn second_broker_on_same_data_dir_is_refused() {
    let broker = Broker::start_default();
    let out = run_command(
        {
            let mut cmd = std::process::Command::new(strom_bin());
            cmd.arg("serve")
                .arg("--data-dir")
                .arg(broker.data_dir())
                .args(["--listen", "127.0.0.1:0", "--smp", "1"]);
            cmd
        },
        None,
        std::time::Duration::from_secs(20),
    );
    assert!(!out.timed_out, "second broker kept running: {out}");
    assert!(
        !out.success(),
        "second broker on a locked data dir must fail: {out}"
    );
    assert!(out.stderr.contains("in use"), "{out}");
    assert!(!out.stdout.contains("listening"), "{out}");
}

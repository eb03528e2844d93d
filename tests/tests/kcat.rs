//! kcat (librdkafka 2.0.x, Debian) against a real broker.

use std::time::{SystemTime, UNIX_EPOCH};
use strom_tests::*;

fn keyed_lines(n: usize) -> String {
    (0..n).map(|i| format!("k{i}:v{i}\n")).collect()
}

fn produce(b: &str, topic: &str, extra: &[&str], input: &str) {
    let mut args = vec!["-b", b, "-P", "-t", topic];
    args.extend_from_slice(extra);
    kcat(&args, Some(input.as_bytes()));
}

fn consume(b: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["-b", b, "-C", "-t", topic, "-e", "-f", "%k=%s %o %p\n"];
    args.extend_from_slice(extra);
    let out = kcat(&args, None);
    out.stdout.lines().map(str::to_string).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn kcat_lists_broker_and_topic() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let md = kcat_metadata(&b);
    assert_eq!(md["brokers"].as_array().map(Vec::len), Some(1), "{md}");
    assert_eq!(md["brokers"][0]["id"], 1, "{md}");
    assert_eq!(
        md["brokers"][0]["name"],
        format!("127.0.0.1:{}", broker.port()),
        "{md}"
    );
    assert_eq!(md["topics"].as_array().map(Vec::len), Some(0), "{md}");

    produce(&b, "listed", &[], "hello\n");
    let md = kcat_metadata(&b);
    let topics = md["topics"].as_array().expect("topics");
    assert_eq!(topics.len(), 1, "{md}");
    assert_eq!(topics[0]["topic"], "listed");
    let partitions = topics[0]["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 1, "{md}");
    assert_eq!(partitions[0]["leader"], 1, "{md}");

    // Plain-text -L, as a human would run it.
    let out = kcat(&["-b", &b, "-L"], None);
    assert!(
        out.stdout
            .contains(&format!("broker 1 at 127.0.0.1:{}", broker.port())),
        "{out}"
    );
    assert!(
        out.stdout.contains("topic \"listed\" with 1 partitions"),
        "{out}"
    );
}

#[test]
fn kcat_produce_and_consume_keyed_messages() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    produce(&b, "keyed", &["-K:"], &keyed_lines(20));
    let lines = consume(&b, "keyed", &[]);
    let expected: Vec<String> = (0..20).map(|i| format!("k{i}=v{i} {i} 0")).collect();
    assert_eq!(lines, expected);
}

#[test]
fn kcat_start_offsets() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    produce(&b, "offs", &["-K:"], &keyed_lines(10));
    let all: Vec<String> = (0..10).map(|i| format!("k{i}=v{i} {i} 0")).collect();

    assert_eq!(consume(&b, "offs", &["-o", "beginning"]), all);
    assert_eq!(consume(&b, "offs", &["-o", "2"]), all[2..].to_vec());
    assert_eq!(consume(&b, "offs", &["-o", "9"]), all[9..].to_vec());
    // Negative: relative to the end.
    assert_eq!(consume(&b, "offs", &["-o", "-1"]), all[9..].to_vec());
    assert_eq!(consume(&b, "offs", &["-o", "-3"]), all[7..].to_vec());
    assert_eq!(consume(&b, "offs", &["-o", "end"]), Vec::<String>::new());
    // -c limits the count.
    assert_eq!(
        consume(&b, "offs", &["-o", "4", "-c", "2"]),
        all[4..6].to_vec()
    );

    // Appending after the end continues the offsets.
    produce(&b, "offs", &["-K:"], "late:x\n");
    assert_eq!(
        consume(&b, "offs", &["-o", "-1"]),
        vec!["late=x 10 0".to_string()]
    );
}

#[test]
fn kcat_specific_partition_of_auto_created_topic() {
    let broker = Broker::start(BrokerOpts::default().config("num.partitions = 3\n"));
    let b = broker.bootstrap();
    for p in 0..3 {
        let input: String = (0..4).map(|i| format!("p{p}k{i}:p{p}v{i}\n")).collect();
        produce(&b, "three", &["-K:", "-p", &p.to_string()], &input);
    }
    let md = kcat_metadata(&b);
    let topic = &md["topics"][0];
    assert_eq!(topic["topic"], "three", "{md}");
    assert_eq!(
        topic["partitions"].as_array().map(Vec::len),
        Some(3),
        "{md}"
    );

    let lines = consume(&b, "three", &["-p", "1"]);
    let expected: Vec<String> = (0..4).map(|i| format!("p1k{i}=p1v{i} {i} 1")).collect();
    assert_eq!(lines, expected);

    let lines = consume(&b, "three", &["-p", "2", "-o", "3"]);
    assert_eq!(lines, vec!["p2k3=p2v3 3 2".to_string()]);

    let mut all = consume(&b, "three", &[]);
    all.sort();
    assert_eq!(all.len(), 12, "{all:?}");
    for p in 0..3 {
        assert_eq!(
            all.iter().filter(|l| l.ends_with(&format!(" {p}"))).count(),
            4,
            "partition {p}: {all:?}"
        );
    }
}

#[test]
fn kcat_query_offset_by_timestamp() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    produce(&b, "times", &["-p", "0"], "a\nb\nc\n");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let middle = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(50));
    produce(&b, "times", &["-p", "0"], "d\ne\n");

    let query = |ts: i64| -> String {
        let spec = format!("times:0:{ts}");
        let out = kcat(&["-b", &b, "-Q", "-t", &spec], None);
        out.stdout.trim().to_string()
    };
    assert_eq!(query(middle), "times [0] offset 3");
    assert_eq!(query(0), "times [0] offset 0");
    // Later than every message: the end offset (-1 in kcat's output).
    assert_eq!(query(now_ms() + 3_600_000), "times [0] offset -1");
}

/// A long-polling fetch is woken by the append it waits for: with
/// fetch.wait.max.ms = 25 s, a consumer waiting at the end of a partition gets a
/// record produced a moment later long before its wait would have expired.
#[test]
fn long_poll_fetch_wakes_on_append() {
    let broker = Broker::start(BrokerOpts::default().smp(2));
    let b = broker.bootstrap();
    kcat(
        &["-b", &b, "-t", "wake", "-P", "-p", "0"],
        Some(b"before\n"),
    );
    let mut consumer = std::process::Command::new(kcat_bin())
        .args([
            "-b",
            &b,
            "-t",
            "wake",
            "-p",
            "0",
            "-C",
            "-o",
            "end",
            "-c",
            "1",
            "-q",
            "-X",
            "fetch.wait.max.ms=25000",
            "-X",
            "fetch.min.bytes=1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start kcat consumer");
    // Let the consumer reach the end and park in a long poll.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let produced = std::time::Instant::now();
    kcat(&["-b", &b, "-t", "wake", "-P", "-p", "0"], Some(b"after\n"));
    let deadline = produced + std::time::Duration::from_secs(12);
    loop {
        if let Some(status) = consumer.try_wait().expect("poll kcat") {
            assert!(status.success(), "kcat consumer failed: {status}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = consumer.kill();
            panic!("the waiting fetch was not woken by the append (still waiting after 12 s of a 25 s wait)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(consumer.stdout.as_mut().expect("stdout"), &mut out)
        .expect("read kcat output");
    assert_eq!(out.trim(), "after");
}

/// Fetch size limits: a consumer whose partition and response limits are smaller
/// than a record still receives it whole (KIP-74), and many records are delivered
/// across several limited fetches without loss.
#[test]
fn fetch_limits_smaller_than_a_record() {
    let broker = Broker::start_default();
    let b = broker.bootstrap();
    let big = "x".repeat(5000);
    let mut input = format!("{big}\n");
    for i in 0..200 {
        input.push_str(&format!("small-{i}\n"));
    }
    kcat(
        &["-b", &b, "-t", "limits", "-P", "-p", "0"],
        Some(input.as_bytes()),
    );
    let out = kcat(
        &[
            "-b",
            &b,
            "-t",
            "limits",
            "-p",
            "0",
            "-C",
            "-e",
            "-q",
            "-X",
            "max.partition.fetch.bytes=1000",
            "-X",
            "fetch.max.bytes=1000",
            "-X",
            "message.max.bytes=1000",
            "-X",
            "receive.message.max.bytes=1000000",
        ],
        None,
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 201, "every record arrives");
    assert_eq!(lines[0], big, "the 5000-byte record arrives whole");
    for (i, line) in lines[1..].iter().enumerate() {
        assert_eq!(*line, format!("small-{i}"));
    }
}

fn broker_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// A fetch that finds less than `fetch.min.bytes` waits for more (or for
/// `fetch.wait.max.ms`) without spinning, on one shard and across two, and then
/// delivers what there is.
#[test]
fn fetch_below_min_bytes_waits_without_spinning() {
    for smp in [1, 2] {
        let broker = Broker::start(BrokerOpts::default().smp(smp));
        let b = broker.bootstrap();
        let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
        kcat(
            &["-b", &b, "-t", "minbytes", "-P", "-p", "0"],
            Some(input.as_bytes()),
        );
        let before = broker_cpu_ticks(broker.pid());
        let started = std::time::Instant::now();
        // With 2 shards the connection and the partition may be on different cores.
        let out = kcat(
            &[
                "-b",
                &b,
                "-C",
                "-e",
                "-q",
                "-X",
                "fetch.min.bytes=1000000",
                "-X",
                "fetch.wait.max.ms=3000",
                "-t",
                "minbytes",
                "-p",
                "0",
                "-o",
                "beginning",
            ],
            None,
        );
        let waited = started.elapsed();
        let used = broker_cpu_ticks(broker.pid()) - before;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 10, "smp {smp}: {}", out.stdout);
        // A busy loop would burn about one tick (10 ms) per 10 ms of waiting.
        let waited_ticks = (waited.as_millis() / 10) as u64;
        assert!(
            used * 4 < waited_ticks.max(40),
            "smp {smp}: broker used {used} ticks of CPU during a {waited:?} long poll"
        );
    }
}

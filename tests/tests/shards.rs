//! Multi-shard brokers: whichever shard accepts a connection, requests for
//! partitions owned by other shards must be routed correctly.

use strom_tests::*;

/// Shard indexes of the process's `strom-shard-*` threads, deduplicated.
/// glommio names an executor's threads `<name>-<executor id>` and runs a helper
/// thread under the same name, so `strom-shard-0` appears as `strom-shard-0-1`.
fn shard_threads(pid: u32) -> Vec<usize> {
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    let mut shards: Vec<usize> = names
        .iter()
        .filter_map(|n| n.strip_prefix("strom-shard-"))
        .map(|rest| {
            rest.split('-')
                .next()
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("odd shard thread name in {names:?}"))
        })
        .collect();
    shards.sort();
    shards.dedup();
    shards
}

fn cross_shard_round_trip(smp: usize) {
    let mut broker = Broker::start(BrokerOpts::default().smp(smp));
    let expected: Vec<usize> = (0..smp).collect();
    assert_eq!(
        shard_threads(broker.pid()),
        expected,
        "one strom-shard-N thread group per shard"
    );

    let b = broker.bootstrap();
    let summary = produce_consume(&b, "spread", &["--partitions", "8", "--count", "20000"]);
    assert_eq!(json_u64(&summary, "consumed"), 20000, "{summary}");
    assert_eq!(json_u64(&summary, "nonempty_partitions"), 8, "{summary}");

    // Many short-lived connections (SO_REUSEPORT spreads them over the shards),
    // each producing to and reading from every partition.
    for round in 0..6 {
        for p in 0..8 {
            let line = format!("r{round}p{p}\n");
            kcat(
                &["-b", &b, "-P", "-t", "spread", "-p", &p.to_string()],
                Some(line.as_bytes()),
            );
        }
    }
    for p in 0..8 {
        let out = kcat(
            &[
                "-b",
                &b,
                "-C",
                "-t",
                "spread",
                "-p",
                &p.to_string(),
                "-o",
                "-6",
                "-e",
                "-f",
                "%s\n",
            ],
            None,
        );
        let expected: String = (0..6).map(|round| format!("r{round}p{p}\n")).collect();
        assert_eq!(out.stdout, expected, "partition {p}");
    }
    broker.assert_running();
    broker.stop();
}

#[test]
fn two_shards_route_across_shards() {
    cross_shard_round_trip(2);
}

#[test]
fn one_shard_serves_everything() {
    cross_shard_round_trip(1);
}

#[test]
fn four_shards_on_fewer_cores_still_work() {
    // More shards than cores is allowed (shards share cores).
    cross_shard_round_trip(4);
}

//! Fault tests of a 3-broker cluster (every broker also a controller voter):
//! a real client (confluent-kafka / librdkafka) produces numbered records with
//! acks=all to a topic with replication factor 3 and `min.insync.replicas=2`
//! while a fault is injected; afterwards a checker reads everything back.
//!
//! Every run must show: no acknowledged record lost (each acknowledged
//! record is at the offset its acknowledgement named), no offset holding two
//! different records, each partition's records in the order they were
//! produced (a retried record may appear twice), and acknowledged writes
//! again within 30 s after the fault heals.
//!
//! Each scenario runs with several seeds (which partition's leader, which
//! brokers, how long the fault lasts); the seed is printed first, and
//! `STROM_FAULT_SEEDS=7,8` replays chosen ones. Runs are serialized (one
//! cluster at a time) so they do not starve each other of the 2 cores.
//!
//! Needs root and nftables for the network partition (installed by
//! `.ci/test-all`).

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strom_tests::cluster::Cluster;
use strom_tests::{clients_dir, require_confluent_kafka, run_command, strom_bin};

const TOPIC: &str = "faults";
const PARTITIONS: i32 = 3;
/// Writes must be acknowledged again this soon after a fault heals.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);
/// Acknowledgements already on their way when a fault starts.
const ACK_GRACE_MS: i64 = 2000;

/// One cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn seeds() -> Vec<u64> {
    match std::env::var("STROM_FAULT_SEEDS") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => vec![1, 2, 3],
    }
}

/// xorshift64*: the fault's choices, replayable from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// The producer process; killed if the test fails before stopping it.
struct Producer {
    child: Option<Child>,
    log: PathBuf,
    stop: PathBuf,
}

impl Producer {
    fn start(bootstrap: &str, dir: &Path) -> Producer {
        require_confluent_kafka();
        let log = dir.join("acks.log");
        let stop = dir.join("stop");
        let child = Command::new("python3")
            .arg(clients_dir().join("numbered.py"))
            .args(["produce", bootstrap, TOPIC, &PARTITIONS.to_string()])
            .arg(&log)
            .arg(&stop)
            .arg("200")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the producer");
        Producer {
            child: Some(child),
            log,
            stop,
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Acknowledgement times (unix ms).
    fn ack_times(&self) -> Vec<i64> {
        self.lines()
            .iter()
            .filter(|l| l.starts_with("ack "))
            .filter_map(|l| l.split(' ').nth(4).and_then(|t| t.parse().ok()))
            .collect()
    }

    fn wait_acks_after(&self, after_ms: i64, limit: Duration, what: &str) -> i64 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.ack_times().into_iter().find(|t| *t > after_ms) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no acknowledged write within {limit:?} after {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn finish(&mut self) {
        std::fs::write(&self.stop, b"").expect("stop file");
        let mut child = self.child.take().expect("producer running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert!(status.success(), "producer exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("producer did not finish within 60 s of being told to stop");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn strom(args: &[&str]) -> strom_tests::Output {
    let mut cmd = Command::new(strom_bin());
    cmd.args(args);
    run_command(cmd, None, Duration::from_secs(60))
}

fn create_topic(cluster: &Cluster) {
    create_topic_with(cluster, TOPIC, PARTITIONS, 2);
}

/// A topic of replication factor 3.
fn create_topic_with(cluster: &Cluster, topic: &str, partitions: i32, min_insync: i32) {
    let out = strom(&[
        "topic",
        "create",
        topic,
        "-p",
        &partitions.to_string(),
        "-r",
        "3",
        "-c",
        &format!("min.insync.replicas={min_insync}"),
        "--brokers",
        &cluster.bootstrap(),
    ]);
    assert!(out.success(), "creating the topic failed\n{out}");
}

/// Waits until every partition has a live leader and all three replicas
/// in sync.
fn wait_fully_replicated(cluster: &mut Cluster, limit: Duration) {
    cluster.wait_until("every partition fully in sync", limit, |c| {
        (0..PARTITIONS)
            .all(|p| {
                c.partition(TOPIC, p)
                    .is_some_and(|info| info.leader > 0 && info.isr.len() == 3)
            })
            .then_some(())
    });
}

/// The leader of a partition (a live one).
fn leader_of(cluster: &mut Cluster, partition: i32) -> i32 {
    cluster.wait_until("a leader", Duration::from_secs(30), |c| {
        c.partition(TOPIC, partition)
            .map(|p| p.leader)
            .filter(|l| *l > 0)
    })
}

/// Checks the history: see the module docs.
fn check(cluster: &mut Cluster, producer: &Producer, seed: u64, scenario: &str) {
    let out_path = cluster.work_dir().join("read.txt");
    let out = strom_tests::try_python(
        "numbered.py",
        &[
            "read",
            &cluster.bootstrap(),
            TOPIC,
            &PARTITIONS.to_string(),
            out_path.to_str().expect("utf-8 path"),
        ],
        &[],
        Duration::from_secs(120),
    );
    assert!(
        out.success(),
        "[{scenario} seed {seed}] reading back failed\n{out}"
    );
    let read = std::fs::read_to_string(&out_path).expect("read output");
    // (partition, offset) -> n
    let mut stored: HashMap<(i32, i64), i64> = HashMap::new();
    let mut by_partition: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for line in read.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (p, o, k, v): (i32, i64, i64, &str) = (
            f[0].parse().expect("partition"),
            f[1].parse().expect("offset"),
            f[2].parse().expect("key"),
            f[3],
        );
        assert_eq!(
            v,
            format!("v{k}"),
            "[{scenario} seed {seed}] record {p}/{o} has key {k} but value {v}"
        );
        assert_eq!(
            i64::from(p),
            k % i64::from(PARTITIONS),
            "[{scenario} seed {seed}] record {k} in partition {p}"
        );
        stored.insert((p, o), k);
        by_partition.entry(p).or_default().push((o, k));
    }
    let lines = producer.lines();
    let mut acked: HashMap<(i32, i64), i64> = HashMap::new();
    let mut acks = 0;
    for line in lines.iter().filter(|l| l.starts_with("ack ")) {
        let f: Vec<&str> = line.split(' ').collect();
        let (p, o, n): (i32, i64, i64) = (
            f[1].parse().expect("partition"),
            f[2].parse().expect("offset"),
            f[3].parse().expect("n"),
        );
        acks += 1;
        if let Some(other) = acked.insert((p, o), n) {
            assert_eq!(
                other, n,
                "[{scenario} seed {seed}] offset {p}/{o} acknowledged for records {other} and {n}"
            );
        }
        match stored.get(&(p, o)) {
            None => panic!("[{scenario} seed {seed}] acknowledged record {n} at {p}/{o} is lost"),
            Some(k) => assert_eq!(*k, n, "[{scenario} seed {seed}] offset {p}/{o} was acknowledged for record {n} but holds {k}"),
        }
    }
    assert!(
        acks > 50,
        "[{scenario} seed {seed}] only {acks} records were acknowledged"
    );
    for (p, records) in &by_partition {
        let mut seen = std::collections::HashSet::new();
        let mut last = -1;
        for (o, n) in records {
            if !seen.insert(*n) {
                continue; // a retried record written twice
            }
            assert!(*n > last, "[{scenario} seed {seed}] partition {p}: record {n} at offset {o} after record {last}");
            last = *n;
        }
    }
    let errors = lines.iter().filter(|l| l.starts_with("err ")).count();
    eprintln!(
        "[{scenario} seed {seed}] ok: {acks} acknowledged, {} stored, {errors} delivery errors",
        stored.len()
    );
}

/// Runs one scenario: cluster up, topic, producer, `fault` (returns the
/// time the fault healed), writes acknowledged again within 30 s, checker.
fn run(scenario: &str, fault: impl Fn(&mut Cluster, &Producer, &mut Rng) -> i64) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds() {
        eprintln!("[{scenario}] seed={seed} (STROM_FAULT_SEEDS={seed} replays it)");
        let mut rng = Rng::new(seed);
        let mut cluster = Cluster::start(
            3,
            1,
            "replica.lag.time.max.ms = 10000\nleader.imbalance.check.interval.seconds = 5",
        );
        create_topic(&cluster);
        wait_fully_replicated(&mut cluster, Duration::from_secs(30));
        let producer = Producer::start(&cluster.bootstrap(), cluster.work_dir());
        producer.wait_acks_after(0, Duration::from_secs(30), "the start");
        std::thread::sleep(rng.ms(500, 2000));
        let healed_ms = fault(&mut cluster, &producer, &mut rng);
        let first = producer.wait_acks_after(healed_ms, RECOVERY_LIMIT, "the fault healed");
        eprintln!(
            "[{scenario} seed {seed}] FIGURE writes_after_heal_ms={}",
            first - healed_ms
        );
        std::thread::sleep(Duration::from_secs(1));
        let mut producer = producer;
        producer.finish();
        wait_fully_replicated(&mut cluster, Duration::from_secs(60));
        check(&mut cluster, &producer, seed, scenario);
    }
}

/// Polls until `partition` has a live leader other than `old`; the time it took.
fn time_to_new_leader(cluster: &mut Cluster, partition: i32, old: i32, since: Instant) -> Duration {
    cluster.wait_until("a new leader", Duration::from_secs(30), |c| {
        c.partition(TOPIC, partition)
            .filter(|p| p.leader > 0 && p.leader != old)
            .map(|_| since.elapsed())
    })
}

#[test]
fn sigkill_of_a_leader_during_produce() {
    run("leader-kill", |cluster, _producer, rng| {
        let partition = rng.below(PARTITIONS as u64) as i32;
        let leader = leader_of(cluster, partition);
        let killed = Instant::now();
        cluster.kill9(leader);
        let took = time_to_new_leader(cluster, partition, leader, killed);
        eprintln!("[leader-kill] FIGURE new_leader_ms={}", took.as_millis());
        std::thread::sleep(rng.ms(1000, 4000));
        cluster.restart(leader);
        let healed = now_ms();
        // It catches up and rejoins every ISR.
        wait_fully_replicated(cluster, Duration::from_secs(60));
        // Preferred-leader election gives the partitions back to their
        // first replica (checked every 5 s in these tests).
        cluster.wait_until("preferred leaders again", Duration::from_secs(30), |c| {
            (0..PARTITIONS)
                .all(|p| {
                    c.partition(TOPIC, p)
                        .is_some_and(|i| i.replicas.first() == Some(&i.leader))
                })
                .then_some(())
        });
        healed
    });
}

#[test]
fn sigkill_of_a_follower_which_catches_up_and_rejoins() {
    run("follower-kill", |cluster, _producer, rng| {
        let partition = rng.below(PARTITIONS as u64) as i32;
        let leader = leader_of(cluster, partition);
        let follower = cluster
            .partition(TOPIC, partition)
            .and_then(|p| p.replicas.into_iter().find(|r| *r != leader))
            .expect("a follower");
        cluster.kill9(follower);
        // The leader drops it from the ISR once it is fenced.
        cluster.wait_until(
            "the ISR without the dead follower",
            Duration::from_secs(30),
            |c| {
                c.partition(TOPIC, partition)
                    .filter(|p| !p.isr.contains(&follower) && p.leader > 0)
            },
        );
        std::thread::sleep(rng.ms(1000, 3000));
        cluster.restart(follower);
        let healed = now_ms();
        cluster.wait_until(
            "the follower back in the ISR",
            Duration::from_secs(60),
            |c| {
                c.partition(TOPIC, partition)
                    .filter(|p| p.isr.contains(&follower))
            },
        );
        healed
    });
}

#[test]
fn two_of_three_down_refuses_acks_all_until_one_returns() {
    run("two-down", |cluster, producer, rng| {
        let survivor = 1 + rng.below(3) as i32;
        let killed: Vec<i32> = (1..=3).filter(|b| *b != survivor).collect();
        let down_ms = now_ms();
        for b in &killed {
            cluster.kill9(*b);
        }
        std::thread::sleep(rng.ms(5000, 8000));
        let back = killed[rng.below(2) as usize];
        let restart_ms = now_ms();
        // Nothing may be acknowledged while only one replica is up.
        let during: Vec<i64> = producer
            .ack_times()
            .into_iter()
            .filter(|t| *t > down_ms + ACK_GRACE_MS && *t < restart_ms)
            .collect();
        assert!(
            during.is_empty(),
            "{} writes were acknowledged with two of three brokers down (survivor {survivor})",
            during.len()
        );
        cluster.restart(back);
        let healed = now_ms();
        producer.wait_acks_after(healed, RECOVERY_LIMIT, "one broker returned");
        let last = killed.into_iter().find(|b| *b != back).expect("other");
        cluster.restart(last);
        healed
    });
}

#[test]
fn sigkill_of_the_active_controller() {
    run("controller-kill", |cluster, _producer, rng| {
        let controller = cluster.wait_until("an active controller", Duration::from_secs(30), |c| {
            c.controller_from(1)
        });
        let killed = Instant::now();
        cluster.kill9(controller);
        let survivor = (1..=3).find(|b| *b != controller).expect("survivor");
        let new = cluster.wait_until("a new active controller", Duration::from_secs(30), |c| {
            c.controller_from(survivor).filter(|n| *n != controller)
        });
        eprintln!(
            "[controller-kill] FIGURE new_controller_ms={} (node {controller} -> {new})",
            killed.elapsed().as_millis()
        );
        std::thread::sleep(rng.ms(1000, 3000));
        cluster.restart(controller);
        let healed = now_ms();
        wait_fully_replicated(cluster, Duration::from_secs(60));
        healed
    });
}

#[test]
fn network_partition_isolating_a_leader_then_healing() {
    run("partition", |cluster, _producer, rng| {
        let partition = rng.below(PARTITIONS as u64) as i32;
        let leader = leader_of(cluster, partition);
        cluster.isolate(leader);
        // The majority side elects another leader.
        let others: Vec<i32> = (1..=3).filter(|b| *b != leader).collect();
        let from = others[0];
        cluster.wait_until(
            "a leader on the majority side",
            Duration::from_secs(30),
            |c| {
                let m = c.metadata_from(from)?;
                let topic = m["topics"]
                    .as_array()?
                    .iter()
                    .find(|t| t["topic"] == TOPIC)?
                    .clone();
                let p = topic["partitions"]
                    .as_array()?
                    .iter()
                    .find(|p| p["partition"] == partition)?
                    .clone();
                let l = p["leader"].as_i64()? as i32;
                (l > 0 && l != leader).then_some(())
            },
        );
        std::thread::sleep(rng.ms(2000, 5000));
        cluster.heal();
        let healed = now_ms();
        wait_fully_replicated(cluster, Duration::from_secs(60));
        healed
    });
}

#[test]
fn rolling_restart_under_load() {
    run("rolling-restart", |cluster, producer, rng| {
        let first = 1 + rng.below(3) as i32;
        let order: Vec<i32> = (0..3).map(|i| 1 + (first - 1 + i) % 3).collect();
        let mut healed = now_ms();
        for broker in order {
            cluster.stop(broker);
            std::thread::sleep(rng.ms(500, 1500));
            cluster.restart(broker);
            healed = now_ms();
            wait_fully_replicated(cluster, Duration::from_secs(60));
            producer.wait_acks_after(healed, RECOVERY_LIMIT, "a broker restarted");
        }
        healed
    });
}

/// The `__consumer_offsets` partition of a group (Kafka's rule: Java's
/// String.hashCode of the group id, modulo the partition count).
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (hash & 0x7fff_ffff) % partitions
}

fn group_client(command: &str, cluster: &Cluster, group: &str) -> BTreeMap<String, i64> {
    let out = strom_tests::try_python(
        "group_failover.py",
        &[
            command,
            &cluster.bootstrap(),
            TOPIC,
            group,
            &PARTITIONS.to_string(),
        ],
        &[],
        Duration::from_secs(120),
    );
    assert!(out.success(), "group_failover.py {command} failed\n{out}");
    serde_json::from_str(out.stdout.trim()).expect("offsets as JSON")
}

/// `__consumer_offsets` is replicated like any topic: a group's committed
/// offsets survive the loss of the broker coordinating it, the group can
/// commit again at the new coordinator, and after the broker returns.
#[test]
fn committed_offsets_survive_the_loss_of_the_group_coordinator() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(3, 1, "offsets.topic.num.partitions = 10");
    create_topic(&cluster);
    wait_fully_replicated(&mut cluster, Duration::from_secs(30));
    let produce = |cluster: &Cluster, from: u32, to: u32| {
        let lines: String = (from..to).map(|n| format!("{n}\n")).collect();
        let out = strom_tests::kcat(
            &[
                "-b",
                &cluster.bootstrap(),
                "-t",
                TOPIC,
                "-P",
                "-X",
                "acks=all",
            ],
            Some(lines.as_bytes()),
        );
        assert!(out.success(), "{out}");
    };
    produce(&cluster, 0, 300);
    let group = "failover-group";
    let first = group_client("commit", &cluster, group);
    assert_eq!(first.values().sum::<i64>(), 300, "{first:?}");

    // The coordinator is the leader of the group's offsets partition; it
    // replicated the commit to the other two brokers.
    let p = offsets_partition(group, 10);
    let coordinator = cluster.wait_until("the group's coordinator", Duration::from_secs(30), |c| {
        let info = c.partition("__consumer_offsets", p)?;
        (info.leader > 0 && info.isr.len() == 3).then_some(info.leader)
    });
    cluster.kill9(coordinator);
    assert_eq!(
        group_client("committed", &cluster, group),
        first,
        "committed offsets after the coordinator (broker {coordinator}) died"
    );
    // The new coordinator takes commits.
    produce(&cluster, 300, 330);
    let second = group_client("commit", &cluster, group);
    assert_eq!(second.values().sum::<i64>(), 330, "{second:?}");
    cluster.restart(coordinator);
    // Back, it answers from the cluster's metadata, not from the image it
    // had when it died, in which it led the offsets partition: it once
    // served the first commit again from there, as the group's coordinator.
    let back = leader_from(&cluster, coordinator, "__consumer_offsets", p);
    let survivor = cluster
        .running()
        .into_iter()
        .find(|id| *id != coordinator)
        .expect("a survivor");
    let now = leader_from(&cluster, survivor, "__consumer_offsets", p);
    assert_eq!(
        back, now,
        "the offsets partition's leader as broker {coordinator} reports it right after its restart, \
         and as broker {survivor} does"
    );
    wait_fully_replicated(&mut cluster, Duration::from_secs(60));
    assert_eq!(group_client("committed", &cluster, group), second);
}

/// A partition's leader as broker `id` reports it (None if it does not
/// answer or does not know the partition).
fn leader_from(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> Option<i64> {
    let metadata = cluster.metadata_from(id)?;
    metadata["topics"]
        .as_array()?
        .iter()
        .find(|t| t["topic"] == topic)?["partitions"]
        .as_array()?
        .iter()
        .find(|q| q["partition"] == partition)?["leader"]
        .as_i64()
}

/// Issue 17, defect 4: an acks=all record waiting for a follower that
/// stops fetching must not be acknowledged once the ISR has shrunk below
/// `min.insync.replicas` (it has fewer copies than the producer asked for):
/// the leader answers NOT_ENOUGH_REPLICAS_AFTER_APPEND, then refuses the
/// retries with NOT_ENOUGH_REPLICAS until the message times out.
#[test]
fn an_ack_waiting_when_the_isr_shrinks_below_min_insync_is_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(3, 1, "replica.lag.time.max.ms = 2000");
    let topic = "min-insync";
    create_topic_with(&cluster, topic, 1, 3);
    let (leader, follower) = cluster.wait_until(
        "the partition fully in sync",
        Duration::from_secs(30),
        |c| {
            let info = c.partition(topic, 0)?;
            let follower = info.replicas.iter().copied().find(|r| *r != info.leader)?;
            (info.leader > 0 && info.isr.len() == 3).then_some((info.leader, follower))
        },
    );
    let produce = |cluster: &Cluster, value: &str, timeout_ms: u32| -> Value {
        let out = strom_tests::try_python(
            "produce_one.py",
            &[&cluster.bootstrap(), topic, value, &timeout_ms.to_string()],
            &[],
            Duration::from_secs(120),
        );
        assert!(out.success(), "produce_one.py failed\n{out}");
        serde_json::from_str(out.stdout.trim()).expect("a JSON report")
    };
    let first = produce(&cluster, "in sync", 10_000);
    assert_eq!(first["delivered"], true, "{first}");
    // The follower stops fetching; the leader drops it from the ISR after
    // replica.lag.time.max.ms, while the record below waits for it.
    cluster.isolate(follower);
    let second = produce(&cluster, "one copy short", 20_000);
    cluster.heal();
    assert_eq!(
        second["delivered"], false,
        "acknowledged with broker {follower} out of the ISR (leader {leader}, min.insync.replicas 3): {second}"
    );
}

/// Stopping a whole cluster: once two of three brokers are gone, the last
/// one has no controller to move its leaderships, and it stops after a
/// session without an answer instead of waiting out the controlled-shutdown
/// timeout (set to 2 minutes here, longer than the harness waits for a stop).
#[test]
fn the_last_broker_stops_without_a_quorum() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::start(3, 1, "strom.controlled.shutdown.timeout.ms = 120000");
    create_topic(&cluster);
    wait_fully_replicated(&mut cluster, Duration::from_secs(30));
    cluster.kill9(1);
    cluster.kill9(2);
    // Panics unless broker 3 exits with status 0 within the harness' limit.
    cluster.stop(3);
    let log = cluster.stderr(3);
    assert!(
        log.contains("no controller answered"),
        "broker 3 should say why it stopped without a controlled shutdown\n{log}"
    );
}

/// Transactions across the loss of a partition leader (3 brokers, both
/// topics replicated 3 times): a transactional producer (librdkafka) runs
/// transactions over every partition of two topics, committing two of
/// three and aborting the third, while the leader of one partition (maybe
/// also the transaction coordinator) is killed and restarted. Afterwards a
/// read_committed consumer checks the whole history: every committed
/// transaction complete and once, no aborted record, and each transaction
/// whose outcome the client did not learn all or nothing.
#[test]
fn transactions_stay_atomic_when_a_partition_leader_dies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_confluent_kafka();
    for seed in seeds() {
        eprintln!("seed {seed}");
        let mut rng = Rng::new(seed);
        let mut cluster = Cluster::start(
            3,
            1,
            "transaction.state.log.num.partitions = 5\n\
             transaction.abort.timed.out.transaction.cleanup.interval.ms = 1000",
        );
        create_topic(&cluster);
        let out = strom(&[
            "topic",
            "create",
            "txn-second",
            "-p",
            "2",
            "-r",
            "3",
            "--brokers",
            &cluster.bootstrap(),
        ]);
        assert!(out.success(), "{out}");
        wait_fully_replicated(&mut cluster, Duration::from_secs(30));
        let topics = format!("{TOPIC},txn-second");
        let history = cluster.work_dir().join("history.json");
        let bootstrap = cluster.bootstrap();
        let producer = {
            let (topics, history, bootstrap) = (topics.clone(), history.clone(), bootstrap.clone());
            std::thread::spawn(move || {
                strom_tests::try_python(
                    "transactions.py",
                    &[
                        "history",
                        "--bootstrap",
                        &bootstrap,
                        "--topics",
                        &topics,
                        "--count",
                        "40",
                        "--out",
                        history.to_str().expect("utf-8 path"),
                        "--timeout",
                        "90",
                    ],
                    &[],
                    Duration::from_secs(150),
                )
            })
        };
        // The run takes longer than this (40 transactions, 100 ms apart).
        std::thread::sleep(rng.ms(2000, 4000));
        let partition = rng.below(PARTITIONS as u64) as i32;
        let victim = leader_of(&mut cluster, partition);
        eprintln!("killing broker {victim}, the leader of {TOPIC}-{partition}");
        cluster.kill9(victim);
        std::thread::sleep(rng.ms(2000, 5000));
        cluster.restart(victim);
        let out = producer.join().expect("producer thread");
        assert!(
            out.success(),
            "seed {seed}: the transactional producer failed\n{out}"
        );
        let out = strom_tests::try_python(
            "transactions.py",
            &[
                "check",
                "--bootstrap",
                &cluster.bootstrap(),
                "--topics",
                &topics,
                "--history",
                history.to_str().expect("utf-8 path"),
            ],
            &[],
            Duration::from_secs(120),
        );
        assert!(
            out.success(),
            "seed {seed}: the history check failed\n{out}"
        );
        let summary = out.json();
        assert!(
            summary["committed"].as_u64() > Some(0) && summary["aborted"].as_u64() > Some(0),
            "seed {seed}: {summary}"
        );
        eprintln!("seed {seed}: {summary}");
    }
}

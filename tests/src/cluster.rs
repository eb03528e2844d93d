//! A cluster of real `strom serve` processes for fault tests: node `i` (1..=n)
//! listens on `127.A.B.i` (Kafka 9092, controller 9093, admin 9644) with a
//! fresh `A.B` per cluster, so clusters of parallel tests never collide.
//! Nodes are killed (SIGKILL), stopped (SIGTERM: controlled shutdown),
//! restarted on the same data, and cut off from each other with nftables
//! rules between their addresses (clients connect from 127.0.0.1 and are
//! not affected).

use crate::{signal, strom_bin, tail, wait_timeout, START_TIMEOUT, STOP_TIMEOUT};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Kafka listener port of every node (each node has its own address).
pub const KAFKA_PORT: u16 = 9092;
const CONTROLLER_PORT: u16 = 9093;
const ADMIN_PORT: u16 = 9644;

/// One node's process and files.
pub struct Node {
    pub id: i32,
    pub ip: String,
    config: PathBuf,
    stderr: PathBuf,
    child: Option<Child>,
    starts: usize,
}

/// A running cluster (see the module docs).
pub struct Cluster {
    work: tempfile::TempDir,
    pub nodes: Vec<Node>,
    /// nftables table of this cluster's cuts (created on first use).
    firewall: Option<String>,
}

static CLUSTERS: AtomicU32 = AtomicU32::new(0);

/// A `127.A.B.` prefix no other cluster of this process uses.
fn subnet() -> String {
    let n = CLUSTERS.fetch_add(1, Ordering::SeqCst);
    let salt = (std::process::id() % 200) + 20;
    format!("127.{}.{}.", salt, (n % 250) + 1)
}

/// Metadata of one partition as a real client (kcat) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Cluster {
    /// Starts `nodes` voters (every node is broker and controller) with
    /// `smp` shards each and `extra` TOML lines in every config, and waits
    /// until every broker is registered and unfenced.
    pub fn start(nodes: usize, smp: usize, extra: &str) -> Cluster {
        let work = tempfile::Builder::new()
            .prefix("strom-cluster-")
            .tempdir()
            .expect("tempdir");
        let prefix = subnet();
        let voters: Vec<String> = (1..=nodes)
            .map(|i| format!("{i}@{prefix}{i}:{CONTROLLER_PORT}"))
            .collect();
        let mut list = Vec::new();
        for i in 1..=nodes {
            let ip = format!("{prefix}{i}");
            let dir = work.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            let config = dir.join("strom.toml");
            let text = format!(
                "node.id = {i}\n\
                 listeners = \"PLAINTEXT://{ip}:{KAFKA_PORT},CONTROLLER://{ip}:{CONTROLLER_PORT}\"\n\
                 controller.quorum.voters = \"{}\"\n\
                 log.dirs = \"{}\"\n\
                 admin.listeners = \"http://{ip}:{ADMIN_PORT}\"\n\
                 strom.smp = {smp}\n\
                 {extra}\n",
                voters.join(","),
                dir.join("data").display(),
            );
            std::fs::write(&config, text).expect("write config");
            list.push(Node {
                id: i as i32,
                ip,
                config,
                stderr: dir.join("strom.stderr"),
                child: None,
                starts: 0,
            });
        }
        let mut cluster = Cluster {
            work,
            nodes: list,
            firewall: None,
        };
        let ids: Vec<i32> = cluster.nodes.iter().map(|n| n.id).collect();
        // Start all at once: none can do anything before a quorum is up.
        let waits: Vec<_> = ids.iter().map(|id| cluster.spawn(*id)).collect();
        for (id, wait) in ids.iter().zip(waits) {
            cluster.await_listening(*id, wait);
        }
        cluster.wait_brokers(nodes, Duration::from_secs(30));
        cluster
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// `host:port` of every node's Kafka listener.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}:{KAFKA_PORT}", n.ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port` of one node's Kafka listener.
    pub fn address(&self, id: i32) -> String {
        format!("{}:{KAFKA_PORT}", self.node(id).ip)
    }

    /// Starts a node's process; returns the channel its stdout lines arrive on.
    fn spawn(&mut self, id: i32) -> mpsc::Receiver<String> {
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} already running");
        node.starts += 1;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.stderr)
            .expect("stderr file");
        let mut child = Command::new(strom_bin())
            .arg("serve")
            .arg("--config")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start strom");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        node.child = Some(child);
        rx
    }

    fn await_listening(&mut self, id: i32, lines: mpsc::Receiver<String>) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) if line.starts_with("strom listening") => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "node {id} did not start within {START_TIMEOUT:?}\n--- stderr ---\n{}",
                    tail(&self.stderr(id), 80)
                ),
            }
        }
    }

    /// Starts a stopped or killed node again on its data.
    pub fn restart(&mut self, id: i32) {
        let lines = self.spawn(id);
        self.await_listening(id, lines);
    }

    /// SIGKILL.
    pub fn kill9(&mut self, id: i32) {
        let node = self.node_mut(id);
        let mut child = node.child.take().expect("node not running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// SIGTERM (controlled shutdown) and wait for a clean exit.
    pub fn stop(&mut self, id: i32) {
        let node = self.node_mut(id);
        let mut child = node.child.take().expect("node not running");
        signal(child.id(), "TERM");
        match wait_timeout(&mut child, STOP_TIMEOUT + Duration::from_secs(30)) {
            Some(status) => assert!(
                status.success(),
                "node {id} exited with {status} after SIGTERM\n{}",
                tail(&self.stderr(id), 60)
            ),
            None => {
                // What the node logged after the signal, and where its
                // threads wait, tell why it hung.
                let stacks = crate::thread_stacks(child.id());
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {id} did not stop after SIGTERM\n{}\n--- threads ---\n{stacks}",
                    tail(&self.stderr(id), 60)
                );
            }
        }
    }

    /// Nodes whose process runs.
    pub fn running(&mut self) -> Vec<i32> {
        self.nodes
            .iter_mut()
            .filter_map(|n| {
                let alive = n
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_none());
                alive.then_some(n.id)
            })
            .collect()
    }

    /// Everything a node wrote on stderr (all starts).
    pub fn stderr(&self, id: i32) -> String {
        std::fs::read_to_string(&self.node(id).stderr).unwrap_or_default()
    }

    /// Metadata from one running node (kcat -L -J), or None if it does not answer.
    pub fn metadata_from(&self, id: i32) -> Option<Value> {
        let out = crate::try_kcat(&["-b", &self.address(id), "-L", "-J", "-m", "3"], None);
        if !out.success() {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    /// Metadata from the first running node that answers.
    pub fn metadata(&mut self) -> Option<Value> {
        for id in self.running() {
            if let Some(m) = self.metadata_from(id) {
                return Some(m);
            }
        }
        None
    }

    /// A partition's leader, replicas and ISR as a running node reports it.
    pub fn partition(&mut self, topic: &str, partition: i32) -> Option<PartitionInfo> {
        let metadata = self.metadata()?;
        let topic = metadata["topics"]
            .as_array()?
            .iter()
            .find(|t| t["topic"] == topic)?;
        let p = topic["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["partition"] == partition)?;
        let ids = |v: &Value| -> Vec<i32> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["id"].as_i64().map(|i| i as i32))
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(PartitionInfo {
            leader: p["leader"].as_i64().unwrap_or(-1) as i32,
            replicas: ids(&p["replicas"]),
            isr: ids(&p["isrs"]),
        })
    }

    /// The active controller as `strom cluster info` reports it from `id`.
    pub fn controller_from(&self, id: i32) -> Option<i32> {
        let mut cmd = Command::new(strom_bin());
        cmd.args([
            "cluster",
            "info",
            "--brokers",
            &self.address(id),
            "--format",
            "json",
            "--timeout",
            "3",
        ]);
        let out = crate::run_command(cmd, None, Duration::from_secs(10));
        if !out.success() {
            return None;
        }
        let info: Value = serde_json::from_str(out.stdout.trim()).ok()?;
        info["controller_id"]
            .as_i64()
            .map(|c| c as i32)
            .filter(|c| *c >= 0)
    }

    /// Brokers the metadata lists (registered and unfenced).
    pub fn live_brokers(&mut self) -> Vec<i32> {
        let Some(metadata) = self.metadata() else {
            return Vec::new();
        };
        let mut ids: Vec<i32> = metadata["brokers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| b["id"].as_i64().map(|i| i as i32))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// Waits until every running node lists `count` live brokers.
    pub fn wait_brokers(&mut self, count: usize, timeout: Duration) {
        let what = format!("{count} live brokers on every node");
        self.wait_until(&what, timeout, |c| {
            let running = c.running();
            running
                .iter()
                .all(|id| {
                    c.metadata_from(*id)
                        .is_some_and(|m| m["brokers"].as_array().map_or(0, Vec::len) == count)
                })
                .then_some(())
        });
    }

    /// Polls `check` every 100 ms until it returns Some, or panics after
    /// `timeout` naming `what` (with the nodes' stderr tails).
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut Cluster) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if Instant::now() >= deadline {
                let logs: String = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- node {} ---\n{}\n", n.id, tail(&self.stderr(n.id), 40)))
                    .collect();
                panic!("timed out after {timeout:?} waiting for {what}\n{logs}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn nft(&self, args: &[&str]) {
        let out = Command::new("nft").args(args).output().expect("run nft");
        assert!(
            out.status.success(),
            "nft {args:?} failed: {} (fault tests need root and nftables: see tests/README.md)",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Drops every packet between node `id` and the other nodes (both ways).
    pub fn isolate(&mut self, id: i32) {
        let table = self
            .firewall
            .get_or_insert_with(|| {
                format!(
                    "strom_{}_{}",
                    std::process::id(),
                    CLUSTERS.load(Ordering::SeqCst)
                )
            })
            .clone();
        self.nft(&["add", "table", "inet", &table]);
        self.nft(&[
            "add",
            "chain",
            "inet",
            &table,
            "cut",
            "{ type filter hook output priority 0; policy accept; }",
        ]);
        let ip = self.node(id).ip.clone();
        let others: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.id != id)
            .map(|n| n.ip.clone())
            .collect();
        for other in others {
            for (from, to) in [(&ip, &other), (&other, &ip)] {
                self.nft(&[
                    "add", "rule", "inet", &table, "cut", "ip", "saddr", from, "ip", "daddr", to,
                    "drop",
                ]);
            }
        }
    }

    /// Removes every cut.
    pub fn heal(&mut self) {
        if let Some(table) = self.firewall.take() {
            self.nft(&["delete", "table", "inet", &table]);
        }
    }

    /// A scratch directory that lives as long as the cluster.
    pub fn work_dir(&self) -> &std::path::Path {
        self.work.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(table) = self.firewall.take() {
            let _ = Command::new("nft")
                .args(["delete", "table", "inet", &table])
                .output();
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if thread::panicking() {
            for node in &self.nodes {
                eprintln!(
                    "--- node {} stderr ({} start(s)) ---\n{}",
                    node.id,
                    node.starts,
                    tail(
                        &std::fs::read_to_string(&node.stderr).unwrap_or_default(),
                        150
                    )
                );
            }
        }
    }
}

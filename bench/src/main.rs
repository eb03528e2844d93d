//! `strom-bench`: a Kafka-protocol load generator and machine baselines.
//!
//! - `run WORKLOAD`: an OpenMessaging-style workload (`bench/workloads/*.toml`)
//!   against any Kafka-compatible broker: producer and consumer tasks on
//!   glommio executors pinned to cores, produce and end-to-end latency
//!   percentiles (from the intended send time, so coordinated omission does
//!   not hide stalls), throughput, the broker's CPU time per million
//!   messages; a JSON result, a summary, an SVG plot.
//! - `compare --a B1 --b B2 WORKLOAD`: the same workload against two brokers,
//!   A B A B over rounds, ratio per figure with its spread.
//! - `baseline tcp` / `baseline disk`: raw loopback TCP throughput and raw
//!   `pwrite`/`fdatasync` figures of this host, to read results against.
//! - `storage`: the partition log next to the raw file system.

mod admin;
mod batch;
mod compare;
mod connect;
mod consumer;
mod error;
mod host;
mod producer;
mod report;
mod runner;
mod schedule;
mod shared;
mod stats;
mod storage;
mod workload;

use clap::{Args, Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workload::{parse_key_value, Acks, Overrides, Workload};

#[derive(Parser)]
#[command(
    name = "strom-bench",
    version,
    about = "Kafka-protocol load generator and machine baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workload against one broker.
    Run {
        /// A workload file, or the name of one in bench/workloads/.
        workload: String,
        /// host:port of a broker.
        #[arg(long, default_value = "127.0.0.1:9092")]
        bootstrap: String,
        /// pid of the broker, when it runs on this machine (for its CPU time).
        #[arg(long)]
        broker_pid: Option<u32>,
        /// Write the JSON result here (default: printed after the summary).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write a latency plot here.
        #[arg(long)]
        svg: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Run a workload against two brokers in turn, A B A B, and compare.
    Compare {
        /// A workload file, or the name of one in bench/workloads/.
        workload: String,
        /// host:port of broker A.
        #[arg(long)]
        a: String,
        /// host:port of broker B.
        #[arg(long)]
        b: String,
        /// Names to print for A and B.
        #[arg(long, default_value = "A")]
        a_name: String,
        #[arg(long, default_value = "B")]
        b_name: String,
        #[arg(long)]
        a_pid: Option<u32>,
        #[arg(long)]
        b_pid: Option<u32>,
        /// Topic configs for A's topics only (key=value, repeatable), e.g.
        /// Strom's write.caching.
        #[arg(long = "a-topic-config", value_parser = parse_key_value)]
        a_topic_config: Vec<(String, String)>,
        /// Topic configs for B's topics only.
        #[arg(long = "b-topic-config", value_parser = parse_key_value)]
        b_topic_config: Vec<(String, String)>,
        /// Rounds (each runs A then B).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds to pause between runs.
        #[arg(long, default_value_t = 2)]
        pause_s: u64,
        /// Write the JSON comparison (every run included) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write a plot of every run's latency curves here.
        #[arg(long)]
        svg: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Raw capabilities of this host, measured the same way every time.
    Baseline {
        #[command(subcommand)]
        what: Baseline,
    },
    /// The storage engine (one partition log) against the raw file system.
    Storage {
        #[command(flatten)]
        disk: DiskArgs,
    },
}

/// Settings shared by `run` and `compare`: where the generator runs, and
/// changes to the workload.
#[derive(Args, Clone)]
struct CommonArgs {
    /// Cores for the generator's executors, e.g. 0,1 (default: every core
    /// this process may use). One pinned executor per core.
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
    /// Producers stop after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Producers stop after this many messages in total.
    #[arg(long)]
    messages: Option<u64>,
    /// Total producer rate, messages/s (0 = unlimited).
    #[arg(long)]
    rate: Option<f64>,
    /// Total producer rate, MB/s.
    #[arg(long)]
    rate_mb: Option<f64>,
    /// 0, 1 or all.
    #[arg(long, value_parser = parse_acks)]
    acks: Option<Acks>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, value_parser = parse_codec)]
    compression: Option<batch::Codec>,
    /// Messages produced before consumers start (catch-up test).
    #[arg(long)]
    backlog: Option<u64>,
    /// Seconds of latency samples to leave out at the start.
    #[arg(long)]
    warmup: Option<u64>,
    /// Topic config key=value (repeatable), e.g. write.caching=true.
    #[arg(long = "topic-config", value_parser = parse_key_value)]
    topic_config: Vec<(String, String)>,
    /// Keep the topic after the run (default: delete it).
    #[arg(long)]
    keep_topic: bool,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Clone)]
struct DiskArgs {
    /// Directory to write in (on the disk to measure).
    #[arg(long, default_value = "./strom-bench-data")]
    dir: PathBuf,
    /// Bytes per append (one record batch of 1 KiB records).
    #[arg(long, default_value_t = 16384)]
    batch_bytes: usize,
    /// Megabytes written in the throughput phase.
    #[arg(long, default_value_t = 1024)]
    total_mb: u64,
    /// Appends each followed by a sync, for the latency percentiles.
    #[arg(long, default_value_t = 2000)]
    sync_samples: u64,
}

impl DiskArgs {
    fn bench(&self) -> storage::StorageBench {
        storage::StorageBench {
            batch_bytes: self.batch_bytes.clamp(1024, 1 << 24),
            total_bytes: self.total_mb.clamp(1, 1 << 20) * 1_000_000,
            sync_samples: self.sync_samples.clamp(1, 1_000_000),
        }
    }
}

#[derive(Subcommand)]
enum Baseline {
    /// Loopback TCP throughput: one pinned sender thread, one pinned receiver thread.
    Tcp {
        /// How long to send.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Bytes per write call.
        #[arg(long, default_value_t = 65536)]
        chunk_bytes: usize,
    },
    /// Raw disk: sequential pwrite throughput and pwrite+fdatasync latency.
    Disk {
        #[command(flatten)]
        disk: DiskArgs,
    },
}

fn parse_acks(text: &str) -> Result<Acks, String> {
    Acks::parse(text).ok_or_else(|| format!("{text:?}: acks are 0, 1 or all"))
}

fn parse_codec(text: &str) -> Result<batch::Codec, String> {
    batch::Codec::parse(text).ok_or_else(|| format!("{text:?}: none, gzip, snappy, lz4 or zstd"))
}

fn fail(what: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("strom-bench: {what}: {err}");
    std::process::exit(1);
}

/// A workload file path, or a name in the shipped workloads directory.
fn find_workload(name: &str) -> PathBuf {
    let path = PathBuf::from(name);
    if path.exists() {
        return path;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads")
        .join(format!("{name}.toml"));
    if shipped.exists() {
        shipped
    } else {
        path
    }
}

fn load_workload(name: &str, common: &CommonArgs, extra_config: &[(String, String)]) -> Workload {
    let path = find_workload(name);
    let mut workload = Workload::load(&path).unwrap_or_else(|e| fail("workload", e));
    let mut topic_config = common.topic_config.clone();
    topic_config.extend(extra_config.iter().cloned());
    let overrides = Overrides {
        duration_s: common.duration,
        messages: common.messages,
        rate_msgs_per_s: common.rate,
        rate_mb_per_s: common.rate_mb,
        acks: common.acks,
        compression: common.compression,
        backlog_messages: common.backlog,
        warmup_s: common.warmup,
        topic_config,
    };
    workload
        .apply(&overrides)
        .unwrap_or_else(|e| fail(&format!("workload {}", path.display()), e));
    workload
}

fn run_options(common: &CommonArgs, bootstrap: &str, pid: Option<u32>) -> runner::RunOptions {
    let usable = runner::default_cpus();
    let cpus = if common.cpus.is_empty() {
        usable
    } else {
        if let Some(bad) = common.cpus.iter().find(|c| !usable.contains(c)) {
            fail(
                "--cpus",
                format!("core {bad} is not one this process may use ({usable:?})"),
            );
        }
        common.cpus.clone()
    };
    runner::RunOptions {
        bootstrap: bootstrap.to_string(),
        cpus,
        broker_pid: pid,
        keep_topic: common.keep_topic,
        label: None,
        progress: !common.quiet,
    }
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| fail(&path.display().to_string(), e));
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            workload,
            bootstrap,
            broker_pid,
            out,
            svg,
            common,
        } => {
            let w = load_workload(&workload, &common, &[]);
            let opts = run_options(&common, &bootstrap, broker_pid);
            let report = runner::run(&w, &opts).unwrap_or_else(|e| fail("run", e));
            print!("{}", report::summary(&report));
            // A file gets indented JSON; stdout one line, last, for scripts.
            let json = match out {
                Some(_) => serde_json::to_string_pretty(&report),
                None => serde_json::to_string(&report),
            }
            .unwrap_or_else(|e| fail("encoding the result", e));
            match out {
                Some(path) => write_file(&path, &json),
                None => println!("{json}"),
            }
            if let Some(path) = svg {
                let title = format!("{} against {} ({})", w.name, bootstrap, report.started_at);
                let plot = report::svg(
                    &title,
                    &[
                        ("produce latency", &report.curves.produce),
                        ("end-to-end latency", &report.curves.e2e),
                    ],
                );
                write_file(&path, &plot);
            }
            if !report.verification.complete {
                std::process::exit(2);
            }
        }
        Command::Compare {
            workload,
            a,
            b,
            a_name,
            b_name,
            a_pid,
            b_pid,
            a_topic_config,
            b_topic_config,
            rounds,
            pause_s,
            out,
            svg,
            common,
        } => {
            let mut opts_a = run_options(&common, &a, a_pid);
            opts_a.label = Some(a_name.clone());
            let mut opts_b = run_options(&common, &b, b_pid);
            opts_b.label = Some(b_name.clone());
            let options = compare::CompareOptions {
                workload_a: load_workload(&workload, &common, &a_topic_config),
                workload_b: load_workload(&workload, &common, &b_topic_config),
                a: opts_a,
                b: opts_b,
                rounds: rounds.clamp(1, compare::ROUNDS_MAX),
                pause: Duration::from_secs(pause_s.min(60)),
            };
            let report = compare::run(&options).unwrap_or_else(|e| fail("compare", e));
            print!("{}", compare::table(&report, &a_name, &b_name));
            if let Some(path) = out {
                let json = serde_json::to_string_pretty(&report)
                    .unwrap_or_else(|e| fail("encoding the result", e));
                write_file(&path, &json);
            }
            if let Some(path) = svg {
                let names: Vec<(String, String)> = (1..=report.rounds.len())
                    .map(|i| (format!("{a_name} #{i}"), format!("{b_name} #{i}")))
                    .collect();
                let mut series: Vec<(&str, &[(f64, u64)])> = Vec::new();
                for ((ra, rb), (na, nb)) in report.rounds.iter().zip(&names) {
                    series.push((na.as_str(), &ra.curves.produce));
                    series.push((nb.as_str(), &rb.curves.produce));
                }
                let title = format!(
                    "{}: produce latency, {a_name} vs {b_name}",
                    options.workload_a.name
                );
                write_file(&path, &report::svg(&title, &series));
            }
        }
        Command::Storage { disk } => match storage::run(&disk.dir, &disk.bench()) {
            Ok(report) => println!("{report}"),
            Err(err) => fail("storage benchmark failed", err),
        },
        Command::Baseline {
            what: Baseline::Disk { disk },
        } => match storage::raw_disk(&disk.dir, &disk.bench()) {
            Ok(report) => println!("{report}"),
            Err(err) => fail("disk baseline failed", err),
        },
        Command::Baseline {
            what:
                Baseline::Tcp {
                    seconds,
                    chunk_bytes,
                },
        } => match tcp_baseline(
            Duration::from_secs(seconds.clamp(1, 600)),
            chunk_bytes.clamp(1, 1 << 24),
        ) {
            Ok(report) => println!("{report}"),
            Err(err) => fail("loopback baseline failed", err),
        },
    }
}

/// Sends for `duration` over 127.0.0.1 and reports bytes/s as JSON.
fn tcp_baseline(duration: Duration, chunk_bytes: usize) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let receiver_core = cores.first().copied();
    let sender_core = cores.get(1).copied().or(receiver_core);
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        if let Some(core) = receiver_core {
            core_affinity::set_for_current(core);
        }
        let (mut conn, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    if let Some(core) = sender_core {
        core_affinity::set_for_current(core);
    }
    let mut conn = TcpStream::connect(addr)?;
    conn.set_nodelay(true)?;
    let chunk = vec![0x5au8; chunk_bytes];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        conn.write_all(&chunk)?;
        sent += chunk_bytes as u64;
    }
    drop(conn);
    let received = receiver
        .join()
        .map_err(|_| std::io::Error::other("receiver thread panicked"))??;
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(sent, received, "loopback lost bytes");
    Ok(serde_json::json!({
        "baseline": "loopback_tcp",
        "chunk_bytes": chunk_bytes,
        "seconds": seconds,
        "bytes": received,
        "mb_per_s": received as f64 / seconds / 1e6,
    })
    .to_string())
}

//! `strom-bench`: machine baselines to read broker figures against.
//!
//! `baseline tcp` measures raw loopback TCP throughput between two pinned
//! threads; `storage` measures the partition log's append throughput and
//! synced append latency next to raw `pwrite` / `pwrite`+`fdatasync` on the
//! same file system, in the same run.
//! Broker workloads (OpenMessaging-style producers/consumers on the strom-net
//! client) come next; until then `bench/produce_perf.py` drives brokers with
//! librdkafka.

mod storage;

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "strom-bench",
    version,
    about = "Strom load generator and machine baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Raw capabilities of this host, measured the same way every time.
    Baseline {
        #[command(subcommand)]
        what: Baseline,
    },
    /// The storage engine (one partition log) against the raw file system.
    Storage {
        /// Directory to write in (on the disk to measure).
        #[arg(long, default_value = "./strom-bench-data")]
        dir: std::path::PathBuf,
        /// Bytes per append (one record batch of 1 KiB records).
        #[arg(long, default_value_t = 16384)]
        batch_bytes: usize,
        /// Megabytes written in the throughput phase.
        #[arg(long, default_value_t = 1024)]
        total_mb: u64,
        /// Appends each followed by a sync, for the latency percentiles.
        #[arg(long, default_value_t = 2000)]
        sync_samples: u64,
    },
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
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Storage {
            dir,
            batch_bytes,
            total_mb,
            sync_samples,
        } => {
            let bench = storage::StorageBench {
                batch_bytes: batch_bytes.clamp(1024, 1 << 24),
                total_bytes: total_mb.clamp(1, 1 << 20) * 1_000_000,
                sync_samples: sync_samples.clamp(1, 1_000_000),
            };
            match storage::run(&dir, &bench) {
                Ok(report) => println!("{report}"),
                Err(err) => {
                    eprintln!("strom-bench: storage benchmark failed: {err}");
                    std::process::exit(1);
                }
            }
        }
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
            Err(err) => {
                eprintln!("strom-bench: loopback baseline failed: {err}");
                std::process::exit(1);
            }
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

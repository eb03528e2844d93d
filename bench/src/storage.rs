//! `strom-bench storage`: the partition log's append throughput and synced
//! append latency, next to the same file system's raw figures measured in the
//! same run (sequential `pwrite`, and `pwrite` + `fdatasync`).

use hdrhistogram::Histogram;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use strom_storage::batch::{encode_simple_batch, validate_batches};
use strom_storage::durability::OsSync;
use strom_storage::log::{LogConfig, PartitionLog};

pub struct StorageBench {
    /// Bytes of one append (one record batch of 1 KiB records).
    pub batch_bytes: usize,
    /// Bytes written in the throughput phase.
    pub total_bytes: u64,
    /// Appends in the synced-latency phase.
    pub sync_samples: u64,
}

struct Figures {
    mb_per_s: f64,
    mb_per_s_synced: f64,
    latency_us: Histogram<u64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One batch of 1 KiB records, about `batch_bytes` long.
fn sample_batch(batch_bytes: usize) -> Vec<u8> {
    let value = vec![0x5a_u8; 1024];
    let records = (batch_bytes / 1024).max(1);
    let values: Vec<&[u8]> = (0..records).map(|_| value.as_slice()).collect();
    encode_simple_batch(0, now_ms(), &values)
}

fn raw(dir: &Path, batch: &[u8], bench: &StorageBench) -> std::io::Result<Figures> {
    let path = dir.join("raw.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let appends = (bench.total_bytes / batch.len() as u64).max(1);
    let start = Instant::now();
    let mut at = 0u64;
    for _ in 0..appends {
        file.write_all_at(batch, at)?;
        at += batch.len() as u64;
    }
    let buffered = start.elapsed().as_secs_f64();
    file.sync_data()?;
    let synced = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    let bytes = (appends * batch.len() as u64) as f64;
    Ok(Figures {
        mb_per_s: bytes / buffered / 1e6,
        mb_per_s_synced: bytes / synced / 1e6,
        latency_us: histogram(),
    })
}

fn strom(dir: &Path, batch: &[u8], bench: &StorageBench) -> Result<Figures, String> {
    let log_dir = dir.join("bench-0");
    let _ = std::fs::remove_dir_all(&log_dir);
    let config = LogConfig {
        retention_ms: -1,
        ..LogConfig::default()
    };
    let (mut log, _) = PartitionLog::open_with(&log_dir, config, now_ms(), Arc::new(OsSync))
        .map_err(|e| e.to_string())?;
    let headers = validate_batches(batch).map_err(|e| e.to_string())?;
    let mut buf = batch.to_vec();
    let appends = (bench.total_bytes / batch.len() as u64).max(1);
    let start = Instant::now();
    for _ in 0..appends {
        // The broker copies each produced batch once too (offsets are
        // assigned in place).
        buf.copy_from_slice(batch);
        log.append(&mut buf, &headers, 0, None, now_ms())
            .map_err(|e| e.to_string())?;
    }
    let buffered = start.elapsed().as_secs_f64();
    log.sync_now().map_err(|e| e.to_string())?;
    let synced = start.elapsed().as_secs_f64();
    drop(log);
    std::fs::remove_dir_all(&log_dir).map_err(|e| e.to_string())?;
    let bytes = (appends * batch.len() as u64) as f64;
    Ok(Figures {
        mb_per_s: bytes / buffered / 1e6,
        mb_per_s_synced: bytes / synced / 1e6,
        latency_us: histogram(),
    })
}

/// Synced append latency, raw and through the log, sample by sample in
/// turn, so that a change of the disk's mood hits both alike.
fn latencies(
    dir: &Path,
    batch: &[u8],
    bench: &StorageBench,
) -> Result<(Histogram<u64>, Histogram<u64>), String> {
    let path = dir.join("raw-sync.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| e.to_string())?;
    let log_dir = dir.join("bench-sync-0");
    let _ = std::fs::remove_dir_all(&log_dir);
    let (mut log, _) =
        PartitionLog::open_with(&log_dir, LogConfig::default(), now_ms(), Arc::new(OsSync))
            .map_err(|e| e.to_string())?;
    let headers = validate_batches(batch).map_err(|e| e.to_string())?;
    let mut buf = batch.to_vec();
    let (mut raw_us, mut strom_us) = (histogram(), histogram());
    let mut at = 0u64;
    for _ in 0..bench.sync_samples {
        let _ =
            raw_us.record(write_and_sync(&file, batch, at).map_err(|e| format!("raw disk: {e}"))?);
        at += batch.len() as u64;
        let t = Instant::now();
        buf.copy_from_slice(batch);
        log.append(&mut buf, &headers, 0, None, now_ms())
            .map_err(|e| e.to_string())?;
        log.sync_now().map_err(|e| e.to_string())?;
        let _ = strom_us.record(t.elapsed().as_micros().max(1) as u64);
    }
    drop(file);
    drop(log);
    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&log_dir).map_err(|e| e.to_string())?;
    Ok((raw_us, strom_us))
}

/// One `pwrite` of `batch` at `at` followed by `fdatasync`; returns the µs
/// both took (at least 1).
fn write_and_sync(file: &std::fs::File, batch: &[u8], at: u64) -> std::io::Result<u64> {
    let t = Instant::now();
    file.write_all_at(batch, at)?;
    file.sync_data()?;
    Ok(t.elapsed().as_micros().max(1) as u64)
}

/// The raw file system alone (`strom-bench baseline disk`): sequential
/// `pwrite` throughput (twice, mean) and `pwrite` + `fdatasync` latency, the
/// same measurements `run` makes next to the partition log.
pub fn raw_disk(dir: &Path, bench: &StorageBench) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let batch = sample_batch(bench.batch_bytes);
    let first = raw(dir, &batch, bench).map_err(|e| format!("raw disk: {e}"))?;
    let second = raw(dir, &batch, bench).map_err(|e| format!("raw disk: {e}"))?;
    let path = dir.join("raw-sync.bin");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut latency_us = histogram();
    let mut at = 0u64;
    for _ in 0..bench.sync_samples {
        let us = write_and_sync(&file, &batch, at).map_err(|e| format!("raw disk: {e}"))?;
        let _ = latency_us.record(us);
        at += batch.len() as u64;
    }
    drop(file);
    std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    let figures = Figures {
        mb_per_s: (first.mb_per_s + second.mb_per_s) / 2.0,
        mb_per_s_synced: (first.mb_per_s_synced + second.mb_per_s_synced) / 2.0,
        latency_us,
    };
    Ok(format!(
        "{{\"baseline\": \"disk\", \"workload\": \"{} MB in {} B pwrites twice, then {} pwrites each followed by fdatasync, in {}\", \"raw\": {}}}",
        bench.total_bytes / 1_000_000,
        batch.len(),
        bench.sync_samples,
        dir.display(),
        json(&figures)
    ))
}

fn json(f: &Figures) -> String {
    let q = |p: f64| f.latency_us.value_at_quantile(p);
    format!(
        "{{\"append_mb_per_s\": {:.1}, \"append_then_one_sync_mb_per_s\": {:.1}, \"synced_append_latency_us\": {{\"p50\": {}, \"p99\": {}, \"p99_9\": {}, \"max\": {}}}}}",
        f.mb_per_s,
        f.mb_per_s_synced,
        q(0.5),
        q(0.99),
        q(0.999),
        f.latency_us.max()
    )
}

/// Runs both measurements in `dir` and returns one JSON object.
pub fn run(dir: &Path, bench: &StorageBench) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let batch = sample_batch(bench.batch_bytes);
    // Throughput phases alternate (raw, log, raw, log) and each side keeps
    // its mean, so page-cache writeback left over from one phase does not
    // bias the other.
    let raw_a = raw(dir, &batch, bench).map_err(|e| format!("raw disk: {e}"))?;
    let strom_a = strom(dir, &batch, bench)?;
    let raw_b = raw(dir, &batch, bench).map_err(|e| format!("raw disk: {e}"))?;
    let strom_b = strom(dir, &batch, bench)?;
    let mean = |a: &Figures, b: &Figures| Figures {
        mb_per_s: (a.mb_per_s + b.mb_per_s) / 2.0,
        mb_per_s_synced: (a.mb_per_s_synced + b.mb_per_s_synced) / 2.0,
        latency_us: histogram(),
    };
    let mut raw = mean(&raw_a, &raw_b);
    let mut strom = mean(&strom_a, &strom_b);
    (raw.latency_us, strom.latency_us) = latencies(dir, &batch, bench)?;
    Ok(format!(
        "{{\"workload\": \"{} MB in {} B appends (1 KiB records), twice each alternating, then {} appends each followed by fdatasync, in {}\", \"raw\": {}, \"strom_log\": {}, \"append_throughput_ratio\": {:.2}, \"p99_latency_ratio\": {:.2}}}",
        bench.total_bytes / 1_000_000,
        batch.len(),
        bench.sync_samples,
        dir.display(),
        json(&raw),
        json(&strom),
        strom.mb_per_s / raw.mb_per_s,
        strom.latency_us.value_at_quantile(0.99) as f64 / raw.latency_us.value_at_quantile(0.99).max(1) as f64,
    ))
}

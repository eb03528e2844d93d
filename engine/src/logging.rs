//! Broker logs: `tracing` events with the shard id (each shard thread runs
//! inside a `shard{id=N}` span), as human text (colours on a terminal) or
//! one JSON object per line (`--log-format json`), filtered per module
//! (`strom.log.level`, or `STROM_LOG` which wins).
//!
//! Logging never blocks a shard: lines go through a bounded in-memory queue
//! to a writer thread (`tracing-appender`'s non-blocking writer); when the
//! queue is full, lines are dropped rather than stalling the reactor. Before
//! a fail-stop exit, [`exit`] flushes the queue so the line that says why is
//! written.

use std::io::IsTerminal;
use std::sync::Mutex;
use strom_tuning::config::LogFormat;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Lines the queue to the writer thread holds before dropping new ones.
const LOG_QUEUE_LINES_MAX: usize = 65_536;

static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the global subscriber. Errors name the bad filter directive.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = match std::env::var("STROM_LOG") {
        Ok(env) => EnvFilter::try_new(&env).map_err(|e| format!("STROM_LOG='{env}': {e}"))?,
        Err(_) => {
            EnvFilter::try_new(level).map_err(|e| format!("strom.log.level '{level}': {e}"))?
        }
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES_MAX)
        .lossy(true)
        .thread_name("strom-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
    .map_err(|e| e.to_string())?;
    if let Ok(mut slot) = GUARD.lock() {
        *slot = Some(guard);
    }
    Ok(())
}

/// Flushes queued log lines (waits for the writer thread).
pub fn flush() {
    if let Ok(mut slot) = GUARD.lock() {
        drop(slot.take());
    }
}

/// Fail-stop on a bug: from now on a panic on any thread (a shard, glommio's
/// blocking pool) prints where it happened, logs it, and stops the whole
/// process with `code`, instead of leaving the other shards serving with one
/// shard — its partitions, its coordinators, its end of the mesh — gone.
pub fn fail_stop_on_panic(code: i32) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(thread, "{info}; stopping the broker (fail-stop)");
        exit(code);
    }));
}

/// Flushes the logs, then exits with `code` (fail-stop paths).
pub fn exit(code: i32) -> ! {
    flush();
    std::process::exit(code)
}

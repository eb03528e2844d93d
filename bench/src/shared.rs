//! The little state a run's tasks share across executors: counters the
//! progress line and the consumers read, and the start and stop signals.
//! Everything else (histograms, batches, connections) stays on the task that
//! owns it and is handed back to the main thread when the executor ends.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `start_us` before the main thread has given the start signal.
pub const NOT_STARTED: u64 = u64::MAX;

pub struct Shared {
    /// Time zero of the run; every `*_us` is relative to it.
    pub epoch: Instant,
    /// Messages of each partition the broker accepted (acknowledged, or
    /// written for acks=0): what consumers must receive.
    pub produced: Vec<AtomicU64>,
    pub sent_total: AtomicU64,
    pub acked_total: AtomicU64,
    pub acked_bytes: AtomicU64,
    pub errors_total: AtomicU64,
    pub received_total: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Tasks that have connected and wait for the start signal.
    pub tasks_ready: AtomicU32,
    /// When producers start (µs), set once by the main thread.
    pub start_us: AtomicU64,
    pub producers_running: AtomicU32,
    /// When the last producer finished (µs); `NOT_STARTED` before.
    pub producers_done_us: AtomicU64,
    /// Consumers may start (always true without a backlog phase).
    pub consumers_go: AtomicBool,
    /// Executors whose tasks have all ended.
    pub executors_done: AtomicU32,
    /// Stop everything now (a task failed).
    pub abort: AtomicBool,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    pub fn new(partitions: usize, producers: u32, consumers_go: bool) -> Shared {
        Shared {
            epoch: Instant::now(),
            produced: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            sent_total: AtomicU64::new(0),
            acked_total: AtomicU64::new(0),
            acked_bytes: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            received_total: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            tasks_ready: AtomicU32::new(0),
            start_us: AtomicU64::new(NOT_STARTED),
            producers_running: AtomicU32::new(producers),
            producers_done_us: AtomicU64::new(NOT_STARTED),
            consumers_go: AtomicBool::new(consumers_go),
            executors_done: AtomicU32::new(0),
            abort: AtomicBool::new(false),
            first_error: Mutex::new(None),
        }
    }

    /// µs since the epoch.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Records the first failure and stops the run.
    pub fn fail(&self, message: String) {
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(message);
        }
        self.abort.store(true, Ordering::Release);
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    /// Called by each producer when it is done.
    pub fn producer_finished(&self) {
        if self.producers_running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.producers_done_us
                .store(self.now_us(), Ordering::Release);
        }
    }

    /// Waits (polling, on a glommio executor) for the start signal; returns
    /// the start time, or None if the run was aborted.
    pub async fn wait_for_start(&self) -> Option<u64> {
        self.tasks_ready.fetch_add(1, Ordering::AcqRel);
        loop {
            let start = self.start_us.load(Ordering::Acquire);
            if self.aborted() {
                return None;
            }
            if start != NOT_STARTED {
                let now = self.now_us();
                if now < start {
                    glommio::timer::sleep(Duration::from_micros(start - now)).await;
                }
                return Some(start);
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }
}

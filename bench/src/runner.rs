//! One run of a workload against one broker: create a fresh topic, start the
//! producer and consumer tasks on glommio executors pinned to the chosen
//! cores, watch progress from the main thread, then gather every task's
//! figures into a [`RunReport`].

use crate::admin::{self, TopicLayout};
use crate::batch::payload;
use crate::consumer::{self, ConsumerPlan, ConsumerResult};
use crate::error::BenchError;
use crate::host;
use crate::producer::{self, ProducerPlan, ProducerResult};
use crate::report::{
    curve, BacklogFigures, ConsumeFigures, CpuUse, Curves, ProduceFigures, RunReport, Verification,
    SCHEMA,
};
use crate::shared::{Shared, NOT_STARTED};
use crate::stats::{cpu_seconds_per_million, Latency, Throughput};
use crate::workload::Workload;
use glommio::{LocalExecutorBuilder, Placement};
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long every task may take to connect before the run is abandoned.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Producers start this long after the last task connected.
const START_DELAY: Duration = Duration::from_millis(20);
/// The main thread looks at the counters this often.
const MONITOR_TICK: Duration = Duration::from_millis(100);
/// glommio's registered I/O buffer per executor. The generator does no file
/// I/O, so this stays small (the default 10 MiB needs more locked memory
/// than many hosts allow).
const EXECUTOR_IO_MEMORY_BYTES: usize = 1 << 20;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub bootstrap: String,
    /// Cores to pin one executor each to.
    pub cpus: Vec<usize>,
    /// A local broker's pid, for its CPU time.
    pub broker_pid: Option<u32>,
    pub keep_topic: bool,
    /// `a`/`b` in a comparison.
    pub label: Option<String>,
    pub progress: bool,
}

/// The cores this process may use (all of them when the mask is unknown).
pub fn default_cpus() -> Vec<usize> {
    let ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        vec![0]
    } else {
        ids
    }
}

/// Runs `workload` once; errors only when the run could not take place
/// (setup failed). Failures during the run are in the report.
pub fn run(workload: &Workload, opts: &RunOptions) -> Result<RunReport, BenchError> {
    let started_at = host::iso8601(host::unix_seconds());
    let topic_name = format!(
        "strom-bench-{}-{}",
        workload.name,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let layout = {
        let bootstrap = opts.bootstrap.clone();
        let name = topic_name.clone();
        let partitions = workload.topic.partitions;
        let config = workload.topic.config.clone();
        on_executor(opts.cpus[0], move || async move {
            admin::create_topic(&bootstrap, &name, partitions, &config).await
        })??
    };
    let layout = Arc::new(layout);
    let p = &workload.producer;
    let c = &workload.consumer;
    let r = &workload.run;
    let shared = Arc::new(Shared::new(
        layout.partitions.len(),
        p.producers,
        r.backlog_messages == 0,
    ));
    let broker_pid = opts.broker_pid.map(|pid| pid.to_string());
    let broker_cpu_before = broker_pid.as_deref().and_then(host::cpu_seconds);
    let own_cpu_before = host::cpu_seconds("self");

    let payload = Arc::new(payload(p.message_bytes));
    let messages_each = |k: u32| -> u64 {
        if r.messages == 0 {
            return u64::MAX;
        }
        let n = u64::from(p.producers);
        r.messages / n + u64::from(u64::from(k) < r.messages % n)
    };
    let producer_plans: Vec<ProducerPlan> = (0..p.producers)
        .map(|k| ProducerPlan {
            id: k,
            producers: p.producers,
            topic: layout.clone(),
            spec: p.clone(),
            total_msgs_per_s: p.total_msgs_per_s(),
            messages: messages_each(k),
            duration: Duration::from_secs(r.duration_s),
            warmup: Duration::from_secs(r.warmup_s),
            payload: payload.clone(),
        })
        .collect();
    let consumer_plans: Vec<ConsumerPlan> = (0..c.consumers)
        .map(|j| ConsumerPlan {
            id: j,
            topic: layout.clone(),
            partitions: (0..layout.partitions.len())
                .filter(|part| *part as u32 % c.consumers == j)
                .collect(),
            spec: c.clone(),
            warmup: Duration::from_secs(r.warmup_s),
            drain_timeout: Duration::from_secs(r.drain_timeout_s),
        })
        .filter(|plan| !plan.partitions.is_empty())
        .collect();
    // Every producer, and every consumer once per leader it reads from,
    // connects and then waits for the start signal.
    let consumer_links: usize = consumer_plans
        .iter()
        .map(|plan| {
            let mut leaders: Vec<usize> = plan
                .partitions
                .iter()
                .map(|&part| layout.partitions[part].leader)
                .collect();
            leaders.sort_unstable();
            leaders.dedup();
            leaders.len()
        })
        .sum();
    let tasks = (producer_plans.len() + consumer_links) as u32;

    // One executor per core; tasks dealt round-robin, producers first.
    let executors = opts.cpus.len();
    let mut handles = Vec::with_capacity(executors);
    for (e, &cpu) in opts.cpus.iter().enumerate() {
        let mine_p: Vec<ProducerPlan> = producer_plans
            .iter()
            .filter(|plan| plan.id as usize % executors == e)
            .cloned()
            .collect();
        let mine_c: Vec<ConsumerPlan> = consumer_plans
            .iter()
            .filter(|plan| (plan.id as usize + producer_plans.len()) % executors == e)
            .cloned()
            .collect();
        let shared = shared.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("strom-bench-{e}"))
            .io_memory(EXECUTOR_IO_MEMORY_BYTES)
            .spawn(move || async move {
                let _done = ExecutorDone(shared.clone());
                let producers: Vec<_> = mine_p
                    .into_iter()
                    .map(|plan| glommio::spawn_local(producer::run(plan, shared.clone())))
                    .collect();
                let consumers: Vec<_> = mine_c
                    .into_iter()
                    .map(|plan| glommio::spawn_local(consumer::run(plan, shared.clone())))
                    .collect();
                let mut p_results = Vec::new();
                for t in producers {
                    p_results.push(t.await);
                }
                let mut c_results = Vec::new();
                for t in consumers {
                    c_results.push(t.await);
                }
                (p_results, c_results)
            })
            .map_err(|e| BenchError::Run(format!("starting an executor on core {cpu}: {e}")))?;
        handles.push(handle);
    }

    let monitor = monitor(workload, &shared, tasks, opts, executors as u32);
    let mut producer_results: Vec<ProducerResult> = Vec::new();
    let mut consumer_results: Vec<ConsumerResult> = Vec::new();
    for handle in handles {
        let (p_results, c_results) = handle
            .join()
            .map_err(|e| BenchError::Run(format!("an executor failed: {e}")))?;
        producer_results.extend(p_results);
        consumer_results.extend(c_results);
    }
    let broker_cpu = broker_pid.as_deref().and_then(|pid| {
        let after = host::cpu_seconds(pid)?;
        Some((pid.to_string(), after - broker_cpu_before?))
    });
    let own_cpu = host::cpu_seconds("self")
        .zip(own_cpu_before)
        .map(|(after, before)| ("self".to_string(), after - before));

    let mut errors = Vec::new();
    if let Some(e) = monitor.error {
        errors.push(e);
    }
    if let Some(e) = shared.first_error() {
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
    if !opts.keep_topic {
        let bootstrap = opts.bootstrap.clone();
        let name = topic_name.clone();
        let deleted = on_executor(opts.cpus[0], move || async move {
            admin::delete_topic(&bootstrap, &name).await
        });
        match deleted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("strom-bench: could not delete topic {topic_name}: {e}"),
            Err(e) => eprintln!("strom-bench: could not delete topic {topic_name}: {e}"),
        }
    }
    Ok(assemble(Assembly {
        workload,
        opts,
        topic: &layout,
        started_at,
        shared: &shared,
        producers: producer_results,
        consumers: consumer_results,
        catch_up: monitor.catch_up,
        broker_cpu,
        own_cpu,
        errors,
    }))
}

/// Runs one future on a fresh executor pinned to `cpu` and returns its output.
fn on_executor<F, Fut, T>(cpu: usize, make: F) -> Result<T, BenchError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name("strom-bench-admin")
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        .spawn(make)
        .map_err(|e| BenchError::Run(format!("starting an executor on core {cpu}: {e}")))?
        .join()
        .map_err(|e| BenchError::Run(format!("the admin executor failed: {e}")))
}

/// Counts an executor as finished when its work ends, panics included, so
/// the monitor never waits for an executor that is gone.
struct ExecutorDone(Arc<Shared>);

impl Drop for ExecutorDone {
    fn drop(&mut self) {
        self.0.executors_done.fetch_add(1, Ordering::AcqRel);
    }
}

struct MonitorOutcome {
    catch_up: Option<(u64, u64)>,
    error: Option<String>,
}

/// Gives the start signal, releases consumers after the backlog, notices the
/// catch-up, and prints progress, until every executor has finished.
fn monitor(
    workload: &Workload,
    shared: &Shared,
    tasks: u32,
    opts: &RunOptions,
    executors: u32,
) -> MonitorOutcome {
    let mut outcome = MonitorOutcome {
        catch_up: None,
        error: None,
    };
    let began = Instant::now();
    while shared.tasks_ready.load(Ordering::Acquire) < tasks && !shared.aborted() {
        if began.elapsed() > CONNECT_TIMEOUT {
            let message = format!(
                "only {} of {tasks} tasks connected within {} s",
                shared.tasks_ready.load(Ordering::Acquire),
                CONNECT_TIMEOUT.as_secs()
            );
            shared.fail(message.clone());
            outcome.error = Some(message);
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let start_us = shared.now_us() + START_DELAY.as_micros() as u64;
    shared.start_us.store(start_us, Ordering::Release);
    let backlog = workload.run.backlog_messages;
    let mut consumers_started: Option<(u64, u64)> = None; // (µs, received then)
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let mut last_print = Instant::now();
    let mut last_acked = 0u64;
    let mut last_bytes = 0u64;
    let mut last_at = Instant::now();
    while shared.executors_done.load(Ordering::Acquire) < executors {
        std::thread::sleep(MONITOR_TICK);
        let acked = shared.acked_total.load(Ordering::Acquire);
        let received = shared.received_total.load(Ordering::Acquire);
        if backlog > 0 && !shared.consumers_go.load(Ordering::Acquire) {
            let producers_done = shared.producers_done_us.load(Ordering::Acquire) != NOT_STARTED;
            if acked >= backlog || producers_done {
                shared.consumers_go.store(true, Ordering::Release);
                consumers_started = Some((shared.now_us(), received));
            }
        }
        if let (Some((since, _)), None) = (consumers_started, outcome.catch_up) {
            if received >= acked && acked > 0 {
                let took = shared.now_us().saturating_sub(since);
                outcome.catch_up = Some((took, received));
            }
        }
        if opts.progress && last_print.elapsed() >= every {
            let bytes = shared.acked_bytes.load(Ordering::Acquire);
            let dt = last_at.elapsed().as_secs_f64().max(1e-6);
            let line = format!(
                "{}[{:>4.0}/{} s] acked {} ({:.0} msgs/s, {:.1} MB/s) received {} lag {} errors {}",
                opts.label
                    .as_ref()
                    .map(|l| format!("{l} "))
                    .unwrap_or_default(),
                shared.now_us().saturating_sub(start_us) as f64 / 1e6,
                workload.run.duration_s,
                acked,
                (acked - last_acked) as f64 / dt,
                (bytes - last_bytes) as f64 / dt / 1e6,
                received,
                acked.saturating_sub(received),
                shared.errors_total.load(Ordering::Acquire),
            );
            let mut err = std::io::stderr().lock();
            let _ = if tty {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
            last_print = Instant::now();
            last_acked = acked;
            last_bytes = bytes;
            last_at = Instant::now();
        }
    }
    if opts.progress && tty {
        eprintln!();
    }
    outcome
}

struct Assembly<'a> {
    workload: &'a Workload,
    opts: &'a RunOptions,
    topic: &'a TopicLayout,
    started_at: String,
    shared: &'a Shared,
    producers: Vec<ProducerResult>,
    consumers: Vec<ConsumerResult>,
    catch_up: Option<(u64, u64)>,
    broker_cpu: Option<(String, f64)>,
    own_cpu: Option<(String, f64)>,
    errors: Vec<String>,
}

fn assemble(a: Assembly) -> RunReport {
    let w = a.workload;
    let start_us = a.shared.start_us.load(Ordering::Acquire);
    let mut produce_latency = Latency::default();
    let (mut sent, mut acked, mut acked_bytes, mut errors, mut last_ack) = (0, 0, 0, 0, start_us);
    let mut messages = a.errors;
    for p in &a.producers {
        produce_latency.merge(&p.latency);
        sent += p.sent;
        acked += p.acked;
        acked_bytes += p.acked_bytes;
        errors += p.errors;
        last_ack = last_ack.max(p.last_ack_us);
        for m in &p.error_messages {
            if !messages.contains(m) {
                messages.push(m.clone());
            }
        }
    }
    let produce_seconds = last_ack.saturating_sub(start_us) as f64 / 1e6;
    let produce = ProduceFigures {
        throughput: Throughput::new(acked, acked_bytes, produce_seconds),
        latency_us: produce_latency.percentiles(),
        sent,
        acked,
        errors,
    };
    let partitions = a.topic.partitions.len();
    let produced: Vec<u64> = a
        .shared
        .produced
        .iter()
        .map(|n| n.load(Ordering::Acquire))
        .collect();
    let mut received = vec![0u64; partitions];
    let mut e2e = Latency::default();
    let (mut bytes, mut gaps, mut first, mut last) = (0u64, 0u64, u64::MAX, 0u64);
    let (mut fetches, mut empty_fetches) = (0u64, 0u64);
    for c in &a.consumers {
        for &(p, n) in &c.received {
            received[p] += n;
        }
        e2e.merge(&c.latency);
        bytes += c.bytes;
        gaps += c.gaps;
        fetches += c.fetches;
        empty_fetches += c.empty_fetches;
        if let Some(f) = c.first_receive_us {
            first = first.min(f);
        }
        last = last.max(c.last_receive_us);
        for m in &c.error_messages {
            if !messages.contains(m) {
                messages.push(m.clone());
            }
        }
    }
    let has_consumers = !a.consumers.is_empty();
    let mut verification = if has_consumers {
        Verification::check(&produced, &received, gaps)
    } else {
        Verification {
            produced: produced.iter().sum(),
            ..Verification::default()
        }
    };
    verification.complete &= messages.is_empty() && errors == 0;
    if !has_consumers {
        verification.complete = messages.is_empty() && errors == 0;
    }
    let total_received: u64 = received.iter().sum();
    let consume = has_consumers.then(|| {
        let began = if first == u64::MAX {
            start_us
        } else {
            first.min(last)
        };
        // Consumers began when allowed to; the first receipt is a fine
        // stand-in for that (it is at most one fetch wait later).
        let window = last.saturating_sub(began.max(start_us)) as f64 / 1e6;
        ConsumeFigures {
            throughput: Throughput::new(total_received, bytes, window),
            e2e_latency_us: e2e.percentiles(),
            fetches,
            empty_fetches,
        }
    });
    let backlog = (w.run.backlog_messages > 0).then(|| BacklogFigures {
        backlog_messages: w.run.backlog_messages,
        catch_up_s: a.catch_up.map(|(us, _)| us as f64 / 1e6),
        catch_up_msgs_per_s: a
            .catch_up
            .filter(|(us, _)| *us > 0)
            .map(|(us, n)| n as f64 / (us as f64 / 1e6)),
    });
    let cpu = |c: Option<(String, f64)>| {
        c.map(|(pid, seconds)| CpuUse {
            pid,
            cpu_seconds: seconds,
            cpu_seconds_per_million_messages: cpu_seconds_per_million(seconds, acked),
        })
    };
    RunReport {
        schema: SCHEMA,
        workload: w.clone(),
        label: a.opts.label.clone(),
        bootstrap: a.opts.bootstrap.clone(),
        topic: a.topic.name.clone(),
        started_at: a.started_at,
        machine: host::machine(),
        generator_cpus: a.opts.cpus.clone(),
        produce,
        consume,
        verification,
        backlog,
        broker_cpu: cpu(a.broker_cpu),
        generator_cpu: cpu(a.own_cpu),
        errors: messages,
        curves: Curves {
            produce: curve(&produce_latency),
            e2e: curve(&e2e),
        },
    }
}

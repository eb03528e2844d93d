//! Start-up and shutdown: one glommio executor per shard, pinned to its core, a
//! channel mesh between them, and a SO_REUSEPORT listener on every shard.

use crate::kafka::connection;
use crate::metadata::TopicTable;
use crate::runtime::mesh::Task;
use crate::runtime::uring::probe_bind;
use crate::shard::Shard;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use std::fs;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use strom_tuning::config::BrokerConfig;
pub use strom_tuning::host::OPEN_FILES_RECOMMENDED_MIN;
use strom_tuning::host::{self, Check, HostFacts, Raise, Rlimit, Verdict, Wanted};
use strom_tuning::limits::{CONNECTIONS_PER_SHARD_MAX, CROSS_SHARD_CHANNEL_DEPTH};
use strom_tuning::tune::Root;
use tracing::{error, info, warn};

/// Why the broker could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another strom process (lock file {lock})")]
    DataDirLocked { path: String, lock: String },
    #[error("{0}")]
    Metadata(#[from] crate::metadata::MetadataError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr} for the admin API: {source}; choose another address with \
         --admin-listen HOST:PORT (or admin.listeners in the config file)"
    )]
    AdminListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("shard start-up failed: {0}")]
    Shard(String),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    /// A host setting Strom cannot run with; the message names the fix.
    #[error("{0}")]
    Host(String),
}

/// Cores this process may run on (its affinity mask), in order.
pub fn usable_cpus() -> Vec<usize> {
    host::usable_cpus()
}

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(mut config: BrokerConfig) -> Result<(), ServeError> {
    crate::logging::fail_stop_on_panic(crate::EXIT_PANIC);
    let data_dir = config.data_dir().to_path_buf();
    let data_dir_text = data_dir.display().to_string();
    fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir_text.clone(),
        source,
    })?;
    let _lock = lock_data_dir(&data_dir)?;
    check_host(&config)?;
    // A single node's table from before the metadata log (read by shard 0's
    // controller if the log is new).
    let legacy = TopicTable::load_legacy(&data_dir, config.node_id)?;
    let table = Arc::new(TopicTable::default());

    let cpus = usable_cpus();
    // More shards than cores: round-robin (check_host warned).
    let smp = config.smp.unwrap_or(cpus.len()).max(1);

    // Before the Kafka port is resolved: its default follows a Kafka port 0.
    let admin_wanted = config.admin_listen();
    // With port 0, reserve a port first so every shard's listener shares it.
    let reservation = if config.listen.port() == 0 {
        let socket = reserve_port(config.listen).map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
        if let Ok(Some(addr)) = socket.local_addr().map(|a| a.as_socket()) {
            config.listen = addr;
        }
        Some(socket)
    } else {
        // Every shard binds with SO_REUSEPORT, which would let this broker
        // silently share a port with another process that did the same (an
        // older strom still running): clients would reach either at random.
        // A plain bind fails while anyone listens on the address.
        drop(
            probe_bind(config.listen).map_err(|source| ServeError::Listen {
                addr: config.listen,
                source,
            })?,
        );
        None
    };
    let listen = config.listen;

    // The admin API: same checks as the Kafka listener (a free port for 0,
    // refuse an address somebody else listens on).
    let admin_listen_error = |source| ServeError::AdminListen {
        addr: admin_wanted,
        source,
    };
    let admin_reservation = if admin_wanted.port() == 0 {
        let socket = reserve_port(admin_wanted).map_err(admin_listen_error)?;
        if let Ok(Some(addr)) = socket.local_addr().map(|a| a.as_socket()) {
            config.admin_listen = Some(addr);
        }
        Some(socket)
    } else {
        drop(probe_bind(admin_wanted).map_err(admin_listen_error)?);
        config.admin_listen = Some(admin_wanted);
        None
    };
    let admin = config.admin_listen();
    let admin_state = crate::http::AdminState::new();

    let shutdown = Arc::new(AtomicBool::new(false));
    // Set by shard 0 once a controlled shutdown is over: then every shard
    // closes its partitions.
    let stop_now = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, shutdown.clone()).map_err(ServeError::Signal)?;
    }

    let serving = Arc::new(AtomicBool::new(false));
    let config = Arc::new(config);
    let mesh = MeshBuilder::<Task<Shard>, _>::full(smp, CROSS_SHARD_CHANNEL_DEPTH);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::with_capacity(smp);
    for index in 0..smp {
        let cpu = cpus[index % cpus.len()];
        let mesh = mesh.clone();
        let config = config.clone();
        let table = table.clone();
        let ready = ready_tx.clone();
        let shutdown = shutdown.clone();
        let admin_state = admin_state.clone();
        let stop_now = stop_now.clone();
        let serving = serving.clone();
        let legacy = if index == 0 { legacy.clone() } else { None };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("strom-shard-{index}"))
            .spawn(move || async move {
                // Every line logged on this thread carries the shard id.
                let _span = tracing::info_span!("shard", id = index).entered();
                let listeners = Listeners {
                    kafka: listen,
                    admin,
                    admin_state,
                    serving,
                };
                let stop = Stop {
                    requested: shutdown,
                    now: stop_now,
                };
                if let Err(err) =
                    shard_main(mesh, config, table, legacy, listeners, &ready, stop).await
                {
                    let _ = ready.send(Err(err));
                }
            })
            .map_err(|e| ServeError::Shard(e.to_string()))?;
        handles.push(handle);
    }
    drop(ready_tx);
    drop(mesh);
    let mut started = 0;
    while started < smp {
        match ready_rx.recv() {
            Ok(Ok(())) => started += 1,
            Ok(Err(err)) => {
                shutdown.store(true, Ordering::SeqCst);
                return Err(ServeError::Shard(err));
            }
            Err(_) => return Err(ServeError::Shard("a shard exited during start-up".into())),
        }
    }
    drop(reservation);
    drop(admin_reservation);
    admin_state.ready.store(true, Ordering::SeqCst);
    println!(
        "strom listening for Kafka clients on {listen} (node {}, {smp} shards, data in {data_dir_text}, admin API on http://{admin})",
        config.node_id
    );
    use std::io::Write;
    // Scripts wait for this line; if stdout is gone the broker still serves.
    if let Err(err) = std::io::stdout().flush() {
        warn!("could not print the listening line: {err}");
    }
    crate::runtime::notify::ready();

    for handle in handles {
        if let Err(err) = handle.join() {
            error!("shard ended with an error: {err}");
        }
    }
    info!("strom stopped");
    Ok(())
}

/// When to stop: `requested` by a signal; `now` once shard 0 finished the
/// controlled shutdown (leaderships moved to other brokers).
struct Stop {
    requested: Arc<AtomicBool>,
    now: Arc<AtomicBool>,
}

/// How long shard 0 waits at start for a single node's metadata to be
/// replayed and the broker unfenced before it reports ready anyway.
const START_SERVING_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a shard listens (the admin API only on shard 0).
struct Listeners {
    kafka: SocketAddr,
    admin: SocketAddr,
    admin_state: Arc<crate::http::AdminState>,
    /// Set by shard 0 once the broker may serve Kafka clients (its metadata
    /// caught up); every shard opens its Kafka listener then.
    serving: Arc<AtomicBool>,
}

async fn shard_main(
    mesh: MeshBuilder<Task<Shard>, glommio::channels::channel_mesh::Full>,
    config: Arc<BrokerConfig>,
    table: Arc<TopicTable>,
    legacy: Option<TopicTable>,
    listeners: Listeners,
    ready: &mpsc::Sender<Result<(), String>>,
    stop: Stop,
) -> Result<(), String> {
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|e| format!("joining the shard mesh failed: {e}"))?;
    let shard = Shard::new(config.clone(), senders, table.clone());
    // The coordinators watch the partitions before the first table opens them.
    crate::replication::fetcher::Fetchers::install(&shard);
    crate::group::service::Groups::install(&shard);
    crate::txn::service::Txns::install(&shard);
    shard.apply_table(table);
    shard.start_storage_tasks();

    shard.serve_mesh(receivers);

    let cluster = if shard.id == 0 {
        Some(crate::cluster::ClusterNode::start(
            &shard,
            config.clone(),
            legacy,
        )?)
    } else {
        None
    };

    let admin = if shard.id == 0 {
        let addr = listeners.admin;
        let listener = crate::runtime::uring::listen(addr)
            .map_err(|e| format!("cannot listen on {addr} for the admin API: {e}"))?;
        Some(glommio::spawn_local(crate::http::serve(
            shard.clone(),
            listener,
            listeners.admin_state,
        )))
    } else {
        None
    };
    // Kafka clients (and other brokers' replica fetchers) are served only
    // once this broker's metadata caught up, as a KRaft broker opens its
    // listeners: a restarted broker must not answer from the image it had
    // when it stopped (it may lead partitions and coordinators at old epochs).
    if let Some(node) = &cluster {
        wait_caught_up(node, &config, &stop).await;
        listeners.serving.store(true, Ordering::SeqCst);
    }
    while !listeners.serving.load(Ordering::SeqCst) && !stop.requested.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    let acceptor = if listeners.serving.load(Ordering::SeqCst) {
        let listen = listeners.kafka;
        let listener = crate::runtime::uring::listen(listen)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        Some(glommio::spawn_local(accept_loop(shard.clone(), listener)))
    } else {
        None
    };
    let _ = ready.send(Ok(()));

    while !stop.requested.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    match &cluster {
        Some(node) => {
            if !config.quorum_voters.is_empty() && config.controlled_shutdown_enable {
                info!("controlled shutdown: asking the controller to move leaderships away");
                let timeout =
                    Duration::from_millis(u64::from(config.controlled_shutdown_timeout_ms));
                if !node.controlled_shutdown(timeout).await {
                    warn!("controlled shutdown did not finish within {timeout:?}; stopping anyway");
                }
            }
            stop.now.store(true, Ordering::SeqCst);
        }
        None => {
            while !stop.now.load(Ordering::SeqCst) {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    if let Some(acceptor) = acceptor {
        drop(acceptor.cancel());
    }
    if let Some(admin) = admin {
        drop(admin.cancel());
    }
    info!(shard = shard.id, "shutting down: closing partitions");
    // No checkpoint write may be in flight while close writes the final one.
    let _checkpoints = shard.checkpoint_lock.acquire_permit(1).await;
    shard.close_all();
    Ok(())
}

/// Waits until this node's broker is registered, unfenced and has applied
/// the metadata it was told of. A single node serves anyway after
/// `START_SERVING_TIMEOUT` (its own quorum replays its log); a cluster member
/// waits for its controller quorum as long as it takes, or until a stop is
/// requested.
async fn wait_caught_up(node: &crate::cluster::ClusterNode, config: &BrokerConfig, stop: &Stop) {
    if config.quorum_voters.is_empty() {
        if !node.wait_serving(START_SERVING_TIMEOUT).await {
            warn!("the metadata log was not replayed within {START_SERVING_TIMEOUT:?}; serving anyway");
        }
        return;
    }
    let started = std::time::Instant::now();
    while !node.wait_serving(START_SERVING_TIMEOUT).await {
        if stop.requested.load(Ordering::SeqCst) {
            return;
        }
        warn!(
            waited_s = started.elapsed().as_secs(),
            "not serving Kafka clients yet: waiting to register with the controller quorum and catch up with the metadata"
        );
    }
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if shard.connections.get() >= CONNECTIONS_PER_SHARD_MAX {
                    warn!(
                        shard = shard.id,
                        "connection limit reached, refusing a connection"
                    );
                    drop(stream);
                    continue;
                }
                glommio::spawn_local(connection::serve(shard.clone(), stream)).detach();
            }
            Err(err) => {
                warn!(shard = shard.id, "accept failed: {err}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Start-up checks of the host (`strom_tuning::host`): raises the soft
/// locked-memory and open-file limits to the hard ones, logs one warning per
/// slow-but-working setting, and fails with one message naming the fix when
/// Strom cannot run here. io_uring is proven by creating an executor.
fn check_host(config: &BrokerConfig) -> Result<(), ServeError> {
    for which in [Rlimit::LockedMemory, Rlimit::OpenFiles] {
        match host::raise_soft_limit(which) {
            Raise::AtHard => {}
            Raise::Raised { from, to } => {
                info!(limit = which.name(), %from, %to, "raised the soft limit to the hard limit")
            }
            Raise::Failed { error } => {
                warn!(limit = which.name(), "cannot raise the soft limit: {error}")
            }
        }
    }
    let facts = HostFacts::gather(&Root::real(), &config.log_dirs);
    let wanted = Wanted {
        smp: config.smp,
        log_dir_min_free_bytes: config.log_dir_min_free_bytes,
    };
    let mut checks = host::check(&facts, &wanted);
    if !checks.iter().any(Check::is_fatal) {
        if let Err(error) = probe_io_uring() {
            checks.push(host::io_uring_failure(&facts, &error));
        }
    }
    let mut fatal = Vec::new();
    for check in checks {
        match check.verdict {
            Verdict::Ok => {}
            Verdict::Warning(message) => warn!(check = check.name, "{message}"),
            Verdict::Fatal(message) => fatal.push(message),
        }
    }
    if fatal.is_empty() {
        Ok(())
    } else {
        Err(ServeError::Host(fatal.join("; also: ")))
    }
}

/// Creates (and drops) one glommio executor on the main thread, so that a host
/// where io_uring cannot be set up fails with the reason instead of a shard thread
/// dying silently while the others wait for it.
fn probe_io_uring() -> Result<(), String> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .map(drop)
        .map_err(|err| err.to_string())
}

fn reserve_port(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// An exclusive advisory lock on `<data_dir>/.lock`, held for the broker's life.
fn lock_data_dir(data_dir: &std::path::Path) -> Result<nix::fcntl::Flock<fs::File>, ServeError> {
    let path = data_dir.join(".lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServeError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
        ServeError::DataDirLocked {
            path: data_dir.display().to_string(),
            lock: path.display().to_string(),
        }
    })
}

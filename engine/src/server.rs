//! Start-up and shutdown: one glommio executor per shard, pinned to its core, a
//! channel mesh between them, and a SO_REUSEPORT listener on every shard.

use crate::connection;
use crate::messages::ShardMsg;
use crate::metadata::TopicTable;
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
use strom_tuning::limits::{CONNECTIONS_PER_SHARD_MAX, CROSS_SHARD_CHANNEL_DEPTH};
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
    #[error("shard start-up failed: {0}")]
    Shard(String),
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
}

/// Cores this process may run on (its affinity mask), in order.
pub fn usable_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// Runs the broker until SIGINT or SIGTERM.
pub fn run(mut config: BrokerConfig) -> Result<(), ServeError> {
    let data_dir = config.data_dir().to_path_buf();
    let data_dir_text = data_dir.display().to_string();
    fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir_text.clone(),
        source,
    })?;
    let _lock = lock_data_dir(&data_dir)?;
    let table = Arc::new(TopicTable::load_or_create(&data_dir)?);

    raise_open_file_limit();
    check_io_uring()?;
    let cpus = usable_cpus();
    let smp = config.smp.unwrap_or(cpus.len()).max(1);
    if smp > cpus.len() {
        warn!(
            smp,
            usable_cores = cpus.len(),
            "more shards than usable cores: shards will share cores"
        );
    }

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
            std::net::TcpListener::bind(config.listen).map_err(|source| ServeError::Listen {
                addr: config.listen,
                source,
            })?,
        );
        None
    };
    let listen = config.listen;

    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, shutdown.clone()).map_err(ServeError::Signal)?;
    }

    let config = Arc::new(config);
    let mesh = MeshBuilder::<ShardMsg, _>::full(smp, CROSS_SHARD_CHANNEL_DEPTH);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let mut handles = Vec::with_capacity(smp);
    for index in 0..smp {
        let cpu = cpus[index % cpus.len()];
        let mesh = mesh.clone();
        let config = config.clone();
        let table = table.clone();
        let ready = ready_tx.clone();
        let shutdown = shutdown.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("strom-shard-{index}"))
            .spawn(move || async move {
                if let Err(err) = shard_main(mesh, config, table, listen, &ready, shutdown).await {
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
    println!(
        "strom listening for Kafka clients on {listen} (node {}, {smp} shards, data in {data_dir_text})",
        config.node_id
    );
    use std::io::Write;
    // Scripts wait for this line; if stdout is gone the broker still serves.
    if let Err(err) = std::io::stdout().flush() {
        warn!("could not print the listening line: {err}");
    }

    for handle in handles {
        if let Err(err) = handle.join() {
            error!("shard ended with an error: {err}");
        }
    }
    info!("strom stopped");
    Ok(())
}

async fn shard_main(
    mesh: MeshBuilder<ShardMsg, glommio::channels::channel_mesh::Full>,
    config: Arc<BrokerConfig>,
    table: Arc<TopicTable>,
    listen: SocketAddr,
    ready: &mpsc::Sender<Result<(), String>>,
    shutdown: Arc<AtomicBool>,
) -> Result<(), String> {
    let (senders, mut receivers) = mesh
        .join()
        .await
        .map_err(|e| format!("joining the shard mesh failed: {e}"))?;
    let shard = Shard::new(config, senders, table.clone());
    shard.apply_table(table);
    shard.start_storage_tasks();

    for (_peer, receiver) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = receiver.recv().await {
                glommio::spawn_local(shard.clone().handle(msg)).detach();
            }
        })
        .detach();
    }

    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let accept_shard = shard.clone();
    let acceptor = glommio::spawn_local(accept_loop(accept_shard, listener));
    let _ = ready.send(Ok(()));

    while !shutdown.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    drop(acceptor.cancel());
    info!(shard = shard.id, "shutting down: closing partitions");
    // No checkpoint write may be in flight while close writes the final one.
    let _checkpoints = shard.checkpoint_lock.acquire_permit(1).await;
    shard.close_all();
    Ok(())
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

/// Creates (and drops) one glommio executor on the main thread, so that a host
/// where io_uring cannot be set up fails with the reason instead of a shard thread
/// dying silently while the others wait for it.
fn check_io_uring() -> Result<(), ServeError> {
    match LocalExecutorBuilder::new(Placement::Unbound).make() {
        Ok(executor) => {
            drop(executor);
            Ok(())
        }
        Err(err) => {
            let memlock =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
                    .map_or_else(
                        |_| "unknown".to_string(),
                        |(soft, _)| format!("{soft} bytes"),
                    );
            Err(ServeError::Shard(format!(
                "cannot start an io_uring executor: {err}. Strom needs io_uring \
                 (check sysctl kernel.io_uring_disabled and seccomp/container policy) and \
                 locked memory for its ring buffers (RLIMIT_MEMLOCK is {memlock}; 8 MiB or more \
                 works: ulimit -l 8192)"
            )))
        }
    }
}

/// Below this many open files the broker warns: every partition keeps its active
/// segment's three files open, and one file per older segment (Kafka recommends
/// 100,000).
pub const OPEN_FILES_RECOMMENDED_MIN: u64 = 65_536;

/// Raises the soft open-file limit to the hard limit: a default soft limit of 1024
/// would stop the broker at a few hundred partitions.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(err) => {
            warn!("cannot read the open-file limit: {err}");
            return;
        }
    };
    let mut effective = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "raised the open-file limit");
                effective = hard;
            }
            Err(err) => warn!(soft, hard, "cannot raise the open-file limit: {err}"),
        }
    }
    if effective < OPEN_FILES_RECOMMENDED_MIN {
        warn!(
            limit = effective,
            recommended = OPEN_FILES_RECOMMENDED_MIN,
            "low open-file limit: each partition keeps 3 files open, plus 1 per older segment; raise it (ulimit -n, systemd LimitNOFILE)"
        );
    }
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

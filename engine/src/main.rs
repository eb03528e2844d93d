//! `strom`: the broker binary.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use strom_engine::{server, EXIT_CONFIG, EXIT_START_FAILURE};
use strom_tuning::config::BrokerConfig;

#[derive(Parser)]
#[command(
    name = "strom",
    version,
    about = "Strom: a Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (single node; Kafka protocol on 127.0.0.1:9092, data in ./strom-data by default).
    Serve(ServeArgs),
    /// Consumer groups: list, describe (lag), reset offsets, delete (like kafka-consumer-groups).
    Group(strom_engine::cli::group::GroupArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file with Kafka's key names (log.dirs, num.partitions, log.segment.bytes, ...).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (overrides log.dirs).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Kafka listener address (overrides listeners); port 0 picks a free port.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// Number of shards, one pinned thread each (default: every usable core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    smp: Option<u16>,
}

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Group(args) => std::process::exit(strom_engine::cli::group::run(args)),
    };
    init_logging();
    let mut config = match &args.config {
        Some(path) => BrokerConfig::from_file(path),
        None => Ok(BrokerConfig::default()),
    }
    .and_then(|mut config| {
        config.apply_env(std::env::vars())?;
        Ok(config)
    })
    .unwrap_or_else(|err| {
        eprintln!("strom: {err}");
        std::process::exit(EXIT_CONFIG);
    });
    if let Some(dir) = args.data_dir {
        config.log_dirs = vec![dir];
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(smp) = args.smp {
        config.smp = Some(usize::from(smp));
    }
    if let Err(err) = server::run(config) {
        eprintln!("strom: {err}");
        std::process::exit(EXIT_START_FAILURE);
    }
}

/// `HOST:PORT` where HOST is an address or a name (`localhost:9092`).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("'{text}' is not HOST:PORT: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

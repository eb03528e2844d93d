//! `strom`: the broker binary.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use strom_engine::{logging, server, EXIT_CONFIG, EXIT_START_FAILURE};
use strom_tuning::config::{BrokerConfig, LogFormat};

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
    Group(strom_cli::group::GroupArgs),
    /// Host tuning: check (report) or apply the settings a broker host needs.
    Tune(strom_cli::tune::TuneArgs),
    /// Topics: create, list, describe, alter configs, add partitions, delete (like rpk topic).
    Topic(strom_cli::topic::TopicArgs),
    /// Produce records from stdin, one per line (like rpk topic produce, kcat -P).
    Produce(strom_cli::produce::ProduceArgs),
    /// Print a topic's records, alone or in a consumer group (like rpk topic consume, kcat -C).
    Consume(strom_cli::consume::ConsumeArgs),
    /// The cluster: brokers, controller, id; broker configs (like rpk cluster).
    Cluster(strom_cli::cluster::ClusterArgs),
    /// Transactions: list, describe (like kafka-transactions).
    Txn(strom_cli::txn::TxnArgs),
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
    /// Admin HTTP API address (/metrics, /v1/health, /v1/ready, /v1/status; overrides
    /// admin.listeners). Default: the Kafka listener's host, port 9644.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    admin_listen: Option<SocketAddr>,
    /// Log line format (overrides strom.log.format).
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Group(args) => std::process::exit(strom_cli::group::run(args)),
        Command::Tune(args) => std::process::exit(strom_cli::tune::run(args)),
        Command::Topic(args) => std::process::exit(strom_cli::topic::run(args)),
        Command::Produce(args) => std::process::exit(strom_cli::produce::run(args)),
        Command::Consume(args) => std::process::exit(strom_cli::consume::run(args)),
        Command::Cluster(args) => std::process::exit(strom_cli::cluster::run(args)),
        Command::Txn(args) => std::process::exit(strom_cli::txn::run(args)),
    };
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
    if let Some(admin) = args.admin_listen {
        config.admin_listen = Some(admin);
    }
    if let Some(format) = args.log_format {
        config.log_format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
    }
    if let Err(err) = config.check_cluster() {
        eprintln!("strom: {err}");
        std::process::exit(EXIT_CONFIG);
    }
    if let Err(err) = logging::init(config.log_format, &config.log_level) {
        eprintln!("strom: invalid log filter: {err}");
        std::process::exit(EXIT_CONFIG);
    }
    if let Err(err) = server::run(config) {
        logging::flush();
        eprintln!("strom: {err}");
        std::process::exit(EXIT_START_FAILURE);
    }
    logging::flush();
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

//! The Strom broker: shards, Kafka API handlers, start-up and shutdown.
//!
//! Layout: [`server`] starts one glommio executor per shard; each runs a
//! [`shard::Shard`] that owns its partitions and serves the connections it accepts
//! ([`connection`]), routing partition work to other shards with [`messages`].
//! [`handlers`] holds one file per Kafka API; [`errors`] maps internal errors to
//! Kafka error codes; [`metadata`] is the topic table; [`admin`] changes it
//! (configs, partition counts).

pub mod clock;
pub mod cluster;
pub mod connection;
pub mod durability;
pub mod errors;
pub mod group;
pub mod handlers;
pub mod http;
pub mod logging;
pub mod messages;
pub mod metadata;
pub mod metrics;
pub mod partition;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod txn;

/// Exit status for a bad configuration or command line.
pub const EXIT_CONFIG: i32 = 2;
/// Exit status when a storage write, sync or open fails (fail-stop).
pub const EXIT_STORAGE_FAILURE: i32 = 3;
/// Exit status when any thread panicked (a bug): the whole broker stops.
pub const EXIT_PANIC: i32 = 4;
/// Exit status for any other start-up failure.
pub const EXIT_START_FAILURE: i32 = 1;

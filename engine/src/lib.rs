//! The Strom broker: shards, Kafka API handlers, start-up and shutdown.
//!
//! Layout, from the top (each layer imports only those below it; see
//! `docs/architecture.md`):
//! - [`server`] starts one glommio executor per shard and composes each
//!   shard with its services; [`http`] is the admin HTTP API on shard 0.
//! - [`kafka`]: the Kafka listener ([`kafka::connection`]), dispatch and one
//!   file per Kafka API.
//! - [`cluster`]: the controller quorum, the active controller, this
//!   broker's membership and its requests to the controller
//!   ([`cluster::client`]).
//! - [`group`], [`txn`] (state machines and their coordinator services),
//!   [`replication`]: per-shard services that follow the partitions.
//! - [`shard`]: the per-core state, partition routing and cross-shard calls;
//!   [`shard::durability`], its storage housekeeping.
//! - [`partition`]: one partition's log, role and ISR rules.
//! - [`runtime`] (the mesh, io_uring helpers), [`messages`], [`metadata`],
//!   [`errors`], [`metrics`], [`logging`], [`clock`]: the ground floor.

pub mod clock;
pub mod cluster;
pub mod errors;
pub mod group;
pub mod http;
pub mod ids;
pub mod kafka;
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

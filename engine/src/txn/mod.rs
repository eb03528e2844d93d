//! Transactions (KIP-98): the coordinator's state machine and its records in
//! `__transaction_state` ([`state`], pure), and the coordinator's service on
//! its shard ([`service`]). The Kafka APIs that drive it are in `kafka/`,
//! one file each.

pub mod service;
pub mod state;

pub use state::*;

//! Consumer groups: the coordinator's state machine and its
//! `__consumer_offsets` records ([`state`], pure), and its service on the
//! coordinating shard ([`service`]). The group APIs themselves are in
//! `kafka/`, one file per API.

pub mod service;
pub mod state;

pub use state::*;

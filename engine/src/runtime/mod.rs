//! The runtime seams of a shard: the cross-shard mesh ([`mesh`]), io_uring
//! listeners ([`uring`]) and the service manager's readiness ([`notify`]).
//! Nothing here knows what a shard holds or serves.

pub mod mesh;
pub mod notify;
pub mod uring;

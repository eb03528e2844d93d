//! How the storage layer makes bytes durable.
//!
//! Every `fsync`/`fdatasync` the storage crate issues itself (checkpoints,
//! the leader epoch checkpoint, index files at a roll, a truncated segment,
//! the directory after files are created or removed, everything at close
//! and after recovery) goes through a [`Syncer`]. The
//! broker uses [`OsSync`]; the power-loss tests plug in a syncer that records
//! what was durable at each sync so they can throw everything else away.
//!
//! The hot path — making appended records durable — does not sync here: the
//! engine asks the partition log (`log.rs`) for a `SyncPlan`, issues the
//! `fdatasync`s itself (through io_uring, many partitions per round), and
//! reports back with `PartitionLog::synced`.

use std::fs::File;
use std::io;

/// Makes a file's data (or a directory's entries) durable.
pub trait Syncer: Send + Sync + std::fmt::Debug {
    /// `fdatasync` for a regular file, `fsync` for a directory.
    fn sync(&self, file: &File) -> io::Result<()>;
}

/// The operating system's `fdatasync`/`fsync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsSync;

impl Syncer for OsSync {
    fn sync(&self, file: &File) -> io::Result<()> {
        if file.metadata()?.is_dir() {
            file.sync_all()
        } else {
            file.sync_data()
        }
    }
}

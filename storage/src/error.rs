//! The single error type of the storage crate. Every variant names the file
//! (and where it matters the position or offset) so that an operator can find
//! the problem from the log line alone.

use std::path::PathBuf;

use thiserror::Error;

use crate::batch::BatchError;

#[derive(Debug, Error)]
pub enum StorageError {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A positional read or write failed on `path` at byte `position`.
    #[error("I/O error on {path} at position {position}: {source}")]
    IoAt {
        path: PathBuf,
        position: u64,
        #[source]
        source: std::io::Error,
    },
    /// A fetch or lookup asked for an offset the log does not hold.
    #[error("offset {offset} out of range: log holds [{log_start_offset}, {log_end_offset})")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// An index file is malformed (callers usually rebuild it by scanning).
    #[error("malformed index {path}: {reason}")]
    CorruptIndex { path: PathBuf, reason: String },
    /// A batch in a log file that was valid when written no longer parses
    /// (the file changed under us after recovery).
    #[error("corrupt batch in {path} at position {position}: {source}")]
    CorruptBatch {
        path: PathBuf,
        position: u64,
        #[source]
        source: BatchError,
    },
    /// The caller passed an append that does not match its headers.
    #[error("invalid append to {path}: {reason}")]
    InvalidAppend { path: PathBuf, reason: String },
    /// The file system has no space (or quota) left for an append. The log
    /// is unchanged: nothing of the refused append remains.
    #[error("no space left for an append to {path}: {source}")]
    NoSpace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// Whether this is the file system running out of space (or quota):
    /// a condition that passes when space is freed, not a broken disk.
    pub fn is_no_space(&self) -> bool {
        match self {
            StorageError::NoSpace { .. } => true,
            StorageError::Io { source, .. } | StorageError::IoAt { source, .. } => {
                is_no_space(source)
            }
            _ => false,
        }
    }

    /// [`StorageError::NoSpace`] for an out-of-space I/O error, else `self`.
    pub(crate) fn into_no_space(self) -> StorageError {
        match self {
            StorageError::Io { path, source } | StorageError::IoAt { path, source, .. }
                if is_no_space(&source) =>
            {
                StorageError::NoSpace { path, source }
            }
            other => other,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn io_at(path: impl Into<PathBuf>, position: u64, source: std::io::Error) -> Self {
        StorageError::IoAt {
            path: path.into(),
            position,
            source,
        }
    }
}

/// Whether an I/O error means the file system is out of space (ENOSPC) or
/// the user's quota is used up (EDQUOT).
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

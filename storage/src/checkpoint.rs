//! The per-partition checkpoint file: recovery point, log start offset and
//! high watermark, replaced atomically.
//!
//! # Format (`<partition dir>/checkpoint`, ASCII)
//!
//! ```text
//! strom-checkpoint 1
//! recovery-point 1200
//! log-start-offset 100
//! high-watermark 1200
//! crc32c 5c1a9f0e
//! ```
//!
//! `crc32c` is the CRC-32C (lower-case hex, 8 digits) of every byte before
//! the `crc32c` line. A file that is missing, torn, fails its CRC or holds an
//! impossible value is ignored as a whole (recovery then scans every segment
//! and the log starts at its first segment): a half-trusted checkpoint could
//! skip the scan of bytes that were never synced.
//!
//! Written as Kafka writes its checkpoint files: `checkpoint.tmp`, fsync,
//! rename over `checkpoint`, fsync the directory. A crash leaves the old or
//! the new file, never a mix.
//!
//! Logs written before this file existed kept only `recovery-point` (the
//! decimal offset and `\n`); it is still read when `checkpoint` is absent,
//! and removed once a checkpoint has been written.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

use tracing::warn;

use crate::durability::Syncer;
use crate::error::StorageError;

pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const CHECKPOINT_TMP_FILE: &str = "checkpoint.tmp";
/// The single-number file of earlier versions.
pub const LEGACY_RECOVERY_POINT_FILE: &str = "recovery-point";
pub const LEGACY_RECOVERY_POINT_TMP_FILE: &str = "recovery-point.tmp";
const MAGIC: &str = "strom-checkpoint 1";

/// What a partition's checkpoint records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every batch below this offset was synced: recovery starts its scan at
    /// the segment holding it.
    pub recovery_point: i64,
    /// The first offset readable (moved by retention and DeleteRecords).
    pub log_start_offset: i64,
    /// The last high watermark handed out (offsets below it were visible to
    /// consumers).
    pub high_watermark: i64,
}

impl Checkpoint {
    pub fn encode(&self) -> String {
        let body = format!(
            "{MAGIC}\nrecovery-point {}\nlog-start-offset {}\nhigh-watermark {}\n",
            self.recovery_point, self.log_start_offset, self.high_watermark
        );
        let crc = crc32c::crc32c(body.as_bytes());
        format!("{body}crc32c {crc:08x}\n")
    }

    /// Parses [`Checkpoint::encode`]'s output; `Err` says what is wrong.
    pub fn decode(text: &[u8]) -> Result<Checkpoint, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
        let crc_at = text
            .rfind("crc32c ")
            .ok_or_else(|| "no crc32c line".to_string())?;
        let (body, crc_line) = text.split_at(crc_at);
        let stored = crc_line
            .strip_prefix("crc32c ")
            .and_then(|s| s.strip_suffix('\n'))
            .filter(|s| s.len() == 8)
            .and_then(|s| u32::from_str_radix(s, 16).ok())
            .ok_or_else(|| "malformed crc32c line".to_string())?;
        let computed = crc32c::crc32c(body.as_bytes());
        if stored != computed {
            return Err(format!(
                "CRC mismatch: stored {stored:08x}, computed {computed:08x}"
            ));
        }
        let mut lines = body.lines();
        if lines.next() != Some(MAGIC) {
            return Err("unknown format".into());
        }
        let mut field = |name: &str| -> Result<i64, String> {
            let line = lines.next().ok_or_else(|| format!("missing {name}"))?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .ok_or_else(|| format!("bad {name} line {line:?}"))
        };
        let checkpoint = Checkpoint {
            recovery_point: field("recovery-point")?,
            log_start_offset: field("log-start-offset")?,
            high_watermark: field("high-watermark")?,
        };
        if lines.next().is_some() {
            return Err("trailing lines".into());
        }
        Ok(checkpoint)
    }
}

/// Reads the checkpoint of the partition in `dir`. `None` when there is
/// none or it cannot be trusted (logged).
pub fn read(dir: &Path) -> Option<Checkpoint> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(bytes) => match Checkpoint::decode(&bytes) {
            Ok(checkpoint) => return Some(checkpoint),
            Err(reason) => {
                warn!(file = %path.display(), %reason, "ignoring a damaged checkpoint: scanning every segment");
                return None;
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            warn!(file = %path.display(), error = %e, "unreadable checkpoint: scanning every segment");
            return None;
        }
    }
    read_legacy(dir)
}

/// The recovery point of the earlier single-number file.
fn read_legacy(dir: &Path) -> Option<Checkpoint> {
    let path = dir.join(LEGACY_RECOVERY_POINT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "unreadable recovery point: scanning every segment");
            return None;
        }
    };
    match text.strip_suffix('\n').map(str::parse::<i64>) {
        Some(Ok(offset)) if offset >= 0 => Some(Checkpoint {
            recovery_point: offset,
            log_start_offset: 0,
            high_watermark: offset,
        }),
        _ => {
            warn!(file = %path.display(), "garbled recovery point: scanning every segment");
            None
        }
    }
}

/// Atomically replaces the checkpoint of the partition in `dir` (temp file,
/// sync, rename, sync the directory). Callable from any thread.
pub fn write(dir: &Path, checkpoint: &Checkpoint, syncer: &dyn Syncer) -> Result<(), StorageError> {
    replace_file(
        dir,
        CHECKPOINT_FILE,
        CHECKPOINT_TMP_FILE,
        checkpoint.encode().as_bytes(),
        syncer,
    )?;
    let legacy = dir.join(LEGACY_RECOVERY_POINT_FILE);
    match fs::remove_file(&legacy) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io(&legacy, e)),
    }
    sync_dir(dir, syncer)
}

/// Replaces `dir/name` with `contents` the way Kafka replaces its checkpoint
/// files: write `dir/tmp_name`, sync it, rename it over `name`. The caller
/// syncs the directory afterwards (see [`sync_dir`]) to make the rename
/// durable. A crash leaves the old or the new file, never a mix.
pub(crate) fn replace_file(
    dir: &Path,
    name: &str,
    tmp_name: &str,
    contents: &[u8],
    syncer: &dyn Syncer,
) -> Result<(), StorageError> {
    let tmp = dir.join(tmp_name);
    let path = dir.join(name);
    let file = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    if let Err(e) = file
        .write_all_at(contents, 0)
        .and_then(|()| syncer.sync(&file))
    {
        // The old file stays in force; leave no half-written temp file
        // behind (it is also removed at the next open).
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(&tmp, e));
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))
}

/// Syncs a directory so that creations, renames and removals in it survive
/// a crash.
pub fn sync_dir(dir: &Path, syncer: &dyn Syncer) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| syncer.sync(&d))
        .map_err(|e| StorageError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_refused() {
        let cp = Checkpoint {
            recovery_point: 1200,
            log_start_offset: 100,
            high_watermark: 1199,
        };
        let text = cp.encode();
        assert_eq!(Checkpoint::decode(text.as_bytes()), Ok(cp));
        // Any single-byte change, and any truncation, is detected.
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] ^= 0x01;
            assert!(Checkpoint::decode(&bytes).is_err(), "flip at {i} accepted");
            assert!(
                Checkpoint::decode(&text.as_bytes()[..i]).is_err(),
                "truncation at {i} accepted"
            );
        }
    }

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        fs::write(dir.path().join(LEGACY_RECOVERY_POINT_FILE), "42\n").unwrap();
        assert_eq!(read(dir.path()).map(|c| c.recovery_point), Some(42));
        let cp = Checkpoint {
            recovery_point: 7,
            log_start_offset: 3,
            high_watermark: 7,
        };
        write(dir.path(), &cp, &crate::durability::OsSync).unwrap();
        assert_eq!(read(dir.path()), Some(cp));
        assert!(!dir.path().join(LEGACY_RECOVERY_POINT_FILE).exists());
        assert!(!dir.path().join(CHECKPOINT_TMP_FILE).exists());
        fs::write(
            dir.path().join(CHECKPOINT_FILE),
            "strom-checkpoint 1\nrecov",
        )
        .unwrap();
        assert_eq!(read(dir.path()), None);
    }
}

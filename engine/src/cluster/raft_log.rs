//! The controller quorum's raft log: in memory for raft-rs ([`MetadataStorage`])
//! and on disk ([`RaftLogFiles`]).
//!
//! Who touches it: the quorum driver task on shard 0 (`cluster::quorum`) owns
//! both. Disk writes run on glommio's blocking pool so that shard 0 keeps
//! serving clients while a `fdatasync` is in flight.
//!
//! # Files (`<data_dir>/__cluster_metadata-0/`, Kafka's directory name)
//!
//! `raft.log` is a sequence of frames, appended in order and synced
//! (`fdatasync`) before raft is told they are stable:
//!
//! | offset | size | field                                               |
//! |-------:|-----:|-----------------------------------------------------|
//! |      0 |    4 | length u32 BE: bytes of `kind` + `payload`          |
//! |      4 |    4 | CRC-32C u32 BE of `kind` + `payload`                |
//! |      8 |    1 | kind: 1 = raft `Entry`, 2 = raft `HardState`        |
//! |      9 |    … | payload: the protobuf encoding of that message      |
//!
//! Replaying the frames rebuilds the log: an entry whose index is at or below
//! the last one read replaces the tail from that index (raft overwrote entries
//! that were never committed), and the last hard state wins. Replay stops at the
//! first frame that is torn or fails its CRC, and the file is cut back to it:
//! only bytes the last `fdatasync` did not cover can be torn.
//!
//! `snapshot` holds the latest snapshot: one frame of the same layout with kind
//! 3 and a protobuf raft `Snapshot` whose data is the FlatBuffers image
//! (`cluster::records`). It is replaced atomically (temp file, fsync, rename,
//! fsync of the directory); then `raft.log` is rewritten (the same way) with only
//! the entries after the snapshot and the hard state.

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directory of the metadata log under the data directory.
pub const METADATA_DIR: &str = "__cluster_metadata-0";
const LOG_FILE: &str = "raft.log";
const SNAPSHOT_FILE: &str = "snapshot";
const FRAME_HEADER_BYTES: usize = 9;
/// Largest frame accepted when reading back (a bigger length is garbage).
const FRAME_BYTES_MAX: usize = 256 << 20;

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;

/// Errors of the metadata log files.
#[derive(Debug, thiserror::Error)]
pub enum RaftLogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// The raft state kept in memory, served to raft-rs through [`Storage`].
/// Entries after the snapshot are contiguous.
#[derive(Debug, Default)]
pub struct MetadataStorage {
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot (metadata index 0 = none yet).
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl MetadataStorage {
    /// A new log for a quorum of these raft ids.
    pub fn new(voters: Vec<u64>) -> MetadataStorage {
        let mut storage = MetadataStorage::default();
        storage.conf_state.voters = voters;
        storage
            .snapshot
            .mut_metadata()
            .set_conf_state(storage.conf_state.clone());
        storage
    }

    /// The log as read back from disk.
    pub fn recovered(voters: Vec<u64>, recovered: Recovered) -> MetadataStorage {
        let mut storage = MetadataStorage::new(voters);
        if let Some(snapshot) = recovered.snapshot {
            storage.apply_snapshot(snapshot);
        }
        storage.append(&recovered.entries);
        if let Some(hs) = recovered.hard_state {
            storage.set_hard_state(hs);
        }
        // The commit index may point past what was kept (a torn tail).
        let last = storage.last();
        if storage.hard_state.commit > last {
            storage.hard_state.commit = last;
        }
        storage
    }

    fn first(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.get_metadata().index, |e| e.index)
    }

    /// The voters this log was created for (or last snapshotted with).
    pub fn voters(&self) -> &[u64] {
        &self.conf_state.voters
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub fn set_commit(&mut self, commit: u64) {
        self.hard_state.commit = commit;
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Appends entries; an entry at or below the last index replaces the tail
    /// from there (raft overwriting uncommitted entries).
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first_new) = entries.first() else {
            return;
        };
        let first = self.first();
        assert!(
            first_new.index >= first,
            "appending entry {} below the snapshot (first index {first})",
            first_new.index
        );
        assert!(
            first_new.index <= self.last() + 1,
            "gap in the raft log: last {}, appending {}",
            self.last(),
            first_new.index
        );
        let keep = (first_new.index - first) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    /// Replaces everything with a snapshot received from the leader.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        let index = meta.index;
        self.entries.retain(|e| e.index > index);
        if self.entries.first().is_some_and(|e| e.index != index + 1) {
            self.entries.clear();
        }
        self.snapshot = snapshot;
    }

    /// Takes a snapshot of our own applied state: entries up to its index go.
    pub fn compact(&mut self, snapshot: Snapshot) {
        let index = snapshot.get_metadata().index;
        assert!(index <= self.last(), "snapshot {index} past the log end");
        if index <= self.snapshot_index() {
            return;
        }
        self.entries.retain(|e| e.index > index);
        self.snapshot = snapshot;
    }

    /// Entries after `index` (for rewriting the log file after a snapshot).
    pub fn entries_after(&self, index: u64) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.index > index)
            .cloned()
            .collect()
    }

    /// The term of an entry still in memory (or of the snapshot).
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.term(index).ok()
    }
}

impl Storage for MetadataStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let first = self.first();
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let mut entries = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let meta = self.snapshot.get_metadata();
        if index == meta.index {
            return Ok(meta.term);
        }
        let first = self.first();
        if index < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if index > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(index - first) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot.get_metadata().index == 0 {
            // Nothing compacted yet: every entry is still available.
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

/// What was found on disk at start.
#[derive(Debug, Default)]
pub struct Recovered {
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
}

/// The open metadata log files.
pub struct RaftLogFiles {
    dir: PathBuf,
    log: Arc<File>,
    log_bytes: u64,
}

impl RaftLogFiles {
    /// Opens (creating) the directory and reads everything back. A torn tail of
    /// `raft.log` is cut off.
    pub fn open(data_dir: &Path) -> Result<(RaftLogFiles, Recovered), RaftLogError> {
        let dir = data_dir.join(METADATA_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RaftLogError::Io { path, source }
        };
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut recovered = Recovered::default();
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        match fs::read(&snapshot_path) {
            Ok(bytes) => {
                let (frames, valid) = parse_frames(&bytes);
                match frames.first() {
                    Some((KIND_SNAPSHOT, payload)) if valid == bytes.len() => {
                        let snapshot = Snapshot::parse_from_bytes(payload).map_err(|e| {
                            RaftLogError::Corrupt {
                                path: snapshot_path.clone(),
                                reason: e.to_string(),
                            }
                        })?;
                        recovered.snapshot = Some(snapshot);
                    }
                    _ => {
                        // Written atomically: a damaged one is not a torn write.
                        return Err(RaftLogError::Corrupt {
                            path: snapshot_path,
                            reason: "not a valid snapshot frame".into(),
                        });
                    }
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(&snapshot_path)(err)),
        }
        let log_path = dir.join(LOG_FILE);
        let bytes = match fs::read(&log_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(io(&log_path)(err)),
        };
        let (frames, valid) = parse_frames(&bytes);
        let after = recovered
            .snapshot
            .as_ref()
            .map_or(0, |s| s.get_metadata().index);
        for (kind, payload) in frames {
            let corrupt = |e: protobuf::ProtobufError| RaftLogError::Corrupt {
                path: log_path.clone(),
                reason: e.to_string(),
            };
            match kind {
                KIND_ENTRY => {
                    let entry = Entry::parse_from_bytes(payload).map_err(corrupt)?;
                    if entry.index <= after {
                        continue;
                    }
                    let entries = &mut recovered.entries;
                    if let Some(pos) = entries.iter().position(|e| e.index >= entry.index) {
                        entries.truncate(pos);
                    }
                    if entries
                        .last()
                        .is_some_and(|last| last.index + 1 != entry.index)
                        || (entries.is_empty() && entry.index != after + 1)
                    {
                        return Err(RaftLogError::Corrupt {
                            path: log_path.clone(),
                            reason: format!("entry {} does not follow the log", entry.index),
                        });
                    }
                    entries.push(entry);
                }
                KIND_HARD_STATE => {
                    recovered.hard_state =
                        Some(HardState::parse_from_bytes(payload).map_err(corrupt)?);
                }
                other => {
                    return Err(RaftLogError::Corrupt {
                        path: log_path.clone(),
                        reason: format!("unknown frame kind {other}"),
                    })
                }
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        if valid < bytes.len() {
            tracing::warn!(
                file = %log_path.display(),
                cut_bytes = bytes.len() - valid,
                "metadata log: cutting a torn tail"
            );
            log.set_len(valid as u64).map_err(io(&log_path))?;
            log.sync_all().map_err(io(&log_path))?;
        }
        Ok((
            RaftLogFiles {
                dir,
                log: Arc::new(log),
                log_bytes: valid as u64,
            },
            recovered,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in `raft.log`.
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes
    }

    /// Appends frames and syncs them (call from a blocking thread: see
    /// [`Self::append_job`]).
    pub fn append_job(&mut self, bytes: Vec<u8>) -> impl FnOnce() -> Result<(), RaftLogError> {
        let file = Arc::clone(&self.log);
        let path = self.dir.join(LOG_FILE);
        self.log_bytes += bytes.len() as u64;
        move || {
            let io = |source| RaftLogError::Io {
                path: path.clone(),
                source,
            };
            (&*file).write_all(&bytes).map_err(io)?;
            file.sync_data().map_err(io)
        }
    }

    /// Replaces the snapshot and rewrites the log with `entries` (those after
    /// the snapshot) and the hard state. Blocking.
    pub fn install_snapshot(
        &mut self,
        snapshot: &Snapshot,
        entries: &[Entry],
        hard_state: &HardState,
    ) -> Result<(), RaftLogError> {
        *self = Self::snapshot_job(
            self.dir.clone(),
            snapshot.clone(),
            entries.to_vec(),
            hard_state.clone(),
        )()?;
        Ok(())
    }

    /// [`Self::install_snapshot`] as a job for a blocking thread; it returns
    /// the files to use from then on.
    pub fn snapshot_job(
        dir: PathBuf,
        snapshot: Snapshot,
        entries: Vec<Entry>,
        hard_state: HardState,
    ) -> impl FnOnce() -> Result<RaftLogFiles, RaftLogError> + Send + 'static {
        move || {
            let snapshot_bytes = frame(KIND_SNAPSHOT, &encode(&snapshot));
            replace_file(&dir, SNAPSHOT_FILE, &snapshot_bytes)?;
            let log_bytes = encode_frames(&entries, Some(&hard_state));
            replace_file(&dir, LOG_FILE, &log_bytes)?;
            let path = dir.join(LOG_FILE);
            let log = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|source| RaftLogError::Io { path, source })?;
            Ok(RaftLogFiles {
                dir,
                log: Arc::new(log),
                log_bytes: log_bytes.len() as u64,
            })
        }
    }
}

fn encode(message: &dyn protobuf::Message) -> Vec<u8> {
    // Encoding a well-formed message into a Vec cannot fail.
    message
        .write_to_bytes()
        .expect("protobuf encoding into memory")
}

/// One frame: length, CRC-32C, kind, payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + payload.len());
    body.push(kind);
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The frames for new entries and, if it changed, the hard state.
pub fn encode_frames(entries: &[Entry], hard_state: Option<&HardState>) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&frame(KIND_ENTRY, &encode(entry)));
    }
    if let Some(hs) = hard_state {
        out.extend_from_slice(&frame(KIND_HARD_STATE, &encode(hs)));
    }
    out
}

/// The valid frames of `bytes` (kind, payload) and how many bytes they span.
fn parse_frames(bytes: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut frames = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= FRAME_HEADER_BYTES {
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        if len == 0 || len > FRAME_BYTES_MAX || bytes.len() - at - 8 < len {
            break;
        }
        let body = &bytes[at + 8..at + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        frames.push((body[0], &body[1..]));
        at += 8 + len;
    }
    (frames, at)
}

/// Atomically replaces `dir/name`: temp file, fsync, rename, fsync the directory.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RaftLogError> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let io = |source| RaftLogError::Io {
        path: path.clone(),
        source,
    };
    let mut file = File::create(&temp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&temp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// A snapshot of our state at `index` (term `term`) with `data`.
pub fn make_snapshot(index: u64, term: u64, voters: &[u64], data: Vec<u8>) -> Snapshot {
    let mut snapshot = Snapshot::default();
    snapshot.set_data(data.into());
    let mut meta = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    meta.set_conf_state(ConfState {
        voters: voters.to_vec(),
        ..Default::default()
    });
    snapshot.set_metadata(meta);
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        let mut e = Entry {
            index,
            term,
            ..Default::default()
        };
        e.set_data(data.to_vec().into());
        e
    }

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState {
            term,
            vote,
            commit,
            ..Default::default()
        }
    }

    fn append(files: &mut RaftLogFiles, entries: &[Entry], h: Option<&HardState>) {
        files.append_job(encode_frames(entries, h))().unwrap();
    }

    #[test]
    fn entries_and_hard_state_survive_a_reopen_and_overwrites_replace_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, recovered) = RaftLogFiles::open(dir.path()).unwrap();
        assert!(recovered.entries.is_empty() && recovered.hard_state.is_none());
        append(
            &mut files,
            &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
            Some(&hs(1, 1, 1)),
        );
        // A new leader overwrote entry 3 (never committed) and added 4.
        append(
            &mut files,
            &[entry(3, 2, b"C"), entry(4, 2, b"d")],
            Some(&hs(2, 2, 4)),
        );
        drop(files);
        let (_files, recovered) = RaftLogFiles::open(dir.path()).unwrap();
        let got: Vec<(u64, u64, Vec<u8>)> = recovered
            .entries
            .iter()
            .map(|e| (e.index, e.term, e.data.to_vec()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, b"a".to_vec()),
                (2, 1, b"b".to_vec()),
                (3, 2, b"C".to_vec()),
                (4, 2, b"d".to_vec())
            ]
        );
        assert_eq!(recovered.hard_state, Some(hs(2, 2, 4)));
        let storage = MetadataStorage::recovered(vec![1, 2, 3], recovered);
        assert_eq!(storage.last_index().unwrap(), 4);
        assert_eq!(storage.term(3).unwrap(), 2);
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_commit_index_kept_inside_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = RaftLogFiles::open(dir.path()).unwrap();
        append(&mut files, &[entry(1, 1, b"a")], Some(&hs(1, 1, 1)));
        append(&mut files, &[entry(2, 1, b"b")], Some(&hs(1, 1, 2)));
        drop(files);
        let path = dir.path().join(METADATA_DIR).join(LOG_FILE);
        let len = fs::metadata(&path).unwrap().len();
        // Tear the last frame (the hard state with commit 2).
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        drop(file);
        let (files, recovered) = RaftLogFiles::open(dir.path()).unwrap();
        assert_eq!(recovered.entries.len(), 2);
        assert_eq!(recovered.hard_state, Some(hs(1, 1, 1)));
        assert!(files.log_bytes() < len - 3, "torn bytes were cut");
        // Appending after the cut reads back cleanly.
        let mut files = files;
        append(&mut files, &[entry(3, 1, b"c")], None);
        drop(files);
        let (_, recovered) = RaftLogFiles::open(dir.path()).unwrap();
        assert_eq!(recovered.entries.len(), 3);
    }

    #[test]
    fn a_snapshot_compacts_the_log_and_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = RaftLogFiles::open(dir.path()).unwrap();
        let mut storage = MetadataStorage::new(vec![1]);
        let entries: Vec<Entry> = (1..=5).map(|i| entry(i, 1, &[i as u8])).collect();
        storage.append(&entries);
        storage.set_hard_state(hs(1, 1, 5));
        append(&mut files, &entries, Some(storage.hard_state()));
        let snapshot = make_snapshot(3, 1, &[1], b"image at 3".to_vec());
        storage.compact(snapshot.clone());
        files
            .install_snapshot(&snapshot, &storage.entries_after(3), storage.hard_state())
            .unwrap();
        assert_eq!(storage.first_index().unwrap(), 4);
        assert!(matches!(
            storage.entries(1, 4, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        assert_eq!(storage.term(3).unwrap(), 1);
        drop(files);
        let (_, recovered) = RaftLogFiles::open(dir.path()).unwrap();
        let back = MetadataStorage::recovered(vec![1], recovered);
        assert_eq!(back.snapshot_index(), 3);
        assert_eq!(back.snapshot().get_data(), b"image at 3");
        assert_eq!(back.first_index().unwrap(), 4);
        assert_eq!(back.last_index().unwrap(), 5);
        assert_eq!(back.hard_state().commit, 5);
    }

    #[test]
    fn a_snapshot_from_the_leader_replaces_the_log() {
        let mut storage = MetadataStorage::new(vec![1, 2, 3]);
        storage.append(&[entry(1, 1, b"a"), entry(2, 1, b"b")]);
        storage.apply_snapshot(make_snapshot(10, 3, &[1, 2, 3], b"x".to_vec()));
        assert_eq!(storage.first_index().unwrap(), 11);
        assert_eq!(storage.last_index().unwrap(), 10);
        assert_eq!(storage.hard_state().commit, 10);
        storage.append(&[entry(11, 3, b"c")]);
        assert_eq!(storage.last_index().unwrap(), 11);
    }
}

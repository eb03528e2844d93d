//! Power-loss tests: a [`Syncer`] that remembers what each `fdatasync`/`fsync`
//! made durable, and a `crash` that throws away everything else, the way a
//! power cut does. Random workloads (appends with segment rolls, sync plans
//! completed at random points, retention, DeleteRecords, follower
//! truncations, checkpoints, clean closes, crashes in the middle of any
//! operation including recovery itself) are crashed and reopened; every
//! record that was acknowledged (synced) and not truncated since must come
//! back byte for byte, and no truncated record may come back.
//!
//! Negative controls (`control_*`) show that the sim does lose unsynced
//! data, unsynced directory entries and torn tails, so the main test is not
//! vacuous. The regression tests at the end pin down two failures the
//! randomized test once found: a segment surviving after the previous one
//! lost its tail (a hole in the offsets) and retention deleting unsynced
//! segments (a high watermark that a power loss takes back). The randomized
//! test checks for both on every run: offsets stay contiguous, and without
//! write caching the high watermark never passes what was synced.
//!
//! The truncation tests at the very end show that a truncated tail never
//! comes back after a power cut, and that a truncation interrupted by one
//! leaves a consistent log (the recovery point is lowered first, so recovery
//! never trusts a segment the truncation rewrote).
//!
//! `STROM_POWER_LOSS_SEED=<n>` replays one seed, `STROM_POWER_LOSS_CASES=<n>`
//! changes the number of seeds, `STROM_POWER_LOSS_TRACE=1` prints what a
//! replayed seed does. Most of the runtime is real `fsync`s; with
//! `TMPDIR=/dev/shm` the test runs several times faster.

mod common;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{append_to, check_log, random_config, random_produce, run_cases, seeds, Rng, NOW};
use strom_storage::durability::{OsSync, Syncer};
use strom_storage::log::{LogConfig, PartitionLog, RecoveryReport};
use strom_storage::StorageError;

/// (device, inode): what a sync makes durable belongs to the inode, not to
/// a name.
type Key = (u64, u64);

fn key_of(meta: &fs::Metadata) -> Key {
    (meta.dev(), meta.ino())
}

/// The path through which the file behind `file` can be opened again, even
/// when it is write-only or already unlinked.
fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// How a crash treats what was not synced.
#[derive(Debug, Clone, Copy, Default)]
struct CrashMode {
    /// Unsynced appends may partly reach the disk (a prefix of the unsynced
    /// tail, maybe followed by zeros or stale garbage); rewritten files may
    /// come back as a block-wise mix of old and new contents.
    torn: bool,
    /// Directory changes (creations, removals, renames) made since the last
    /// directory sync may have reached the disk anyway, in the order they
    /// were made, as a journaling file system commits them: some prefix of
    /// them survives.
    leaky_dir: bool,
}

/// One batch of directory changes seen between two syncs: name -> the inode
/// it now names, or `None` for removed. Applied all or nothing.
type DirChange = BTreeMap<OsString, Option<Key>>;

#[derive(Debug, Default)]
struct SimState {
    /// The content each inode had at its last sync.
    files: HashMap<Key, Vec<u8>>,
    /// The directory's entries at its last sync (`None` before the first).
    durable_listing: Option<BTreeMap<OsString, Key>>,
    /// The directory as seen at the last sync call, and the changes since
    /// its last sync, in order.
    observed: BTreeMap<OsString, Key>,
    changes: Vec<DirChange>,
    /// Open descriptors on every inode the state refers to, so that the file
    /// system cannot reuse an inode number for a new file while a snapshot
    /// is keyed by it. Also how unlinked files are read back.
    pins: HashMap<Key, File>,
    /// Successful syncs so far.
    syncs: u64,
    /// The sync that loses power (fails, and every later one too).
    fail_at: Option<u64>,
    tripped: bool,
}

/// A [`Syncer`] emulating a power loss of one partition directory; see the
/// module docs.
#[derive(Debug)]
struct CrashSim {
    dir: PathBuf,
    state: Mutex<SimState>,
    /// Crashes whose power loss happened inside an operation.
    mid_op_crashes: AtomicU64,
}

/// The entries of `dir`: name -> (inode, path).
fn read_listing(dir: &Path) -> io::Result<BTreeMap<OsString, (Key, PathBuf)>> {
    let mut listing = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        match fs::symlink_metadata(&path) {
            Ok(meta) => {
                listing.insert(entry.file_name(), (key_of(&meta), path));
            }
            // Removed while listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(listing)
}

impl Syncer for CrashSim {
    fn sync(&self, file: &File) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        if state.tripped || state.fail_at.is_some_and(|at| state.syncs >= at) {
            state.tripped = true;
            return Err(io::Error::other("simulated power loss"));
        }
        OsSync.sync(file)?;
        let meta = file.metadata()?;
        let key = key_of(&meta);
        // Whatever changed in the directory since the last call is one
        // batch of changes.
        let now = read_listing(&self.dir)?;
        let mut change = DirChange::new();
        for (name, k) in &state.observed {
            if !now.contains_key(name) {
                change.insert(name.clone(), None);
            } else if now[name].0 != *k {
                change.insert(name.clone(), Some(now[name].0));
            }
        }
        for (name, (k, _)) in &now {
            if !state.observed.contains_key(name) {
                change.insert(name.clone(), Some(*k));
            }
        }
        if !change.is_empty() {
            state.changes.push(change);
        }
        state.observed = now.iter().map(|(n, (k, _))| (n.clone(), *k)).collect();
        for (k, path) in now.values() {
            if let Entry::Vacant(v) = state.pins.entry(*k) {
                if let Ok(f) = File::open(path) {
                    v.insert(f);
                }
            }
        }
        if meta.is_dir() {
            assert_eq!(
                key,
                key_of(&fs::metadata(&self.dir)?),
                "the sim models one directory"
            );
            state.durable_listing = Some(state.observed.clone());
            state.changes.clear();
            state.prune();
        } else {
            let content = fs::read(fd_path(file))?;
            if let Entry::Vacant(v) = state.pins.entry(key) {
                v.insert(file.try_clone()?);
            }
            state.files.insert(key, content);
        }
        state.syncs += 1;
        Ok(())
    }
}

impl SimState {
    /// Forgets inodes that are unlinked and not named by the durable listing
    /// or a pending change: they can never come back.
    fn prune(&mut self) {
        let named: HashSet<Key> = self
            .durable_listing
            .iter()
            .flat_map(|l| l.values().copied())
            .chain(
                self.changes
                    .iter()
                    .flat_map(|c| c.values().flatten().copied()),
            )
            .collect();
        let gone: Vec<Key> = self
            .pins
            .iter()
            .filter(|(k, f)| !named.contains(k) && f.metadata().is_ok_and(|m| m.nlink() == 0))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.pins.remove(&k);
            self.files.remove(&k);
        }
    }
}

/// What a torn write leaves of a file that was `durable` at its last sync and
/// is `now` in the page cache.
fn torn(durable: &[u8], now: &[u8], rng: &mut Rng) -> Vec<u8> {
    if now == durable {
        return durable.to_vec();
    }
    let mut out = if now.len() > durable.len() && now.starts_with(durable) {
        // Appended since the sync: some prefix of the appended bytes made it.
        let keep = rng.range(0, (now.len() - durable.len()) as u64) as usize;
        now[..durable.len() + keep].to_vec()
    } else {
        // Rewritten or truncated: each 512-byte block is old or new.
        let len = if rng.chance(50) {
            durable.len()
        } else {
            now.len()
        };
        let mut out = vec![0u8; len];
        for (i, chunk) in out.chunks_mut(512).enumerate() {
            let src = if rng.chance(50) { durable } else { now };
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = src.get(i * 512 + j).copied().unwrap_or(0);
            }
        }
        out
    };
    if rng.chance(40) {
        // The file grew but the new blocks hold zeros or stale data.
        let len = rng.range(1, 100) as usize;
        if rng.chance(50) {
            out.extend(vec![0u8; len]);
        } else {
            out.extend(rng.bytes(len));
        }
    }
    out
}

impl CrashSim {
    /// A sim for the partition directory `dir` (which must exist).
    fn new(dir: &Path) -> Self {
        CrashSim {
            dir: dir.to_path_buf(),
            state: Mutex::default(),
            mid_op_crashes: AtomicU64::new(0),
        }
    }

    /// Syncs the (test-created) partition directory through the sim.
    fn sync_dir(&self) {
        self.sync(&File::open(&self.dir).unwrap()).unwrap();
    }

    /// The sync `n` syncs from now fails, and so does every later one.
    fn arm(&self, n: u64) {
        let mut state = self.state.lock().unwrap();
        state.fail_at = Some(state.syncs + n);
    }

    fn disarm(&self) {
        self.state.lock().unwrap().fail_at = None;
    }

    fn tripped(&self) -> bool {
        self.state.lock().unwrap().tripped
    }

    /// The power goes out: the directory is replaced with what was durable
    /// (plus, per `mode`, some of what was not). Afterwards whatever is on
    /// disk is durable, and syncs work again.
    fn crash(&self, mode: CrashMode, rng: &mut Rng) {
        let dir = &self.dir;
        let mut state = self.state.lock().unwrap();
        if state.tripped {
            self.mid_op_crashes.fetch_add(1, Ordering::Relaxed);
        }
        let current = read_listing(dir).unwrap();
        let mut listing = state.durable_listing.clone().unwrap_or_default();
        if mode.leaky_dir {
            let mut changes = state.changes.clone();
            let last: DirChange = {
                let mut change = DirChange::new();
                for name in state.observed.keys() {
                    if !current.contains_key(name) {
                        change.insert(name.clone(), None);
                    }
                }
                for (name, (k, _)) in &current {
                    if state.observed.get(name) != Some(k) {
                        change.insert(name.clone(), Some(*k));
                    }
                }
                change
            };
            changes.push(last);
            let survive = rng.range(0, changes.len() as u64) as usize;
            for change in &changes[..survive] {
                for (name, k) in change {
                    match k {
                        Some(k) => listing.insert(name.clone(), *k),
                        None => listing.remove(name),
                    };
                }
            }
        }
        let mut after: BTreeMap<OsString, Vec<u8>> = BTreeMap::new();
        for (name, k) in &listing {
            let durable = state.files.get(k).cloned().unwrap_or_default();
            let content = if mode.torn && rng.chance(60) {
                let now = match state.pins.get(k) {
                    Some(pin) => fs::read(fd_path(pin)).unwrap(),
                    None => current
                        .values()
                        .find(|(ck, _)| ck == k)
                        .map(|(_, path)| fs::read(path).unwrap())
                        .unwrap_or_default(),
                };
                torn(&durable, &now, rng)
            } else {
                durable
            };
            after.insert(name.clone(), content);
        }
        for (_, path) in current.values() {
            fs::remove_file(path).unwrap();
        }
        // The disk after the crash is durable by definition.
        *state = SimState {
            syncs: state.syncs,
            ..SimState::default()
        };
        let mut listing = BTreeMap::new();
        for (name, content) in after {
            let path = dir.join(&name);
            fs::write(&path, &content).unwrap();
            let file = File::open(&path).unwrap();
            let k = key_of(&file.metadata().unwrap());
            state.files.insert(k, content);
            state.pins.insert(k, file);
            listing.insert(name, k);
        }
        state.observed = listing.clone();
        state.durable_listing = Some(listing);
    }
}

/// With `STROM_POWER_LOSS_TRACE` set, prints what a replayed seed does.
fn trace(what: std::fmt::Arguments) {
    if std::env::var_os("STROM_POWER_LOSS_TRACE").is_some() {
        eprintln!("{what}");
    }
}

/// The number of segment (`.log`) files in `dir`.
fn segment_file_count(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

/// `name (size)` of every file in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} ({})",
                e.file_name().to_string_lossy(),
                e.metadata().unwrap().len()
            )
        })
        .collect();
    names.sort();
    names
}

/// Counts over all seeds, to show that the scenarios are not vacuous.
#[derive(Debug, Default)]
struct Stats {
    crashes: AtomicU64,
    mid_op_crashes: AtomicU64,
    lost_unacked_records: AtomicU64,
    recoveries_truncating: AtomicU64,
    acked_records_checked: AtomicU64,
    clean_reopens: AtomicU64,
    /// Segments that recovery removed because they did not start where the
    /// previous one ended (see `a_segment_after_a_lost_tail_is_dropped`) or
    /// came after a torn or corrupt tail.
    later_segments_dropped: AtomicU64,
    /// Retention runs that deleted at least one segment.
    retention_deletions: AtomicU64,
    /// truncate_to / truncate_fully_and_start_at calls that returned.
    truncations: AtomicU64,
}

/// One partition being hammered and crashed.
struct Run<'a> {
    rng: Rng,
    dir: PathBuf,
    sim: Arc<CrashSim>,
    cfg: LogConfig,
    /// `model[o]` is the value last appended at offset `o`.
    model: Vec<Vec<u8>>,
    /// Every offset below this was acknowledged as synced.
    acked: i64,
    /// Without write caching: the largest high watermark handed out.
    visible: i64,
    /// The next batch timestamp (grows, so retention by time has a shape).
    clock: i64,
    stats: &'a Stats,
}

impl Run<'_> {
    /// Opens the log after a crash, crashing again inside recovery now and
    /// then, and checks what came back.
    fn reopen(&mut self, closed_cleanly: bool) -> PartitionLog {
        for attempt in 0.. {
            let crash_inside = attempt < 3 && self.rng.chance(25);
            if crash_inside {
                self.sim.arm(self.rng.range(0, 12));
            }
            let segment_files = segment_file_count(&self.dir);
            match PartitionLog::open_with(&self.dir, self.cfg, NOW, self.sim.clone()) {
                Ok((log, report)) => {
                    self.sim.disarm();
                    trace(format_args!(
                        "reopened: {report:?}, start {} end {}, files {:?}",
                        log.log_start_offset(),
                        log.log_end_offset(),
                        listing(&self.dir)
                    ));
                    self.check_recovered(
                        &log,
                        &report,
                        segment_files,
                        closed_cleanly && attempt == 0,
                    );
                    return log;
                }
                Err(e) => {
                    assert!(self.sim.tripped(), "open failed without a power loss: {e}");
                    self.crash();
                }
            }
        }
        unreachable!()
    }

    fn crash(&mut self) {
        let mode = CrashMode {
            torn: self.rng.chance(60),
            leaky_dir: self.rng.chance(40),
        };
        trace(format_args!(
            "crash {mode:?} (mid-op: {}), acked {}, files {:?}",
            self.sim.tripped(),
            self.acked,
            listing(&self.dir)
        ));
        self.stats.crashes.fetch_add(1, Ordering::Relaxed);
        self.sim.crash(mode, &mut self.rng);
    }

    /// Checks the log that recovery made of a directory that held
    /// `segment_files` segments.
    fn check_recovered(
        &mut self,
        log: &PartitionLog,
        report: &RecoveryReport,
        segment_files: usize,
        clean: bool,
    ) {
        let end = log.log_end_offset();
        assert!(
            end >= self.acked,
            "acknowledged records lost: log end {end} after recovery, {} acknowledged ({report:?})",
            self.acked
        );
        assert!(
            end >= self.visible,
            "high watermark went backwards: log end {end} after recovery, high watermark was {} \
             (synced offset {})",
            self.visible,
            self.acked
        );
        self.stats.later_segments_dropped.fetch_add(
            segment_files.saturating_sub(report.segments) as u64,
            Ordering::Relaxed,
        );
        if clean {
            assert!(report.clean, "a clean close was not recognised: {report:?}");
            assert_eq!(report.truncated_bytes, 0, "{report:?}");
            assert_eq!(end as usize, self.model.len());
            self.stats.clean_reopens.fetch_add(1, Ordering::Relaxed);
        }
        if report.truncated_bytes > 0 {
            self.stats
                .recoveries_truncating
                .fetch_add(1, Ordering::Relaxed);
        }
        let checked = check_log(log, &self.model, &mut self.rng);
        let start = log.log_start_offset();
        let acked_readable = (self.acked - start).max(0);
        assert!(checked as i64 >= acked_readable);
        self.stats
            .acked_records_checked
            .fetch_add(acked_readable as u64, Ordering::Relaxed);
        self.stats
            .lost_unacked_records
            .fetch_add(self.model.len() as u64 - end as u64, Ordering::Relaxed);
        // Recovery syncs everything it kept.
        assert_eq!(log.synced_offset(), end);
        self.model.truncate(end as usize);
        self.acked = end;
        self.visible = end;
    }

    fn append(&mut self, log: &mut PartitionLog) -> Result<(), StorageError> {
        self.clock += self.rng.range(0, 1000) as i64;
        let (buf, values) = random_produce(&mut self.rng, 3, 5, 120, NOW + self.clock);
        append_to(log, &mut self.model, buf, values, NOW)
    }

    /// What the engine does: plan, (appends meanwhile), fdatasync every file
    /// of the plan, report back.
    fn sync_by_plan(&mut self, log: &mut PartitionLog) -> Result<(), StorageError> {
        let Some(plan) = log.sync_plan()? else {
            return Ok(());
        };
        if self.rng.chance(30) {
            for _ in 0..self.rng.range(1, 3) {
                self.append(log)?;
            }
        }
        for file in &plan.files {
            self.sim.sync(file).map_err(|e| StorageError::Io {
                path: self.dir.clone(),
                source: e,
            })?;
        }
        log.synced(&plan);
        self.acked = self.acked.max(plan.end_offset);
        Ok(())
    }

    /// What a follower whose log diverged from its leader's does: cut the
    /// log back (now and then all of it, restarting near its end).
    /// Truncation removes records on purpose, acknowledged ones included,
    /// so what must survive a crash is lowered before it starts: a crash in
    /// the middle may leave the old log or the truncated one.
    fn truncate(&mut self, log: &mut PartitionLog) -> Result<(), StorageError> {
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        if self.rng.chance(20) {
            let offset = self.rng.range(start as u64, end as u64 + 20) as i64;
            trace(format_args!("truncate fully, start at {offset}"));
            self.acked = self.acked.min(offset);
            self.visible = self.visible.min(offset);
            if self.model.len() < offset as usize {
                // Offsets the log skips: never read.
                self.model.resize(offset as usize, Vec::new());
            }
            log.truncate_fully_and_start_at(offset)?;
            // Durably an empty log at `offset` now, also past the old end.
            assert_eq!(log.synced_offset(), offset);
            self.acked = offset;
        } else {
            let target = self.rng.range(start as u64, end as u64) as i64;
            // The cut is at the start of the batch holding `target`.
            let cut = match log.read_to_end(target, 1)? {
                Some(region) => {
                    let mut base = [0u8; 8];
                    region
                        .file
                        .read_exact_at(&mut base, region.position)
                        .expect("read a batch header");
                    i64::from_be_bytes(base)
                }
                None => target,
            };
            trace(format_args!("truncate to {target} (cut at {cut})"));
            self.acked = self.acked.min(cut);
            self.visible = self.visible.min(cut);
            log.truncate_to(target)?;
            assert_eq!(log.log_end_offset(), cut);
        }
        self.model.truncate(log.log_end_offset() as usize);
        self.stats.truncations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One random operation; `Err` only when the power went out in it.
    fn step(&mut self, log: &mut PartitionLog) -> Result<(), StorageError> {
        let op = self.rng.below(100);
        trace(format_args!(
            "op {op}: end {} hw {} segments {}",
            log.log_end_offset(),
            log.high_watermark(),
            log.segment_count()
        ));
        match op {
            0..=49 => self.append(log)?,
            50..=69 => self.sync_by_plan(log)?,
            70..=74 => {
                let end = log.log_end_offset();
                log.sync_now()?;
                self.acked = self.acked.max(end);
            }
            75..=77 => {
                let end = log.log_end_offset();
                log.flush()?;
                self.acked = self.acked.max(end);
            }
            78..=85 => log.write_checkpoint()?,
            86..=90 => {
                let mut cfg = self.cfg;
                cfg.retention_bytes = self.rng.range(0, 6000) as i64;
                if self.rng.chance(30) {
                    cfg.retention_ms = self.rng.range(0, 3000) as i64;
                }
                log.set_config(cfg);
                let segments = log.segment_count();
                let result = log.enforce_retention(NOW + self.clock);
                log.set_config(self.cfg);
                result?;
                if log.segment_count() < segments {
                    self.stats
                        .retention_deletions
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            91..=95 => {
                let (start, hw) = (log.log_start_offset(), log.high_watermark());
                let to = self.rng.range(start as u64, hw as u64) as i64;
                log.delete_records_before(to)?;
            }
            96..=97 => self.truncate(log)?,
            _ => {
                // A read in the middle of it all must see valid data.
                check_log(log, &self.model, &mut self.rng);
            }
        }
        if !self.cfg.write_caching {
            // The high watermark is the synced offset: never above what was
            // acknowledged, whatever the operation (retention included).
            let hw = log.high_watermark();
            assert!(
                hw <= self.acked,
                "high watermark {hw} above the synced offset {} after op {op}",
                self.acked
            );
            self.visible = self.visible.max(hw);
        }
        Ok(())
    }
}

fn power_loss_case(seed: u64, stats: &Stats) {
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    if rng.chance(80) {
        sim.sync_dir();
    }
    let cfg = random_config(&mut rng);
    let mut run = Run {
        rng,
        dir,
        sim,
        cfg,
        model: Vec::new(),
        acked: 0,
        visible: 0,
        clock: 0,
        stats,
    };
    let mut log = run.reopen(false);
    let cycles = run.rng.range(2, 5);
    for _ in 0..cycles {
        if run.rng.chance(50) {
            run.sim.arm(run.rng.range(0, 40));
        }
        let ops = run.rng.range(5, 60);
        let mut closed = false;
        for _ in 0..ops {
            if let Err(e) = run.step(&mut log) {
                assert!(
                    run.sim.tripped(),
                    "operation failed without a power loss: {e}"
                );
                break;
            }
        }
        if !run.sim.tripped() && run.rng.chance(20) {
            let end = log.log_end_offset();
            match log.close() {
                Ok(()) => {
                    run.acked = end;
                    closed = true;
                }
                Err(e) => assert!(run.sim.tripped(), "close failed: {e}"),
            }
        } else {
            drop(log);
        }
        run.crash();
        log = run.reopen(closed);
    }
    // Last round: crash, then recover with the operating system's syncer.
    drop(log);
    run.crash();
    let segment_files = segment_file_count(&run.dir);
    let (log, report) = PartitionLog::open_with(&run.dir, run.cfg, NOW, Arc::new(OsSync)).unwrap();
    run.check_recovered(&log, &report, segment_files, false);
    run.stats.mid_op_crashes.fetch_add(
        run.sim.mid_op_crashes.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
}

#[test]
fn acknowledged_records_survive_power_loss() {
    let seeds = seeds("STROM_POWER_LOSS_SEED", "STROM_POWER_LOSS_CASES", 1, 60);
    let stats = Stats::default();
    run_cases("STROM_POWER_LOSS_SEED", &seeds, |seed| {
        power_loss_case(seed, &stats)
    });
    eprintln!("power loss: {} seeds, {stats:?}", seeds.len());
    if seeds.len() >= 20 {
        // The runs must actually crash, lose unsynced data and check
        // acknowledged data, or they prove nothing.
        assert!(
            stats.mid_op_crashes.load(Ordering::Relaxed) > 0,
            "{stats:?}"
        );
        assert!(
            stats.lost_unacked_records.load(Ordering::Relaxed) > 0,
            "{stats:?}"
        );
        assert!(
            stats.recoveries_truncating.load(Ordering::Relaxed) > 0,
            "{stats:?}"
        );
        assert!(
            stats.acked_records_checked.load(Ordering::Relaxed) > 1000,
            "{stats:?}"
        );
        assert!(stats.clean_reopens.load(Ordering::Relaxed) > 0, "{stats:?}");
        assert!(
            stats.later_segments_dropped.load(Ordering::Relaxed) > 0,
            "{stats:?}"
        );
        assert!(
            stats.retention_deletions.load(Ordering::Relaxed) > 0,
            "{stats:?}"
        );
        assert!(stats.truncations.load(Ordering::Relaxed) > 0, "{stats:?}");
    }
}

fn control_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        segment_ms: 1 << 50,
        index_interval_bytes: 100,
        retention_ms: -1,
        retention_bytes: -1,
        write_caching: false,
    }
}

/// Negative control: records that were appended but never synced do not
/// survive the simulated power loss. (If they did, the sim would keep
/// everything and the test above would prove nothing.)
#[test]
fn control_unsynced_appends_are_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    sim.sync_dir();
    let mut rng = Rng::new(7);
    let mut model = Vec::new();
    let (mut log, _) = PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
    for _ in 0..5 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    let plan = log.sync_plan().unwrap().unwrap();
    for file in &plan.files {
        sim.sync(file).unwrap();
    }
    let acked = log.synced(&plan);
    for _ in 0..40 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    assert!(
        log.segment_count() > 1,
        "the unsynced appends rolled segments"
    );
    // Written, but only to the page cache: the files hold them until the crash.
    let written: u64 = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(written > 1000);
    drop(log);
    sim.crash(CrashMode::default(), &mut rng);

    let (log, report) = PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
    assert_eq!(log.log_end_offset(), acked, "{report:?}");
    assert!((acked as usize) < model.len());
    assert_eq!(
        log.segment_count(),
        1,
        "segments created after the last dir sync vanished"
    );
    check_log(&log, &model, &mut rng);
}

/// Negative control: a segment whose `.log` was synced but whose directory
/// entry was not is gone after the crash, so the sim's directory model has
/// teeth too.
#[test]
fn control_unsynced_directory_entry_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    sim.sync_dir();
    let mut rng = Rng::new(8);
    let mut model = Vec::new();
    let (mut log, _) = PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
    while log.segment_count() < 3 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    let plan = log.sync_plan().unwrap().unwrap();
    let mut skipped_dir = false;
    for file in &plan.files {
        if file.metadata().unwrap().is_dir() {
            skipped_dir = true;
        } else {
            sim.sync(file).unwrap();
        }
    }
    assert!(skipped_dir, "a roll makes the plan sync the directory");
    drop(log);
    sim.crash(CrashMode::default(), &mut rng);
    let (log, _) = PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!((log.log_end_offset() as usize) < model.len());
    check_log(&log, &model, &mut rng);
}

/// Negative control for torn writes: when part of the unsynced tail plus
/// garbage reaches the disk, recovery has something to cut.
#[test]
fn control_torn_tail_is_cut() {
    let mut cut = 0;
    for seed in 0..20 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("topic-0");
        fs::create_dir(&dir).unwrap();
        let sim = Arc::new(CrashSim::new(&dir));
        sim.sync_dir();
        let mut rng = Rng::new(seed);
        let mut model = Vec::new();
        let mut cfg = control_config();
        cfg.segment_bytes = 1 << 20;
        let (mut log, _) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
        for _ in 0..3 {
            let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
            append_to(&mut log, &mut model, buf, values, NOW).unwrap();
        }
        let acked = log.sync_now().unwrap();
        for _ in 0..5 {
            let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
            append_to(&mut log, &mut model, buf, values, NOW).unwrap();
        }
        drop(log);
        let mode = CrashMode {
            torn: true,
            leaky_dir: false,
        };
        sim.crash(mode, &mut rng);
        let (log, report) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
        assert!(log.log_end_offset() >= acked);
        check_log(&log, &model, &mut rng);
        cut += u64::from(report.truncated_bytes > 0);
    }
    assert!(
        cut >= 3,
        "only {cut} of 20 torn crashes left something to cut"
    );
}
/// Regression test: a roll creates the next segment's files, and any
/// directory fsync after that (here the one `write_checkpoint` does; also
/// `close`, retention plus checkpoint, or a sync plan that fails half-way)
/// makes the new, still empty segment durable while the unsynced tail of the
/// previous segment is not. After the power loss the new segment starts above
/// the end of what survived of the previous one. Recovery must drop it
/// instead of keeping a log with a hole in its offsets: offsets in a hole
/// below the high watermark have no records (fetches there return nothing
/// and the offsets are skipped forever), and once a record is appended to the
/// new segment a fetch in the hole returns it before it is synced, above the
/// high watermark. Dropping the segment loses nothing acknowledged.
#[test]
fn a_segment_after_a_lost_tail_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    sim.sync_dir();
    let mut rng = Rng::new(3);
    let mut model = Vec::new();
    let cfg = control_config();
    let (mut log, _) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
    for _ in 0..3 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    let acked = log.sync_now().unwrap();
    let mut new_segment_base = 0;
    while log.segment_count() < 2 {
        new_segment_base = log.log_end_offset();
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, 1);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    assert!(
        new_segment_base > acked,
        "unsynced records {acked}..{new_segment_base} precede the new segment"
    );
    log.write_checkpoint().unwrap();
    drop(log);
    sim.crash(CrashMode::default(), &mut rng);
    assert_eq!(
        segment_file_count(&dir),
        2,
        "the checkpoint's directory sync made the new segment durable"
    );

    let (mut log, report) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
    assert_eq!(
        (
            report.segments,
            log.segment_count(),
            segment_file_count(&dir)
        ),
        (1, 1, 1),
        "the segment at {new_segment_base} was kept after the tail {acked}..{new_segment_base} \
         of the one before was lost: {report:?}"
    );
    assert_eq!(report.corrupt_batches, 0, "a lost tail is not corruption");
    assert_eq!(log.log_end_offset(), acked, "{report:?}");
    assert_eq!(log.high_watermark(), acked, "{report:?}");
    model.truncate(acked as usize);
    check_log(&log, &model, &mut rng);

    // Offsets go on right after the surviving records, and an unsynced
    // record is not visible.
    let (buf, values) = random_produce(&mut rng, 1, 1, 50, 1);
    append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    assert!(
        log.read(acked, 1 << 20).unwrap().is_none(),
        "read({acked}) returned the unsynced record appended there"
    );
    log.sync_now().unwrap();
    assert_eq!(log.high_watermark(), acked + 1);
    check_log(&log, &model, &mut rng);
    drop(log);
    let (log, report) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
    assert_eq!(log.log_end_offset(), acked + 1, "{report:?}");
    check_log(&log, &model, &mut rng);
}

/// Regression test: retention deletes only sealed segments that are wholly
/// synced and below the high watermark (as Kafka does). Removing segments
/// from the front moves the synced point, which is the high watermark
/// without write caching, to the next segment's base offset. If unsynced
/// segments could go, the high watermark would pass records that were never
/// synced; the deletion is not durable until the directory is synced, so a
/// power loss would bring those segments back with only their synced prefix
/// and a log end below the high watermark handed out before the crash:
/// consumers past the log end, and those offsets assigned again to new
/// records.
#[test]
fn retention_only_deletes_synced_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    sim.sync_dir();
    let mut rng = Rng::new(5);
    let mut model = Vec::new();
    let cfg = control_config();
    let (mut log, _) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
    while log.segment_count() < 3 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, NOW);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    let synced = log.sync_now().unwrap();
    // More records, unsynced; two more segments.
    while log.segment_count() < 5 {
        let (buf, values) = random_produce(&mut rng, 1, 3, 50, NOW);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    assert_eq!(log.high_watermark(), synced);
    // retention.bytes = 0: every sealed segment is over the limit, but only
    // the synced ones may go.
    log.set_config(LogConfig {
        retention_bytes: 0,
        ..cfg
    });
    log.enforce_retention(NOW).unwrap();
    let (start, hw) = (log.log_start_offset(), log.high_watermark());
    assert!(
        start > 0 && log.segment_count() < 5,
        "retention deleted nothing (log start {start})"
    );
    assert!(
        start <= synced,
        "retention deleted records up to {start}, synced only up to {synced}"
    );
    assert_eq!(
        hw, synced,
        "retention moved the high watermark past the synced offset"
    );
    assert!(
        log.segment_count() >= 2,
        "the unsynced sealed segments were deleted"
    );
    drop(log);
    sim.crash(CrashMode::default(), &mut rng);

    let (log, report) = PartitionLog::open_with(&dir, cfg, NOW, sim.clone()).unwrap();
    assert!(
        log.log_end_offset() >= hw,
        "high watermark {hw} was handed out, but the log ends at {} after the power loss \
         ({report:?})",
        log.log_end_offset()
    );
    check_log(&log, &model, &mut rng);
}

/// A fresh partition directory `topic-0` under `tmp` with a synced
/// directory entry and a sim, and a log of at least four segments (control
/// config) that was synced and checkpointed. Returns the log and the values
/// appended.
fn synced_multi_segment_log(
    tmp: &Path,
    rng: &mut Rng,
) -> (PathBuf, Arc<CrashSim>, PartitionLog, Vec<Vec<u8>>) {
    let dir = tmp.join("topic-0");
    fs::create_dir(&dir).unwrap();
    let sim = Arc::new(CrashSim::new(&dir));
    sim.sync_dir();
    let mut model = Vec::new();
    let (mut log, _) = PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
    while log.segment_count() < 4 {
        let (buf, values) = random_produce(rng, 2, 4, 60, NOW);
        append_to(&mut log, &mut model, buf, values, NOW).unwrap();
    }
    log.sync_now().unwrap();
    // A recovery point at the end: recovery would trust every segment.
    log.write_checkpoint().unwrap();
    (dir, sim, log, model)
}

/// Appends records that cannot be mistaken for earlier ones (their values
/// start with `new-`), fewer than `max_records` in all.
fn append_new_records(
    log: &mut PartitionLog,
    model: &mut Vec<Vec<u8>>,
    rng: &mut Rng,
    max_records: i64,
) -> i64 {
    let mut added = 0;
    loop {
        let count = rng.range(1, 4) as i64;
        if added + count >= max_records {
            return added;
        }
        let values: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                let len = rng.range(0, 40) as usize;
                let mut v = b"new-".to_vec();
                v.extend(rng.bytes(len));
                v
            })
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
        let buf = strom_storage::batch::encode_simple_batch(0, NOW, &refs);
        append_to(log, model, buf, values, NOW).unwrap();
        added += count;
    }
}

/// A follower truncates its diverged tail and takes other records at the
/// same offsets. After the power cut the new records are there (when they
/// were synced) and none of the old tail is: the cut was durable before
/// truncate_to returned, so neither a lost cut nor a directory entry of a
/// deleted segment brings old records back.
#[test]
fn a_truncated_tail_never_comes_back_after_power_loss() {
    for seed in 0..24 {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(seed);
        let (dir, sim, mut log, mut model) = synced_multi_segment_log(tmp.path(), &mut rng);
        let old_end = log.log_end_offset();
        let target = rng.range(1, old_end as u64 / 2) as i64;
        log.truncate_to(target).unwrap();
        let cut = log.log_end_offset();
        assert!(cut <= target && target - cut < 4, "cut {cut} for {target}");
        model.truncate(cut as usize);
        let added = append_new_records(&mut log, &mut model, &mut rng, old_end - cut);
        assert!(added > 0);
        let sync_new = seed % 2 == 0;
        if sync_new {
            log.sync_now().unwrap();
        }
        drop(log);
        let mode = CrashMode {
            torn: rng.chance(50),
            leaky_dir: rng.chance(50),
        };
        sim.crash(mode, &mut rng);

        let (log, report) =
            PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
        let end = log.log_end_offset();
        if sync_new {
            assert_eq!(end, cut + added, "seed {seed} {mode:?}: {report:?}");
        } else {
            assert!(cut <= end && end <= cut + added, "seed {seed}: end {end}");
        }
        if !mode.torn {
            // (Garbage after a torn append reads as corruption.)
            assert_eq!(report.corrupt_batches, 0, "seed {seed}: {report:?}");
        }
        // Every record up to the end is the new one at its offset (the old
        // tail's values differ), and the log ends where the new records do.
        assert_eq!(log.high_watermark(), end);
        check_log(&log, &model, &mut rng);
    }
}

/// The power fails at every sync of a truncation in turn. Whatever
/// survives is a consistent log that loses nothing below the cut: the old
/// log before the cut was durable, the cut one after (a torn cut may keep
/// some of the old tail, never less than the cut). Unless writes tear,
/// recovery never takes the state for corruption: no new segment ever sits
/// among old ones, and segments are only deleted from the end.
#[test]
fn a_truncation_interrupted_by_power_loss_leaves_a_consistent_log() {
    // truncate_to inside the log, or truncate_fully_and_start_at past the
    // end or inside the old log's offsets.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kind {
        To,
        FullyPastTheEnd,
        FullyInside,
    }
    let kinds = [Kind::To, Kind::FullyPastTheEnd, Kind::FullyInside];
    for (kind, torn) in kinds.into_iter().flat_map(|k| [(k, false), (k, true)]) {
        let full = kind != Kind::To;
        for fail_at in 0.. {
            let tmp = tempfile::tempdir().unwrap();
            let mut rng = Rng::new(fail_at + 100);
            let (dir, sim, mut log, model) = synced_multi_segment_log(tmp.path(), &mut rng);
            let old_end = log.log_end_offset();
            let target = match kind {
                Kind::To => old_end / 3,
                Kind::FullyPastTheEnd => old_end + 50,
                Kind::FullyInside => old_end / 2,
            };
            // Where truncate_to cuts: the start of the batch holding target.
            let cut = if full {
                target
            } else {
                let region = log.read_to_end(target, 1).unwrap().unwrap();
                let mut head = [0u8; 8];
                region
                    .file
                    .read_exact_at(&mut head, region.position)
                    .unwrap();
                i64::from_be_bytes(head)
            };
            sim.arm(fail_at);
            let result = if full {
                log.truncate_fully_and_start_at(target)
            } else {
                log.truncate_to(target)
            };
            let finished = result.is_ok();
            assert_eq!(finished, !sim.tripped(), "{result:?}");
            drop(log);
            let mode = CrashMode {
                torn,
                leaky_dir: true,
            };
            sim.crash(mode, &mut rng);
            let (log, report) =
                PartitionLog::open_with(&dir, control_config(), NOW, sim.clone()).unwrap();
            let end = log.log_end_offset();
            let context = format!("{kind:?}, {mode:?}, power lost at sync {fail_at}: {report:?}");
            if !torn {
                assert_eq!(report.corrupt_batches, 0, "{context}");
            }
            if full {
                assert!(end == old_end || end == target, "end {end}, {context}");
                if end == target {
                    assert_eq!(log.log_start_offset(), target, "{context}");
                }
            } else {
                assert!(cut <= end && end <= old_end, "end {end}, {context}");
            }
            if end <= old_end {
                check_log(&log, &model, &mut rng);
            }
            if finished {
                assert_eq!(end, cut, "{context}");
                break;
            }
            assert!(fail_at < 50, "the truncation never finished");
        }
    }
}

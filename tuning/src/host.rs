//! Host checks at `strom serve` start-up: kernel and io_uring, locked-memory
//! and open-file limits, the file system and free space of each log dir, and
//! usable cores against `--smp`.
//!
//! The checks are pure functions over [`HostFacts`], which [`HostFacts::gather`]
//! reads from a [`Root`] (`/proc/...`) and from the process (getrlimit,
//! sched_getaffinity, statfs); tests build facts by hand or point the root at a
//! fake tree. Each check returns a [`Verdict`]: a setting that makes Strom
//! unable to run is [`Verdict::Fatal`] with a message naming the fix; a
//! slow-but-working one is a [`Verdict::Warning`]. The engine runs them on the
//! main thread before any shard starts, and proves io_uring works by creating
//! an executor, explaining a failure with [`io_uring_failure`].
//!
//! [`raise_soft_limit`] is the one place that changes anything: it raises a
//! soft limit to its hard limit, which any process may do.

use crate::root::Root;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::fmt;
use std::path::{Path, PathBuf};

/// glommio refuses to create an executor below this RLIMIT_MEMLOCK (checked in
/// glommio's `Reactor::new`, whatever the process's capabilities).
pub const MEMLOCK_GLOMMIO_MIN_BYTES: u64 = 512 * 1024;
/// Below this, a process without CAP_IPC_LOCK cannot register glommio's 10 MiB
/// I/O buffer with io_uring (measured on Linux 6.18: 8 MiB fails, 8 MiB + 2 KiB
/// works, with 1 to 8 shards) and I/O takes the slower unregistered path.
/// 16 MiB leaves room; `unlimited` is what we recommend.
pub const MEMLOCK_RECOMMENDED_BYTES: u64 = 16 << 20;
/// Below this many open files the broker warns: every partition keeps its
/// active segment's three files open, and one file per older segment (Kafka
/// recommends 100,000).
pub const OPEN_FILES_RECOMMENDED_MIN: u64 = 65_536;
/// glommio needs the io_uring of Linux 5.8 or newer.
pub const KERNEL_MIN: (u32, u32) = (5, 8);
/// Bit of CAP_IPC_LOCK in `/proc/self/status` CapEff.
const CAP_IPC_LOCK_BIT: u32 = 14;

/// A resource limit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Value(u64),
    Unlimited,
}

impl Limit {
    /// From getrlimit's value (RLIM_INFINITY is all ones).
    pub fn from_raw(raw: u64) -> Limit {
        if raw == nix::libc::RLIM_INFINITY {
            Limit::Unlimited
        } else {
            Limit::Value(raw)
        }
    }

    /// `unlimited` or a number, as in `/proc/self/limits`.
    pub fn parse(text: &str) -> Option<Limit> {
        match text {
            "unlimited" => Some(Limit::Unlimited),
            number => number.parse().ok().map(Limit::Value),
        }
    }

    pub fn at_least(self, minimum: u64) -> bool {
        match self {
            Limit::Unlimited => true,
            Limit::Value(value) => value >= minimum,
        }
    }

    /// As a size: `8 MiB`, `unlimited`.
    pub fn bytes(self) -> String {
        match self {
            Limit::Unlimited => "unlimited".to_string(),
            Limit::Value(value) => format_bytes(value),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Unlimited => f.write_str("unlimited"),
            Limit::Value(value) => write!(f, "{value}"),
        }
    }
}

/// Soft and hard value of one resource limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitPair {
    pub soft: Limit,
    pub hard: Limit,
}

/// The limits the checks look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rlimit {
    LockedMemory,
    OpenFiles,
}

impl Rlimit {
    pub fn name(self) -> &'static str {
        match self {
            Rlimit::LockedMemory => "RLIMIT_MEMLOCK",
            Rlimit::OpenFiles => "RLIMIT_NOFILE",
        }
    }

    fn resource(self) -> Resource {
        match self {
            Rlimit::LockedMemory => Resource::RLIMIT_MEMLOCK,
            Rlimit::OpenFiles => Resource::RLIMIT_NOFILE,
        }
    }

    /// This process's limit; `None` if getrlimit fails.
    pub fn current(self) -> Option<LimitPair> {
        let (soft, hard) = getrlimit(self.resource()).ok()?;
        Some(LimitPair {
            soft: Limit::from_raw(soft),
            hard: Limit::from_raw(hard),
        })
    }
}

/// What [`raise_soft_limit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raise {
    /// The soft limit already was the hard limit.
    AtHard,
    Raised {
        from: Limit,
        to: Limit,
    },
    Failed {
        error: String,
    },
}

/// Raises the soft limit to the hard limit (allowed without privileges). More
/// locked memory or open files is only a permission, not a use: a soft limit
/// of 1024 files stopped the broker at a few hundred partitions.
pub fn raise_soft_limit(which: Rlimit) -> Raise {
    let (soft, hard) = match getrlimit(which.resource()) {
        Ok(limits) => limits,
        Err(err) => {
            return Raise::Failed {
                error: err.to_string(),
            }
        }
    };
    if soft >= hard {
        return Raise::AtHard;
    }
    match setrlimit(which.resource(), hard, hard) {
        Ok(()) => Raise::Raised {
            from: Limit::from_raw(soft),
            to: Limit::from_raw(hard),
        },
        Err(err) => Raise::Failed {
            error: err.to_string(),
        },
    }
}

/// Cores this process may run on (its affinity mask), in order.
pub fn usable_cpus() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

/// File system of a log dir, from statfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    /// `f_type`, e.g. 0xEF53 for ext2/3/4.
    pub magic: u64,
    /// Bytes an unprivileged writer may still use (`f_bavail * f_bsize`).
    pub available_bytes: u64,
}

/// A configured log dir and its file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDirFacts {
    pub path: PathBuf,
    /// The statfs result, or why it failed.
    pub fs: Result<FsStats, String>,
}

/// Everything the start-up checks look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// `/proc/sys/kernel/osrelease`, e.g. `6.8.0-45-generic`.
    pub kernel_release: Option<String>,
    /// `kernel.io_uring_disabled`: 0 allowed, 1 only for `kernel.io_uring_group`
    /// and CAP_SYS_ADMIN, 2 disabled. Absent before Linux 6.6.
    pub io_uring_disabled: Option<u64>,
    /// `Seccomp:` of `/proc/self/status`: 0 none, 1 strict, 2 filter.
    pub seccomp_mode: Option<u64>,
    /// CAP_IPC_LOCK in effect: locked memory is not limited by RLIMIT_MEMLOCK
    /// (except for glommio's own start-up check).
    pub cap_ipc_lock: bool,
    pub memlock: Option<LimitPair>,
    pub open_files: Option<LimitPair>,
    /// Cores in this process's affinity mask.
    pub usable_cores: usize,
    pub log_dirs: Vec<LogDirFacts>,
}

impl HostFacts {
    /// Reads the facts of this process and host: kernel facts from `root`,
    /// limits and cores from the process, file systems by statfs.
    pub fn gather(root: &Root, log_dirs: &[PathBuf]) -> HostFacts {
        let mut facts = HostFacts::from_root(root);
        facts.memlock = Rlimit::LockedMemory.current();
        facts.open_files = Rlimit::OpenFiles.current();
        facts.usable_cores = usable_cpus().len();
        facts.log_dirs = log_dirs
            .iter()
            .map(|path| LogDirFacts {
                path: path.clone(),
                fs: stat_fs(path),
            })
            .collect();
        facts
    }

    /// The facts a root tree holds (kernel version, io_uring sysctl, seccomp,
    /// capabilities); limits, cores and log dirs left empty.
    pub fn from_root(root: &Root) -> HostFacts {
        let status = root.read("proc/self/status").unwrap_or_default();
        let status_field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let cap_effective =
            status_field("CapEff").and_then(|hex| u64::from_str_radix(hex, 16).ok());
        HostFacts {
            kernel_release: root.read("proc/sys/kernel/osrelease"),
            io_uring_disabled: root.read_u64("proc/sys/kernel/io_uring_disabled"),
            seccomp_mode: status_field("Seccomp").and_then(|mode| mode.parse().ok()),
            cap_ipc_lock: cap_effective.is_some_and(|caps| caps & (1 << CAP_IPC_LOCK_BIT) != 0),
            memlock: None,
            open_files: None,
            usable_cores: 1,
            log_dirs: Vec::new(),
        }
    }
}

/// statfs of the directory, or of its nearest existing ancestor when it does
/// not exist yet (it is created on that file system).
fn stat_fs(path: &Path) -> Result<FsStats, String> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| Path::new("/"));
    let stats = nix::sys::statfs::statfs(existing)
        .map_err(|err| format!("statfs {}: {err}", existing.display()))?;
    let block_size = u64::try_from(stats.block_size()).unwrap_or(0);
    #[allow(clippy::unnecessary_cast)] // fs_type_t is i64 on glibc, u32 or i32 elsewhere
    let magic = stats.filesystem_type().0 as u64;
    Ok(FsStats {
        magic,
        available_bytes: stats.blocks_available().saturating_mul(block_size),
    })
}

/// How bad a finding is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but slower or riskier than it should; one log line.
    Warning(String),
    /// Strom cannot run; the message names the fix.
    Fatal(String),
}

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `kernel`, `io_uring`, `memlock`, `open_files`,
    /// `cores`, `log_dir_fs`, `log_dir_space`.
    pub name: &'static str,
    pub verdict: Verdict,
}

impl Check {
    pub fn is_fatal(&self) -> bool {
        matches!(self.verdict, Verdict::Fatal(_))
    }
}

/// What the broker is about to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// `--smp`; `None` means one shard per usable core.
    pub smp: Option<usize>,
    /// `strom.log.dir.min.free.bytes`.
    pub log_dir_min_free_bytes: u64,
}

/// Every check that needs no io_uring probe, in order.
pub fn check(facts: &HostFacts, wanted: &Wanted) -> Vec<Check> {
    let mut checks = vec![
        Check {
            name: "kernel",
            verdict: check_kernel(facts),
        },
        Check {
            name: "io_uring",
            verdict: check_io_uring_sysctl(facts),
        },
        Check {
            name: "memlock",
            verdict: check_memlock(facts),
        },
        Check {
            name: "open_files",
            verdict: check_open_files(facts),
        },
        Check {
            name: "cores",
            verdict: check_cores(facts, wanted.smp),
        },
    ];
    for dir in &facts.log_dirs {
        checks.push(Check {
            name: "log_dir_fs",
            verdict: check_log_dir_fs(dir),
        });
        checks.push(Check {
            name: "log_dir_space",
            verdict: check_log_dir_space(dir, wanted.log_dir_min_free_bytes),
        });
    }
    checks
}

/// `6.8.0-45-generic` → (6, 8).
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub fn check_kernel(facts: &HostFacts) -> Verdict {
    let Some(release) = &facts.kernel_release else {
        return Verdict::Ok; // unknown: the io_uring probe decides
    };
    match kernel_version(release) {
        Some(version) if version < KERNEL_MIN => Verdict::Fatal(format!(
            "Linux {release} is too old: Strom needs the io_uring of Linux {}.{} or newer; \
             upgrade the kernel",
            KERNEL_MIN.0, KERNEL_MIN.1
        )),
        _ => Verdict::Ok,
    }
}

pub fn check_io_uring_sysctl(facts: &HostFacts) -> Verdict {
    match facts.io_uring_disabled {
        Some(2) => Verdict::Fatal(
            "io_uring is disabled on this host (sysctl kernel.io_uring_disabled = 2) and Strom \
             runs on io_uring; fix: sysctl -w kernel.io_uring_disabled=0 as root (persist it \
             in /etc/sysctl.d/)"
                .to_string(),
        ),
        // 1: allowed for kernel.io_uring_group; the probe tells.
        _ => Verdict::Ok,
    }
}

/// How to raise RLIMIT_MEMLOCK, for messages.
const MEMLOCK_FIX: &str = "`ulimit -l unlimited` (or at least `ulimit -l 16384`, in KiB) in the \
     shell that starts strom; `LimitMEMLOCK=infinity` in its systemd unit; or \
     `USER - memlock unlimited` in /etc/security/limits.conf (`strom tune apply --only memlock` \
     writes one), then log in again";

pub fn check_memlock(facts: &HostFacts) -> Verdict {
    let Some(LimitPair { soft, hard }) = facts.memlock else {
        return Verdict::Ok; // unknown: glommio's own check decides
    };
    if !soft.at_least(MEMLOCK_GLOMMIO_MIN_BYTES) {
        return Verdict::Fatal(format!(
            "RLIMIT_MEMLOCK (max locked memory) is {} and the hard limit {} stops Strom from \
             raising it; glommio needs at least {} locked for its io_uring rings, {} or more for \
             fast I/O. Fix: {MEMLOCK_FIX}",
            soft.bytes(),
            hard.bytes(),
            format_bytes(MEMLOCK_GLOMMIO_MIN_BYTES),
            format_bytes(MEMLOCK_RECOMMENDED_BYTES),
        ));
    }
    if !soft.at_least(MEMLOCK_RECOMMENDED_BYTES) && !facts.cap_ipc_lock {
        return Verdict::Warning(format!(
            "RLIMIT_MEMLOCK (max locked memory) is {}: below {} glommio cannot register its I/O \
             buffers with io_uring and uses slower unregistered I/O. Fix: {MEMLOCK_FIX}",
            soft.bytes(),
            format_bytes(MEMLOCK_RECOMMENDED_BYTES),
        ));
    }
    Verdict::Ok
}

pub fn check_open_files(facts: &HostFacts) -> Verdict {
    match facts.open_files {
        Some(LimitPair { soft, .. }) if !soft.at_least(OPEN_FILES_RECOMMENDED_MIN) => {
            Verdict::Warning(format!(
                "low open-file limit (RLIMIT_NOFILE {soft}, recommended {OPEN_FILES_RECOMMENDED_MIN} \
                 or more): each partition keeps 3 files open, plus 1 per older segment; CreateTopics \
                 beyond it is refused. Fix: `ulimit -n 1048576`, systemd `LimitNOFILE=1048576`, or \
                 `USER - nofile 1048576` in /etc/security/limits.conf"
            ))
        }
        _ => Verdict::Ok,
    }
}

/// More shards than usable cores works (shards share cores, round-robin) but
/// each shard polls its rings and waits on the others: a warning, not fatal,
/// so a small VM or CI runner can still run `--smp 4`.
pub fn check_cores(facts: &HostFacts, smp: Option<usize>) -> Verdict {
    match smp {
        Some(smp) if smp > facts.usable_cores => Verdict::Warning(format!(
            "--smp {smp} is more than the {} cores this process may use (its CPU affinity): \
             shards will share cores and wait on each other; use --smp {} or fewer",
            facts.usable_cores, facts.usable_cores
        )),
        _ => Verdict::Ok,
    }
}

/// statfs magic numbers (linux/magic.h).
pub mod fs_magic {
    pub const EXT4: u64 = 0xEF53;
    pub const XFS: u64 = 0x5846_5342;
    pub const TMPFS: u64 = 0x0102_1994;
    pub const RAMFS: u64 = 0x8584_58F6;
    pub const OVERLAYFS: u64 = 0x794C_7630;
    pub const AUFS: u64 = 0x6175_6673;
    pub const NFS: u64 = 0x6969;
    pub const CIFS: u64 = 0xFF53_4D42;
    pub const SMB2: u64 = 0xFE53_4D42;
    pub const FUSE: u64 = 0x6573_5546;
    pub const BTRFS: u64 = 0x9123_683E;
    pub const ZFS: u64 = 0x2FC1_2FC1;
    pub const F2FS: u64 = 0xF2F5_2010;
}

/// A file system's name for messages.
pub fn fs_name(magic: u64) -> String {
    use fs_magic::*;
    match magic {
        EXT4 => "ext4".into(),
        XFS => "xfs".into(),
        TMPFS => "tmpfs".into(),
        RAMFS => "ramfs".into(),
        OVERLAYFS => "overlayfs".into(),
        AUFS => "aufs".into(),
        NFS => "nfs".into(),
        CIFS | SMB2 => "cifs/smb".into(),
        FUSE => "fuse".into(),
        BTRFS => "btrfs".into(),
        ZFS => "zfs".into(),
        F2FS => "f2fs".into(),
        other => format!("file system type {other:#x}"),
    }
}

pub fn check_log_dir_fs(dir: &LogDirFacts) -> Verdict {
    use fs_magic::*;
    let path = dir.path.display();
    let stats = match &dir.fs {
        Ok(stats) => stats,
        Err(err) => {
            return Verdict::Warning(format!(
                "log dir {path}: cannot read its file system: {err}"
            ))
        }
    };
    let name = fs_name(stats.magic);
    match stats.magic {
        EXT4 | XFS => Verdict::Ok,
        TMPFS | RAMFS => Verdict::Warning(format!(
            "log dir {path} is on {name} (memory): every record is lost at reboot and the log \
             competes with the broker for RAM; use a directory on XFS or ext4"
        )),
        OVERLAYFS | AUFS => Verdict::Warning(format!(
            "log dir {path} is on {name} (a container's writable layer): slower, and lost with \
             the container; mount a volume (XFS or ext4) at the log dir"
        )),
        NFS | CIFS | SMB2 | FUSE => Verdict::Warning(format!(
            "log dir {path} is on {name}: fsync and lock guarantees vary over the network or \
             FUSE; use a local XFS or ext4 disk"
        )),
        _ => Verdict::Warning(format!(
            "log dir {path} is on {name}; Strom is tested on XFS and ext4"
        )),
    }
}

pub fn check_log_dir_space(dir: &LogDirFacts, min_free_bytes: u64) -> Verdict {
    match &dir.fs {
        Ok(stats) if stats.available_bytes < min_free_bytes => Verdict::Warning(format!(
            "log dir {} has {} free, below strom.log.dir.min.free.bytes ({}): produce requests \
             get KAFKA_STORAGE_ERROR until space is freed",
            dir.path.display(),
            format_bytes(stats.available_bytes),
            format_bytes(min_free_bytes)
        )),
        _ => Verdict::Ok,
    }
}

/// Explains why creating an io_uring executor failed, from what the host says.
pub fn io_uring_failure(facts: &HostFacts, error: &str) -> Check {
    let cause = if error.contains("MemLockLimit") {
        format!(
            "too little locked memory (RLIMIT_MEMLOCK {}); fix: {MEMLOCK_FIX}",
            facts
                .memlock
                .map_or("unknown".to_string(), |l| l.soft.bytes())
        )
    } else if let Verdict::Fatal(message) = check_kernel(facts) {
        message
    } else if facts.io_uring_disabled == Some(1) {
        "io_uring is restricted to the group in sysctl kernel.io_uring_group and to \
         CAP_SYS_ADMIN (kernel.io_uring_disabled = 1); fix: add strom's user to that group, or \
         sysctl -w kernel.io_uring_disabled=0"
            .to_string()
    } else if facts.seccomp_mode == Some(2) {
        "a seccomp filter is active and likely blocks the io_uring system calls (the default \
         profiles of Docker and containerd do); fix: run with a seccomp profile that allows \
         io_uring_setup, io_uring_enter and io_uring_register (docker run --security-opt \
         seccomp=PROFILE.json)"
            .to_string()
    } else {
        format!(
            "Strom needs Linux {}.{}+ with io_uring enabled (sysctl kernel.io_uring_disabled = 0), \
             not blocked by seccomp, and RLIMIT_MEMLOCK of at least {}",
            KERNEL_MIN.0,
            KERNEL_MIN.1,
            format_bytes(MEMLOCK_GLOMMIO_MIN_BYTES)
        )
    };
    Check {
        name: "io_uring",
        verdict: Verdict::Fatal(format!(
            "cannot start an io_uring executor ({error}): {cause}"
        )),
    }
}

/// `16 MiB`, `512 KiB`, `17.3 GiB`, `100 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                // One decimal is enough for a message; f64 is exact to 2^53.
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    fn facts() -> HostFacts {
        HostFacts {
            kernel_release: Some("6.8.0-45-generic".into()),
            io_uring_disabled: Some(0),
            seccomp_mode: Some(0),
            cap_ipc_lock: false,
            memlock: Some(LimitPair {
                soft: Limit::Unlimited,
                hard: Limit::Unlimited,
            }),
            open_files: Some(LimitPair {
                soft: Limit::Value(1 << 20),
                hard: Limit::Value(1 << 20),
            }),
            usable_cores: 4,
            log_dirs: vec![LogDirFacts {
                path: "/var/lib/strom".into(),
                fs: Ok(FsStats {
                    magic: fs_magic::XFS,
                    available_bytes: 100 << 30,
                }),
            }],
        }
    }

    const WANTED: Wanted = Wanted {
        smp: Some(4),
        log_dir_min_free_bytes: 1 << 30,
    };

    fn verdicts(facts: &HostFacts) -> Vec<(&'static str, Verdict)> {
        check(facts, &WANTED)
            .into_iter()
            .filter(|c| c.verdict != Verdict::Ok)
            .map(|c| (c.name, c.verdict))
            .collect()
    }

    fn memlock(soft: u64, hard: u64) -> Option<LimitPair> {
        Some(LimitPair {
            soft: Limit::Value(soft),
            hard: Limit::Value(hard),
        })
    }

    #[test]
    fn a_good_host_passes_every_check() {
        assert_eq!(verdicts(&facts()), []);
    }

    #[test]
    fn too_low_memlock_is_fatal_and_names_the_fix() {
        let mut facts = facts();
        facts.memlock = memlock(64 << 10, 64 << 10);
        let found = verdicts(&facts);
        assert_eq!(found.len(), 1, "{found:?}");
        let (name, Verdict::Fatal(message)) = &found[0] else {
            panic!("fatal expected: {found:?}");
        };
        assert_eq!(*name, "memlock");
        for needle in [
            "RLIMIT_MEMLOCK",
            "64 KiB",
            "512 KiB",
            "ulimit -l",
            "LimitMEMLOCK=infinity",
            "/etc/security/limits.conf",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        assert!(!message.contains('\n'));
        // Root's CAP_IPC_LOCK does not help: glommio checks the limit itself.
        facts.cap_ipc_lock = true;
        assert!(check(&facts, &WANTED).iter().any(Check::is_fatal));
    }

    #[test]
    fn a_working_but_small_memlock_is_a_warning_unless_cap_ipc_lock() {
        let mut facts = facts();
        facts.memlock = memlock(8 << 20, 8 << 20);
        let found = verdicts(&facts);
        assert!(
            matches!(&found[..], [("memlock", Verdict::Warning(m))] if m.contains("8 MiB") && m.contains("unregistered")),
            "{found:?}"
        );
        facts.cap_ipc_lock = true;
        assert_eq!(verdicts(&facts), []);
        facts.cap_ipc_lock = false;
        facts.memlock = memlock(16 << 20, 16 << 20);
        assert_eq!(verdicts(&facts), []);
    }

    #[test]
    fn disabled_io_uring_and_old_kernels_are_fatal() {
        let mut facts = facts();
        facts.io_uring_disabled = Some(2);
        let found = verdicts(&facts);
        assert!(
            matches!(&found[..], [("io_uring", Verdict::Fatal(m))] if m.contains("sysctl -w kernel.io_uring_disabled=0")),
            "{found:?}"
        );
        let mut facts = self::facts();
        facts.kernel_release = Some("5.4.0-150-generic".into());
        let found = verdicts(&facts);
        assert!(
            matches!(&found[..], [("kernel", Verdict::Fatal(m))] if m.contains("5.8")),
            "{found:?}"
        );
        facts.kernel_release = Some("5.15.0".into());
        assert_eq!(verdicts(&facts), []);
    }

    #[test]
    fn a_failed_probe_is_explained_by_the_likeliest_cause() {
        let explain =
            |facts: &HostFacts| match io_uring_failure(facts, "Operation not permitted").verdict {
                Verdict::Fatal(message) => message,
                other => panic!("fatal expected: {other:?}"),
            };
        let mut facts = facts();
        facts.seccomp_mode = Some(2);
        assert!(explain(&facts).contains("seccomp"));
        facts.io_uring_disabled = Some(1);
        assert!(explain(&facts).contains("kernel.io_uring_group"));
        let message = explain(&self::facts());
        assert!(
            message.starts_with("cannot start an io_uring executor (Operation not permitted)"),
            "{message}"
        );
        assert!(message.contains("kernel.io_uring_disabled"), "{message}");
    }

    #[test]
    fn open_files_and_cores_are_warnings() {
        let mut facts = facts();
        facts.open_files = Some(LimitPair {
            soft: Limit::Value(1024),
            hard: Limit::Value(4096),
        });
        facts.usable_cores = 2;
        let found = verdicts(&facts);
        assert!(
            matches!(&found[0], ("open_files", Verdict::Warning(m)) if m.contains("1024") && m.contains("ulimit -n")),
            "{found:?}"
        );
        assert!(
            matches!(&found[1], ("cores", Verdict::Warning(m)) if m.contains("--smp 4") && m.contains("--smp 2 or fewer")),
            "{found:?}"
        );
        assert_eq!(check_cores(&facts, None), Verdict::Ok);
    }

    #[test]
    fn log_dirs_on_tmpfs_or_overlay_or_short_of_space_warn() {
        let dir = |magic, available_bytes| LogDirFacts {
            path: "/data".into(),
            fs: Ok(FsStats {
                magic,
                available_bytes,
            }),
        };
        assert_eq!(check_log_dir_fs(&dir(fs_magic::EXT4, 0)), Verdict::Ok);
        for (magic, needle) in [
            (fs_magic::TMPFS, "tmpfs"),
            (fs_magic::OVERLAYFS, "overlayfs"),
            (fs_magic::NFS, "nfs"),
            (fs_magic::BTRFS, "btrfs"),
        ] {
            match check_log_dir_fs(&dir(magic, 0)) {
                Verdict::Warning(m) => assert!(m.contains(needle) && m.contains("/data"), "{m}"),
                other => panic!("warning expected for {needle}: {other:?}"),
            }
        }
        match check_log_dir_space(&dir(fs_magic::XFS, 512 << 20), 1 << 30) {
            Verdict::Warning(m) => assert!(
                m.contains("512 MiB free")
                    && m.contains("1 GiB")
                    && m.contains("strom.log.dir.min.free.bytes"),
                "{m}"
            ),
            other => panic!("warning expected: {other:?}"),
        }
        assert_eq!(
            check_log_dir_space(&dir(fs_magic::XFS, 1 << 30), 1 << 30),
            Verdict::Ok
        );
        let unreadable = LogDirFacts {
            path: "/data".into(),
            fs: Err("statfs /data: EACCES".into()),
        };
        assert!(matches!(check_log_dir_fs(&unreadable), Verdict::Warning(_)));
    }

    #[test]
    fn kernel_facts_come_from_the_root_tree() {
        let host = FakeHost::new();
        host.file("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
            .file("proc/sys/kernel/io_uring_disabled", "1\n")
            .file(
                "proc/self/status",
                "Name:\tstrom\nCapEff:\t000001ffffffffff\nSeccomp:\t2\nSeccomp_filters:\t1\n",
            );
        let facts = HostFacts::from_root(&host.root());
        assert_eq!(facts.kernel_release.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(facts.io_uring_disabled, Some(1));
        assert_eq!(facts.seccomp_mode, Some(2));
        assert!(facts.cap_ipc_lock);
        host.file(
            "proc/self/status",
            "CapEff:\t0000000000000000\nSeccomp:\t0\n",
        );
        let facts = HostFacts::from_root(&host.root());
        assert!(!facts.cap_ipc_lock);
        assert_eq!(facts.seccomp_mode, Some(0));
        // An empty tree: nothing known, nothing fatal.
        let empty = FakeHost::new();
        let facts = HostFacts::from_root(&empty.root());
        assert_eq!(check_kernel(&facts), Verdict::Ok);
        assert_eq!(check_io_uring_sysctl(&facts), Verdict::Ok);
    }

    #[test]
    fn gathers_this_process_and_a_real_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("not/yet");
        let facts = HostFacts::gather(&Root::real(), &[dir.path().to_path_buf(), missing]);
        assert!(facts.usable_cores >= 1);
        assert!(facts.memlock.is_some() && facts.open_files.is_some());
        for log_dir in &facts.log_dirs {
            let stats = log_dir.fs.as_ref().expect("statfs");
            assert!(stats.available_bytes > 0);
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(format_bytes(512 << 10), "512 KiB");
        assert_eq!(format_bytes(16 << 20), "16 MiB");
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes((17 << 30) + (300 << 20)), "17.3 GiB");
        assert_eq!(format_bytes(100), "100 bytes");
        assert_eq!(Limit::parse("unlimited"), Some(Limit::Unlimited));
        assert_eq!(Limit::from_raw(u64::MAX), Limit::Unlimited);
        assert!(Limit::Value(10).at_least(10));
    }
}

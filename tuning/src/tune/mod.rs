//! `strom tune`: host settings that matter to a thread-per-core broker, each
//! checked by a small tuner that reads `/proc` and `/sys` under a [`Root`].
//!
//! A tuner reports [`Finding`]s (current value, recommended value, why) and, for
//! each setting it would change, the [`Write`]s that change it. Nothing writes
//! but [`apply`], which `strom tune apply` calls on the real root and tests call
//! on a fake tree; `--dry-run` renders the same writes as a shell script
//! ([`render_script`]). Every tuner lives in its own file:
//!
//! | tuner | file | settings |
//! |---|---|---|
//! | `governor` | [`governor`] | CPU frequency governor |
//! | `thp` | [`thp`] | transparent hugepages (enabled, defrag) |
//! | `swappiness` | [`swappiness`] | `vm.swappiness` |
//! | `clocksource` | [`clocksource`] | kernel clock source |
//! | `irq` | [`irq`] | IRQ affinity of NIC and disk queues |
//! | `disk` | [`disk`] | NVMe scheduler and nomerges |
//! | `net` | [`net`] | somaxconn, SYN backlog, socket buffer limits |
//! | `busy-poll` | [`net`] | `net.core.busy_poll` / `busy_read` (optional) |
//! | `fs` | [`fs`] | `fs.aio-max-nr`, `fs.file-max` |
//! | `memlock` | [`memlock`] | RLIMIT_MEMLOCK for login sessions |

pub mod clocksource;
pub mod disk;
pub mod fs;
pub mod governor;
pub mod irq;
pub mod memlock;
pub mod net;
pub mod swappiness;
pub mod thp;

pub use crate::root::{
    bracketed_choice, choices, format_cpu_list, natural_order, parse_cpu_list, Root,
};

use serde::Serialize;
use std::io;
use std::path::PathBuf;

/// What a tuner thinks of one setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Already good.
    Ok,
    /// Worth changing; `strom tune apply` changes it.
    Change,
    /// A trade-off (e.g. busy polling spends CPU for latency): changed only when
    /// its tuner is named with `--only`.
    Optional,
    /// The host has no such setting (no cpufreq in a VM, no NVMe disk).
    NotAvailable,
}

impl Status {
    /// The word shown in the STATUS column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Change => "change",
            Status::Optional => "optional",
            Status::NotAvailable => "n/a",
        }
    }
}

/// How a [`Write`] treats a missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// A kernel file (`/proc/sys/...`, `/sys/...`): it must exist; never created.
    KernelFile,
    /// A configuration file (`/etc/...`): created or replaced.
    ConfigFile,
}

/// One file write that changes a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Absolute path (under the root the tuner read).
    pub path: PathBuf,
    /// What is written; a newline is appended, as `echo` does.
    pub value: String,
    pub mode: WriteMode,
}

impl Write {
    pub fn kernel(root: &Root, relative: &str, value: impl Into<String>) -> Write {
        Write {
            path: root.path(relative),
            value: value.into(),
            mode: WriteMode::KernelFile,
        }
    }

    pub fn config(root: &Root, relative: &str, value: impl Into<String>) -> Write {
        Write {
            path: root.path(relative),
            value: value.into(),
            mode: WriteMode::ConfigFile,
        }
    }

    /// The shell command that performs this write: `sysctl -w key=value` for a
    /// `/proc/sys` file of the real root, otherwise `echo value > path` (or
    /// `printf` for several lines).
    pub fn command(&self, root: &Root) -> String {
        let path = self.path.to_string_lossy();
        if root.is_real() {
            if let Some(key) = path.strip_prefix("/proc/sys/") {
                let key = key.replace('/', ".");
                return format!(
                    "sysctl -w {}",
                    shell_quote(&format!("{key}={}", self.value))
                );
            }
        }
        if self.value.contains('\n') {
            let lines: Vec<String> = self.value.lines().map(shell_quote).collect();
            format!(
                "printf '%s\\n' {} > {}",
                lines.join(" "),
                shell_quote(&path)
            )
        } else {
            format!("echo {} > {}", shell_quote(&self.value), shell_quote(&path))
        }
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+=/.,:@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One setting as a tuner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Name of the tuner that made it (what `--only` takes).
    pub tuner: &'static str,
    /// The setting, e.g. `vm.swappiness` or `disk.nvme0n1.scheduler`.
    pub key: String,
    /// Current value; `None` when not available.
    pub current: Option<String>,
    /// Recommended value; `None` when there is nothing to recommend.
    pub recommended: Option<String>,
    pub status: Status,
    /// Why the recommendation, or why not available.
    pub why: String,
    /// Writes that would bring the setting to the recommended value.
    pub writes: Vec<Write>,
}

impl Finding {
    /// A setting this host does not have.
    pub fn not_available(
        tuner: &'static str,
        key: impl Into<String>,
        why: impl Into<String>,
    ) -> Finding {
        Finding {
            tuner,
            key: key.into(),
            current: None,
            recommended: None,
            status: Status::NotAvailable,
            why: format!("not available on this host: {}", why.into()),
            writes: Vec::new(),
        }
    }
}

/// A tuner: reads its settings under a root and says what it would change.
pub trait Tuner {
    /// Short name, used by `--only` (e.g. `governor`).
    fn name(&self) -> &'static str;

    /// One finding per setting; never fails (missing files are
    /// [`Status::NotAvailable`]).
    fn check(&self, root: &Root) -> Vec<Finding>;

    /// The writes that bring every setting not [`Status::Ok`] to its
    /// recommended value (optional ones included; [`plan`] filters them).
    fn plan(&self, root: &Root) -> Vec<Write> {
        self.check(root)
            .into_iter()
            .filter(|f| matches!(f.status, Status::Change | Status::Optional))
            .flat_map(|f| f.writes)
            .collect()
    }
}

/// Every tuner, in report order.
pub fn all_tuners() -> Vec<Box<dyn Tuner>> {
    vec![
        Box::new(governor::Governor),
        Box::new(thp::TransparentHugepages),
        Box::new(swappiness::Swappiness),
        Box::new(clocksource::Clocksource),
        Box::new(irq::IrqAffinity),
        Box::new(disk::Disk),
        Box::new(net::Net),
        Box::new(net::BusyPoll),
        Box::new(fs::FsLimits),
        Box::new(memlock::Memlock),
    ]
}

/// Names of every tuner (for `--only`).
pub const TUNER_NAMES: [&str; 10] = [
    "governor",
    "thp",
    "swappiness",
    "clocksource",
    "irq",
    "disk",
    "net",
    "busy-poll",
    "fs",
    "memlock",
];

/// Which tuners to run: all, or the ones named.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    only: Vec<String>,
}

impl Selection {
    pub fn all() -> Selection {
        Selection::default()
    }

    /// The tuners named (an empty list means all).
    pub fn only(names: &[String]) -> Selection {
        Selection {
            only: names.to_vec(),
        }
    }

    fn runs(&self, tuner: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == tuner)
    }

    /// Optional settings change only when their tuner is named.
    fn applies_optional(&self, tuner: &str) -> bool {
        self.only.iter().any(|name| name == tuner)
    }
}

/// Findings of the selected tuners.
pub fn check(root: &Root, selection: &Selection) -> Vec<Finding> {
    all_tuners()
        .iter()
        .filter(|t| selection.runs(t.name()))
        .flat_map(|t| t.check(root))
        .collect()
}

/// What `apply` would do: the findings to change, each with its writes.
/// Optional findings are included only when their tuner is named.
pub fn plan(findings: &[Finding], selection: &Selection) -> Vec<Finding> {
    findings
        .iter()
        .filter(|f| match f.status {
            Status::Change => true,
            Status::Optional => selection.applies_optional(f.tuner),
            Status::Ok | Status::NotAvailable => false,
        })
        .filter(|f| !f.writes.is_empty())
        .cloned()
        .collect()
}

/// The planned changes as a shell script (`strom tune apply --dry-run`).
/// Optional settings left out are listed as comments.
pub fn render_script(root: &Root, findings: &[Finding], selection: &Selection) -> String {
    let planned = plan(findings, selection);
    let mut out = String::from("#!/bin/sh\n");
    let writes: usize = planned.iter().map(|f| f.writes.len()).sum();
    if writes == 0 {
        out.push_str("# strom tune: nothing to change on this host.\n");
    } else {
        out.push_str(&format!(
            "# strom tune apply: {writes} write(s) for {} setting(s); run as root. \
             Changes last until reboot.\n",
            planned.len()
        ));
    }
    for finding in &planned {
        out.push_str(&format!(
            "\n# {}: {} -> {} ({})\n",
            finding.key,
            finding.current.as_deref().unwrap_or("-"),
            finding.recommended.as_deref().unwrap_or("-"),
            finding.why
        ));
        for write in &finding.writes {
            out.push_str(&write.command(root));
            out.push('\n');
        }
    }
    let skipped: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.status == Status::Optional && !selection.applies_optional(f.tuner))
        .collect();
    for finding in skipped {
        out.push_str(&format!(
            "\n# optional, not applied (name it with --only {}): {} {} -> {}\n",
            finding.tuner,
            finding.key,
            finding.current.as_deref().unwrap_or("-"),
            finding.recommended.as_deref().unwrap_or("-"),
        ));
    }
    out
}

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub value: String,
    pub source: io::Error,
}

impl WriteError {
    /// The write failed for lack of privileges (not root).
    pub fn is_permission(&self) -> bool {
        self.source.kind() == io::ErrorKind::PermissionDenied
    }
}

/// Performs the writes, in order, going on after a failure (one IRQ the
/// kernel manages itself must not stop the rest). Returns one result per write.
pub fn apply(writes: &[Write]) -> Vec<Result<(), WriteError>> {
    writes.iter().map(apply_one).collect()
}

fn apply_one(write: &Write) -> Result<(), WriteError> {
    use std::io::Write as _;
    let fail = |source| WriteError {
        path: write.path.clone(),
        value: write.value.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match write.mode {
        // Kernel files are written in place; creating one in a tree where it is
        // missing would hide a wrong path.
        WriteMode::KernelFile => options.truncate(true),
        WriteMode::ConfigFile => options.create(true).truncate(true),
    };
    let mut file = options.open(&write.path).map_err(fail)?;
    // One write call: sysfs takes a value per write(2).
    file.write_all(format!("{}\n", write.value).as_bytes())
        .map_err(fail)
}

/// Helpers shared by the sysctl-style tuners.
pub(crate) mod sysctl {
    use super::{Finding, Root, Status, Write};

    /// `/proc/sys/net/core/somaxconn` for `net.core.somaxconn`.
    pub fn path(key: &str) -> String {
        format!("proc/sys/{}", key.replace('.', "/"))
    }

    /// A numeric sysctl that should be at least `minimum`.
    pub fn at_least(
        tuner: &'static str,
        root: &Root,
        key: &str,
        minimum: u64,
        why: &str,
    ) -> Finding {
        let Some(text) = root.read(&path(key)) else {
            return Finding::not_available(tuner, key, format!("no /proc/sys entry for {key}"));
        };
        let Ok(current) = text.parse::<u64>() else {
            return Finding::not_available(tuner, key, format!("cannot parse '{text}'"));
        };
        let ok = current >= minimum;
        Finding {
            tuner,
            key: key.to_string(),
            current: Some(current.to_string()),
            recommended: Some(format!(">= {minimum}")),
            status: if ok { Status::Ok } else { Status::Change },
            why: why.to_string(),
            writes: if ok {
                Vec::new()
            } else {
                vec![Write::kernel(root, &path(key), minimum.to_string())]
            },
        }
    }
}

/// Builds fake `/proc` and `/sys` trees for tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::Root;
    use std::path::Path;

    pub struct FakeHost {
        pub dir: tempfile::TempDir,
    }

    impl FakeHost {
        pub fn new() -> FakeHost {
            FakeHost {
                dir: tempfile::tempdir().expect("tempdir"),
            }
        }

        pub fn root(&self) -> Root {
            Root::at(self.dir.path())
        }

        pub fn file(&self, relative: &str, content: &str) -> &FakeHost {
            let path = self.dir.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, content).expect("write fake file");
            self
        }

        pub fn dir(&self, relative: &str) -> &FakeHost {
            std::fs::create_dir_all(self.dir.path().join(relative)).expect("mkdir");
            self
        }

        /// A symlink at `relative` pointing to `target` (relative to the link's
        /// directory, as in sysfs).
        pub fn link(&self, relative: &str, target: &str) -> &FakeHost {
            let path = self.dir.path().join(relative);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(Path::new(target), &path).expect("symlink");
            self
        }

        pub fn read(&self, relative: &str) -> String {
            std::fs::read_to_string(self.dir.path().join(relative)).expect("read fake file")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeHost;
    use super::*;

    #[test]
    fn commands_use_sysctl_only_on_the_real_root() {
        let real = Root::real();
        let write = Write::kernel(&real, "proc/sys/net/core/somaxconn", "4096");
        assert_eq!(write.command(&real), "sysctl -w net.core.somaxconn=4096");
        let write = Write::kernel(&real, "proc/sys/net/ipv4/tcp_rmem", "4096 131072 16777216");
        assert_eq!(
            write.command(&real),
            "sysctl -w 'net.ipv4.tcp_rmem=4096 131072 16777216'"
        );
        let write = Write::kernel(
            &real,
            "sys/kernel/mm/transparent_hugepage/enabled",
            "madvise",
        );
        assert_eq!(
            write.command(&real),
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
        );
        let fake = Root::at("/tmp/fake root");
        let write = Write::kernel(&fake, "proc/sys/vm/swappiness", "1");
        assert_eq!(
            write.command(&fake),
            "echo 1 > '/tmp/fake root/proc/sys/vm/swappiness'"
        );
        let write = Write::config(&real, "etc/x.conf", "# it's\n* - memlock unlimited");
        assert_eq!(
            write.command(&real),
            r"printf '%s\n' '# it'\''s' '* - memlock unlimited' > /etc/x.conf"
        );
    }

    #[test]
    fn every_tuner_is_named_and_answers_on_an_empty_tree() {
        let host = FakeHost::new();
        let names: Vec<&str> = all_tuners().iter().map(|t| t.name()).collect();
        assert_eq!(names, TUNER_NAMES);
        let findings = check(&host.root(), &Selection::all());
        assert!(!findings.is_empty());
        for finding in &findings {
            assert_eq!(finding.status, Status::NotAvailable, "{finding:?}");
            assert!(
                finding.why.starts_with("not available on this host"),
                "{finding:?}"
            );
        }
        assert!(plan(&findings, &Selection::all()).is_empty());
        assert!(
            render_script(&host.root(), &findings, &Selection::all()).contains("nothing to change")
        );
    }

    #[test]
    fn apply_writes_kernel_files_and_reports_failures_without_stopping() {
        let host = FakeHost::new();
        host.file("proc/sys/vm/swappiness", "60\n");
        let root = host.root();
        let writes = vec![
            Write::kernel(&root, "proc/sys/vm/missing", "1"),
            Write::kernel(&root, "proc/sys/vm/swappiness", "1"),
            Write::config(
                &root,
                "etc/security/limits.d/99-strom.conf",
                "* - memlock unlimited",
            ),
        ];
        let results = apply(&writes);
        assert!(
            results[0].is_err(),
            "a missing kernel file is never created"
        );
        assert!(!root.exists("proc/sys/vm/missing"));
        assert!(results[1].is_ok());
        assert_eq!(host.read("proc/sys/vm/swappiness"), "1\n");
        // The config file's directory does not exist: reported, not created.
        let err = results[2].as_ref().expect_err("no limits.d");
        assert!(err.to_string().contains("99-strom.conf"), "{err}");
    }

    #[test]
    fn optional_settings_are_planned_only_when_named() {
        let host = FakeHost::new();
        host.file("proc/sys/net/core/busy_poll", "0\n")
            .file("proc/sys/net/core/busy_read", "0\n")
            .file("proc/sys/vm/swappiness", "60\n");
        let root = host.root();
        let findings = check(&root, &Selection::all());
        let planned = plan(&findings, &Selection::all());
        assert_eq!(
            planned.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["vm.swappiness"]
        );
        let script = render_script(&root, &findings, &Selection::all());
        assert!(
            script.contains("optional, not applied (name it with --only busy-poll)"),
            "{script}"
        );
        let only = Selection::only(&["busy-poll".to_string()]);
        let findings = check(&root, &only);
        let planned = plan(&findings, &only);
        assert_eq!(planned.len(), 2, "{planned:?}");
    }
}

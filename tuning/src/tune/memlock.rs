//! RLIMIT_MEMLOCK of login sessions: `unlimited`.
//!
//! glommio locks memory for its io_uring rings and registers an I/O buffer with
//! the kernel per shard. Below [`MEMLOCK_GLOMMIO_MIN_BYTES`] strom cannot start;
//! below [`MEMLOCK_RECOMMENDED_BYTES`] (without CAP_IPC_LOCK) the buffer cannot
//! be registered and I/O takes the slower unregistered path. Reads the limit
//! of this process (`/proc/self/limits`, inherited from the shell that runs
//! `strom tune`); the fix is a PAM limits file, which applies at the next
//! login. Services take their limit from systemd's `LimitMEMLOCK=` instead.

use super::{Finding, Root, Status, Tuner, Write};
use crate::host::{format_bytes, Limit, MEMLOCK_GLOMMIO_MIN_BYTES, MEMLOCK_RECOMMENDED_BYTES};

pub struct Memlock;

const KEY: &str = "memlock";
/// Written where PAM reads it (`pam_limits`); `*` does not cover root.
pub const LIMITS_FILE: &str = "etc/security/limits.d/99-strom.conf";
const LIMITS_CONTENT: &str =
    "# Written by `strom tune apply`: glommio locks memory for its io_uring rings.\n\
                              *     -  memlock  unlimited\n\
                              root  -  memlock  unlimited";

impl Tuner for Memlock {
    fn name(&self) -> &'static str {
        "memlock"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let Some((soft, hard)) = root
            .read("proc/self/limits")
            .and_then(|text| parse_limits(&text))
        else {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no /proc/self/limits",
            )];
        };
        let ok = soft.at_least(MEMLOCK_RECOMMENDED_BYTES);
        let pam = root.exists("etc/security/limits.d");
        let why = if ok {
            "enough locked memory for glommio's io_uring rings and registered I/O buffers"
                .to_string()
        } else {
            format!(
                "glommio locks memory for its io_uring rings: below {} strom cannot start, \
                 below {} (without CAP_IPC_LOCK) I/O buffers cannot be registered and I/O is slower; {}. \
                 For a systemd service set LimitMEMLOCK=infinity",
                format_bytes(MEMLOCK_GLOMMIO_MIN_BYTES),
                format_bytes(MEMLOCK_RECOMMENDED_BYTES),
                if pam {
                    "the limits file applies at the next login"
                } else {
                    "no /etc/security/limits.d here: set it where strom is started (ulimit -l unlimited)"
                }
            )
        };
        vec![Finding {
            tuner: self.name(),
            key: KEY.to_string(),
            current: Some(format!("{} (hard {})", soft.bytes(), hard.bytes())),
            recommended: Some("unlimited".to_string()),
            status: if ok { Status::Ok } else { Status::Change },
            why,
            writes: if ok || !pam {
                Vec::new()
            } else {
                vec![Write::config(root, LIMITS_FILE, LIMITS_CONTENT)]
            },
        }]
    }
}

/// Soft and hard "Max locked memory" of a `/proc/PID/limits` text.
fn parse_limits(text: &str) -> Option<(Limit, Limit)> {
    let line = text.lines().find(|l| l.starts_with("Max locked memory"))?;
    let mut words = line["Max locked memory".len()..].split_whitespace();
    let soft = Limit::parse(words.next()?)?;
    let hard = Limit::parse(words.next()?)?;
    Some((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max open files            1024                 524288               files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn a_low_limit_gets_a_pam_limits_file() {
        let host = FakeHost::new();
        host.file("proc/self/limits", LIMITS)
            .dir("etc/security/limits.d");
        let root = host.root();
        let finding = &Memlock.check(&root)[0];
        assert_eq!(finding.status, Status::Change);
        assert_eq!(finding.current.as_deref(), Some("8 MiB (hard 8 MiB)"));
        assert!(
            finding.why.contains("LimitMEMLOCK=infinity"),
            "{}",
            finding.why
        );
        for result in crate::tune::apply(&Memlock.plan(&root)) {
            result.expect("write");
        }
        let written = host.read(LIMITS_FILE);
        assert!(
            written.contains("*     -  memlock  unlimited\n"),
            "{written}"
        );
        assert!(
            written.contains("root  -  memlock  unlimited\n"),
            "{written}"
        );
    }

    #[test]
    fn unlimited_is_ok_and_no_pam_means_no_write() {
        let host = FakeHost::new();
        host.file(
            "proc/self/limits",
            "Max locked memory         unlimited            unlimited            bytes\n",
        );
        assert_eq!(Memlock.check(&host.root())[0].status, Status::Ok);
        host.file("proc/self/limits", LIMITS);
        let finding = &Memlock.check(&host.root())[0];
        assert_eq!(finding.status, Status::Change);
        assert!(finding.writes.is_empty());
        assert!(
            finding.why.contains("ulimit -l unlimited"),
            "{}",
            finding.why
        );
    }
}

//! File-system sysctls: `fs.aio-max-nr` and `fs.file-max`.

use super::sysctl;
use super::{Finding, Root, Tuner};

pub struct FsLimits;

/// 1,048,576: what Seastar-based servers (Redpanda, ScyllaDB) ask for.
const AIO_MAX_MIN: u64 = 1 << 20;
/// 1,048,576 open files host-wide.
const FILE_MAX_MIN: u64 = 1 << 20;

impl Tuner for FsLimits {
    fn name(&self) -> &'static str {
        "fs"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        vec![
            sysctl::at_least(
                self.name(),
                root,
                "fs.aio-max-nr",
                AIO_MAX_MIN,
                "host-wide cap on Linux AIO requests; Strom uses io_uring, but Seastar-based \
                 neighbours and AIO libraries fail with EAGAIN at the default 65536",
            ),
            sysctl::at_least(
                self.name(),
                root,
                "fs.file-max",
                FILE_MAX_MIN,
                "host-wide open files; each partition keeps 3 files open plus 1 per older \
                 segment, and every connection is one more",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;
    use crate::tune::Status;

    #[test]
    fn low_limits_are_raised_and_high_ones_kept() {
        let host = FakeHost::new();
        host.file("proc/sys/fs/aio-max-nr", "65536\n")
            .file("proc/sys/fs/file-max", "9223372036854775807\n");
        let root = host.root();
        let findings = FsLimits.check(&root);
        assert_eq!(findings[0].key, "fs.aio-max-nr");
        assert_eq!(findings[0].status, Status::Change);
        assert_eq!(findings[1].status, Status::Ok);
        let writes = FsLimits.plan(&root);
        assert_eq!(
            writes[0].command(&root),
            format!(
                "echo 1048576 > {}",
                root.path("proc/sys/fs/aio-max-nr").display()
            )
        );
        for result in crate::tune::apply(&writes) {
            result.expect("write");
        }
        assert_eq!(host.read("proc/sys/fs/aio-max-nr"), "1048576\n");
        assert_eq!(host.read("proc/sys/fs/file-max"), "9223372036854775807\n");
    }
}

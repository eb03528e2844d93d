//! `vm.swappiness` = 1: keep the broker's memory in RAM.
//!
//! The page cache holds the log; with the default 60 the kernel swaps out idle
//! broker memory (index buffers, group state) to keep more cache, and the next
//! request that touches it waits on swap-in. 1 (Kafka's recommendation) swaps
//! only to avoid running out of memory. Reads and writes
//! `/proc/sys/vm/swappiness`.

use super::sysctl;
use super::{Finding, Root, Status, Tuner, Write};

pub struct Swappiness;

const KEY: &str = "vm.swappiness";
const RECOMMENDED: u64 = 1;
/// Values up to this are left alone: the gain below it is small.
const ACCEPTABLE_MAX: u64 = 10;

impl Tuner for Swappiness {
    fn name(&self) -> &'static str {
        "swappiness"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let path = sysctl::path(KEY);
        let Some(current) = root.read_u64(&path) else {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no /proc/sys/vm/swappiness",
            )];
        };
        let ok = current <= ACCEPTABLE_MAX;
        vec![Finding {
            tuner: self.name(),
            key: KEY.to_string(),
            current: Some(current.to_string()),
            recommended: Some(RECOMMENDED.to_string()),
            status: if ok { Status::Ok } else { Status::Change },
            why: if ok {
                "broker memory stays in RAM; swap only to avoid running out"
            } else {
                "the kernel swaps out idle broker memory to grow the page cache; \
                 the next request touching it waits on swap-in"
            }
            .to_string(),
            writes: if ok {
                Vec::new()
            } else {
                vec![Write::kernel(root, &path, RECOMMENDED.to_string())]
            },
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    #[test]
    fn default_swappiness_is_lowered_to_one() {
        let host = FakeHost::new();
        host.file("proc/sys/vm/swappiness", "60\n");
        let root = host.root();
        let finding = &Swappiness.check(&root)[0];
        assert_eq!(finding.status, Status::Change);
        assert_eq!(finding.current.as_deref(), Some("60"));
        for result in crate::tune::apply(&Swappiness.plan(&root)) {
            result.expect("write");
        }
        assert_eq!(host.read("proc/sys/vm/swappiness"), "1\n");
        assert_eq!(Swappiness.check(&root)[0].status, Status::Ok);
    }

    #[test]
    fn low_values_are_left_alone() {
        let host = FakeHost::new();
        host.file("proc/sys/vm/swappiness", "10\n");
        assert_eq!(Swappiness.check(&host.root())[0].status, Status::Ok);
        assert!(Swappiness.plan(&host.root()).is_empty());
    }
}

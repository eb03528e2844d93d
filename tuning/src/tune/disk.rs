//! NVMe block queues: scheduler `none`, `nomerges` = 2.
//!
//! An NVMe device has deep hardware queues, one per core; an I/O scheduler in
//! front of them adds a lock and reordering for no gain, and trying to merge
//! adjacent requests costs CPU per request while Strom already writes whole
//! batches. Reads and writes `/sys/block/nvme*/queue/{scheduler,nomerges}`.
//! Other disks are left alone.

use super::{bracketed_choice, choices, Finding, Root, Status, Tuner, Write};

pub struct Disk;

const SCHEDULER: &str = "none";
/// 2: the block layer makes no merge attempts at all.
const NOMERGES: &str = "2";

impl Tuner for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let mut findings = Vec::new();
        for disk in root
            .list("sys/block")
            .into_iter()
            .filter(|d| d.starts_with("nvme"))
        {
            let queue = format!("sys/block/{disk}/queue");
            // Hidden multipath paths (nvme0c0n1) have no scheduler of their own.
            let Some(scheduler) = root.read(&format!("{queue}/scheduler")) else {
                continue;
            };
            findings.push(check_scheduler(root, &disk, &queue, &scheduler));
            if let Some(nomerges) = root.read(&format!("{queue}/nomerges")) {
                findings.push(check_nomerges(root, &disk, &queue, &nomerges));
            }
        }
        if findings.is_empty() {
            findings.push(Finding::not_available(
                self.name(),
                "disk.nvme",
                "no NVMe disks",
            ));
        }
        findings
    }
}

fn check_scheduler(root: &Root, disk: &str, queue: &str, text: &str) -> Finding {
    let current = bracketed_choice(text).unwrap_or_else(|| text.to_string());
    let offered = choices(text).iter().any(|c| c == SCHEDULER);
    let (status, why) = if current == SCHEDULER {
        (Status::Ok, "NVMe queues go straight to the device")
    } else if offered {
        (
            Status::Change,
            "an I/O scheduler in front of NVMe's per-core hardware queues adds a lock \
             and reordering for no gain",
        )
    } else {
        (
            Status::NotAvailable,
            "the kernel offers no 'none' scheduler for this disk",
        )
    };
    Finding {
        tuner: "disk",
        key: format!("disk.{disk}.scheduler"),
        current: Some(current),
        recommended: Some(SCHEDULER.to_string()),
        status,
        why: why.to_string(),
        writes: if status == Status::Change {
            vec![Write::kernel(
                root,
                &format!("{queue}/scheduler"),
                SCHEDULER,
            )]
        } else {
            Vec::new()
        },
    }
}

fn check_nomerges(root: &Root, disk: &str, queue: &str, current: &str) -> Finding {
    let ok = current == NOMERGES;
    Finding {
        tuner: "disk",
        key: format!("disk.{disk}.nomerges"),
        current: Some(current.to_string()),
        recommended: Some(NOMERGES.to_string()),
        status: if ok { Status::Ok } else { Status::Change },
        why: if ok {
            "no merge attempts: requests go to the device as issued"
        } else {
            "merge attempts cost CPU per request; NVMe serves small requests at full \
             speed and Strom already writes whole batches"
        }
        .to_string(),
        writes: if ok {
            Vec::new()
        } else {
            vec![Write::kernel(root, &format!("{queue}/nomerges"), NOMERGES)]
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    #[test]
    fn nvme_queues_get_no_scheduler_and_no_merges() {
        let host = FakeHost::new();
        host.file(
            "sys/block/nvme0n1/queue/scheduler",
            "[mq-deadline] kyber none\n",
        )
        .file("sys/block/nvme0n1/queue/nomerges", "0\n")
        .file("sys/block/nvme1n1/queue/scheduler", "[none] mq-deadline\n")
        .file("sys/block/nvme1n1/queue/nomerges", "2\n")
        .dir("sys/block/nvme0c0n1/queue")
        .file("sys/block/sda/queue/scheduler", "[mq-deadline] none\n")
        .file("sys/block/sda/queue/nomerges", "0\n");
        let root = host.root();
        let findings = Disk.check(&root);
        let summary: Vec<(String, Status)> =
            findings.iter().map(|f| (f.key.clone(), f.status)).collect();
        assert_eq!(
            summary,
            [
                ("disk.nvme0n1.scheduler".to_string(), Status::Change),
                ("disk.nvme0n1.nomerges".to_string(), Status::Change),
                ("disk.nvme1n1.scheduler".to_string(), Status::Ok),
                ("disk.nvme1n1.nomerges".to_string(), Status::Ok),
            ]
        );
        for result in crate::tune::apply(&Disk.plan(&root)) {
            result.expect("write");
        }
        assert_eq!(host.read("sys/block/nvme0n1/queue/scheduler"), "none\n");
        assert_eq!(host.read("sys/block/nvme0n1/queue/nomerges"), "2\n");
        assert_eq!(
            host.read("sys/block/sda/queue/scheduler"),
            "[mq-deadline] none\n"
        );
        assert!(Disk.check(&root).iter().all(|f| f.status == Status::Ok));
    }

    #[test]
    fn no_nvme_is_not_available() {
        let host = FakeHost::new();
        host.file("sys/block/vda/queue/scheduler", "[mq-deadline] none\n");
        let findings = Disk.check(&host.root());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].status, Status::NotAvailable);
        assert!(findings[0].why.contains("no NVMe disks"));
    }
}

//! IRQ affinity: NIC and disk queue interrupts spread across cores, not all on
//! CPU 0.
//!
//! An interrupt runs its handler, and the softirq after it (TCP receive, I/O
//! completion), on the CPU it is routed to. When every NIC and disk queue lands
//! on CPU 0, that core becomes the bottleneck of the whole host and its shard
//! loses the time. Devices are found from `/sys/class/net/*/device` and
//! `/sys/block/*/device`; their interrupts in `/proc/interrupts` by name
//! (`eth0-TxRx-0`, `virtio2-input.0`, `nvme0q1`) or PCI address
//! (`PCI-MSIX-0000:00:03.0`, `mlx5_comp0@pci:0000:3b:00.0`); where each goes
//! from `/proc/irq/N/effective_affinity_list` (else `smp_affinity_list`). The
//! plan routes them round-robin over the online CPUs.

use super::{format_cpu_list, parse_cpu_list, Finding, Root, Status, Tuner, Write};

pub struct IrqAffinity;

const KEY: &str = "irq.affinity";

/// A device whose interrupts we look for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    /// `eth0`, `nvme0n1`, `vda`.
    name: String,
    /// Words that name its interrupts: the interface name, the device's sysfs
    /// name (`virtio2`, `nvme0`) and its PCI address.
    tokens: Vec<String>,
}

/// One device interrupt and where it is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeviceIrq {
    number: u32,
    device: String,
    cpus: Vec<usize>,
}

impl Tuner for IrqAffinity {
    fn name(&self) -> &'static str {
        "irq"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let Some(interrupts) = root.read("proc/interrupts") else {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no /proc/interrupts",
            )];
        };
        let online = root
            .read("sys/devices/system/cpu/online")
            .and_then(|text| parse_cpu_list(&text))
            .unwrap_or_default();
        let devices = devices(root);
        let irqs = device_irqs(root, &interrupts, &devices);
        if irqs.is_empty() {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no NIC or disk interrupts found in /proc/interrupts",
            )];
        }
        if online.len() < 2 {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "one online CPU: nothing to spread over",
            )];
        }
        let mut names: Vec<&str> = Vec::new();
        for irq in &irqs {
            if !names.contains(&irq.device.as_str()) {
                names.push(&irq.device);
            }
        }
        let where_to: Vec<usize> = irqs.iter().flat_map(|irq| irq.cpus.clone()).collect();
        let all_on_cpu0 = irqs.len() >= 2 && irqs.iter().all(|irq| irq.cpus == [0]);
        let current = if all_on_cpu0 {
            format!("{} IRQs ({}) all on CPU 0", irqs.len(), names.join(", "))
        } else {
            format!(
                "{} IRQs ({}) on CPUs {}",
                irqs.len(),
                names.join(", "),
                format_cpu_list(&where_to)
            )
        };
        let writes = if all_on_cpu0 {
            irqs.iter()
                .enumerate()
                .map(|(i, irq)| {
                    Write::kernel(
                        root,
                        &format!("proc/irq/{}/smp_affinity_list", irq.number),
                        online[i % online.len()].to_string(),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        vec![Finding {
            tuner: self.name(),
            key: KEY.to_string(),
            current: Some(current),
            recommended: Some(format!("spread over CPUs {}", format_cpu_list(&online))),
            status: if all_on_cpu0 {
                Status::Change
            } else {
                Status::Ok
            },
            why: if all_on_cpu0 {
                "every NIC and disk interrupt (and its softirq work: TCP receive, I/O \
                 completion) runs on CPU 0, which becomes the host's bottleneck; \
                 irqbalance, if running, may move them again"
            } else {
                "device interrupts are not all on one core"
            }
            .to_string(),
            writes,
        }]
    }
}

/// NICs and disks that are real devices (have a `device` link).
fn devices(root: &Root) -> Vec<Device> {
    let mut found = Vec::new();
    for (class_dir, name) in root
        .list("sys/class/net")
        .into_iter()
        .map(|n| ("sys/class/net", n))
        .chain(root.list("sys/block").into_iter().map(|n| ("sys/block", n)))
    {
        let Some(components) = root.resolve_components(&format!("{class_dir}/{name}/device"))
        else {
            continue; // lo, loop0, dm-0: virtual, no interrupts of their own
        };
        let mut tokens = vec![name.clone()];
        if let Some(last) = components.last() {
            tokens.push(last.clone());
        }
        // The nearest PCI address: bridges above the device have their own
        // (port service) interrupts.
        if let Some(pci) = components.iter().rev().find(|c| is_pci_address(c)) {
            tokens.push(pci.clone());
        }
        tokens.dedup();
        found.push(Device { name, tokens });
    }
    found
}

/// `0000:3b:00.0`: domain, bus, device, function.
fn is_pci_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 12
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b':',
            10 => *b == b'.',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Whether `token` occurs in `line` as a word of its own: `virtio2` in
/// `virtio2-input.0` but not in `virtio20-input.0`; `nvme0` in `nvme0q3`.
fn names_device(line: &str, token: &str) -> bool {
    let mut start = 0;
    while let Some(found) = line[start..].find(token) {
        let at = start + found;
        let end = at + token.len();
        let before_ok = line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let after = line[end..].chars().next();
        let after_ok = match after {
            None => true,
            Some('q') => token.starts_with("nvme"),
            Some(c) => !c.is_ascii_alphanumeric(),
        };
        if before_ok && after_ok {
            return true;
        }
        start = at + 1;
    }
    false
}

/// Numbered lines of `/proc/interrupts` that belong to one of the devices,
/// with where each is routed; sorted by number.
fn device_irqs(root: &Root, interrupts: &str, devices: &[Device]) -> Vec<DeviceIrq> {
    let mut irqs = Vec::new();
    for line in interrupts.lines() {
        let Some((number, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(number) = number.parse::<u32>() else {
            continue; // NMI, LOC, ...: per-CPU, not routable
        };
        // Skip the per-CPU counts; what remains names the chip and the handler.
        let description = rest
            .split_whitespace()
            .skip_while(|word| word.chars().all(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" ");
        let Some(device) = devices
            .iter()
            .find(|d| d.tokens.iter().any(|t| names_device(&description, t)))
        else {
            continue;
        };
        let cpus = ["effective_affinity_list", "smp_affinity_list"]
            .iter()
            .filter_map(|file| root.read(&format!("proc/irq/{number}/{file}")))
            .filter_map(|text| parse_cpu_list(&text))
            .find(|cpus| !cpus.is_empty());
        let Some(cpus) = cpus else {
            continue; // not routable from user space
        };
        irqs.push(DeviceIrq {
            number,
            device: device.name.clone(),
            cpus,
        });
    }
    irqs.sort_by_key(|irq| irq.number);
    irqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    /// A host with an ixgbe-style NIC (eth0, PCI 0000:3b:00.0 behind bridge
    /// 0000:00:01.0), an NVMe disk (nvme0 at 0000:5e:00.0), a virtio NIC and
    /// a loopback device; `cpu0_only` routes every device IRQ to CPU 0.
    fn host(cpu0_only: bool) -> FakeHost {
        let host = FakeHost::new();
        host.file("sys/devices/system/cpu/online", "0-3\n")
            .dir("sys/devices/pci0000:00/0000:00:01.0/0000:3b:00.0/net/eth0")
            .link("sys/class/net/eth0", "../../devices/pci0000:00/0000:00:01.0/0000:3b:00.0/net/eth0")
            .link("sys/devices/pci0000:00/0000:00:01.0/0000:3b:00.0/net/eth0/device", "../../../0000:3b:00.0")
            .dir("sys/devices/pci0000:00/0000:00:03.0/virtio2/net/ens3")
            .link("sys/class/net/ens3", "../../devices/pci0000:00/0000:00:03.0/virtio2/net/ens3")
            .link("sys/devices/pci0000:00/0000:00:03.0/virtio2/net/ens3/device", "../../../virtio2")
            .dir("sys/devices/virtual/net/lo")
            .link("sys/class/net/lo", "../../devices/virtual/net/lo")
            .dir("sys/devices/pci0000:00/0000:5e:00.0/nvme/nvme0/nvme0n1")
            .link("sys/block/nvme0n1", "../devices/pci0000:00/0000:5e:00.0/nvme/nvme0/nvme0n1")
            .link("sys/devices/pci0000:00/0000:5e:00.0/nvme/nvme0/nvme0n1/device", "../../nvme0")
            .dir("sys/devices/virtual/block/loop0")
            .link("sys/block/loop0", "../devices/virtual/block/loop0")
            .file(
                "proc/interrupts",
                "            CPU0       CPU1       CPU2       CPU3\n\
                   0:         40          0          0          0   IO-APIC   2-edge      timer\n\
                  24:          0          0          0          0   PCI-MSI 524288-edge      aerdrv\n\
                  25:        100          0          0          0   PCI-MSIX-0000:3b:00.0   0-edge      eth0-TxRx-0\n\
                  26:        100          0          0          0   PCI-MSIX-0000:3b:00.0   1-edge      eth0-TxRx-1\n\
                  27:          5          0          0          0   PCI-MSIX-0000:3b:00.0   2-edge      eth0\n\
                  28:          9          0          0          0   PCI-MSIX-0000:5e:00.0   0-edge      nvme0q0\n\
                  29:          9          0          0          0   PCI-MSIX-0000:5e:00.0   1-edge      nvme0q1\n\
                  30:          9          0          0          0   PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n\
                  31:          9          0          0          0   PCI-MSIX-0000:00:04.0   1-edge      virtio20-input.0\n\
                 NMI:          0          0          0          0   Non-maskable interrupts\n\
                 LOC:       1000       1000       1000       1000   Local timer interrupts\n",
            );
        for irq in [0, 24, 25, 26, 27, 28, 29, 30, 31] {
            let cpus = if cpu0_only {
                "0"
            } else {
                ["0", "1", "2", "3"][irq as usize % 4]
            };
            host.file(
                &format!("proc/irq/{irq}/smp_affinity_list"),
                &format!("{cpus}\n"),
            );
        }
        host
    }

    #[test]
    fn finds_nic_and_nvme_interrupts_by_name_and_pci_address() {
        let host = host(true);
        let root = host.root();
        let devices = devices(&root);
        let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["ens3", "eth0", "nvme0n1"]);
        assert_eq!(devices[1].tokens, ["eth0", "0000:3b:00.0"]);
        assert_eq!(devices[2].tokens, ["nvme0n1", "nvme0", "0000:5e:00.0"]);
        let irqs = device_irqs(
            &root,
            &root.read("proc/interrupts").expect("interrupts"),
            &devices,
        );
        let numbers: Vec<u32> = irqs.iter().map(|i| i.number).collect();
        // Not the timer, not the bridge's aerdrv, not virtio20.
        assert_eq!(numbers, [25, 26, 27, 28, 29, 30]);
        assert_eq!(irqs[5].device, "ens3");
    }

    #[test]
    fn interrupts_all_on_cpu0_are_spread_round_robin() {
        let host = host(true);
        let root = host.root();
        let finding = &IrqAffinity.check(&root)[0];
        assert_eq!(finding.status, Status::Change, "{finding:?}");
        assert_eq!(
            finding.current.as_deref(),
            Some("6 IRQs (eth0, nvme0n1, ens3) all on CPU 0")
        );
        assert_eq!(finding.recommended.as_deref(), Some("spread over CPUs 0-3"));
        let writes = IrqAffinity.plan(&root);
        assert_eq!(writes.len(), 6);
        for result in crate::tune::apply(&writes) {
            result.expect("write");
        }
        let routed: Vec<String> = [25, 26, 27, 28, 29, 30]
            .iter()
            .map(|n| host.read(&format!("proc/irq/{n}/smp_affinity_list")))
            .collect();
        assert_eq!(routed, ["0\n", "1\n", "2\n", "3\n", "0\n", "1\n"]);
        // Untouched: not a NIC or disk queue.
        assert_eq!(host.read("proc/irq/0/smp_affinity_list"), "0\n");
        assert_eq!(host.read("proc/irq/24/smp_affinity_list"), "0\n");
        assert_eq!(IrqAffinity.check(&root)[0].status, Status::Ok);
    }

    #[test]
    fn spread_interrupts_are_left_alone() {
        let host = host(false);
        let finding = &IrqAffinity.check(&host.root())[0];
        assert_eq!(finding.status, Status::Ok);
        assert!(IrqAffinity.plan(&host.root()).is_empty());
    }

    #[test]
    fn effective_affinity_wins_over_the_allowed_mask() {
        let host = host(false);
        for irq in [25, 26, 27, 28, 29, 30] {
            host.file(&format!("proc/irq/{irq}/smp_affinity_list"), "0-3\n")
                .file(&format!("proc/irq/{irq}/effective_affinity_list"), "0\n");
        }
        assert_eq!(IrqAffinity.check(&host.root())[0].status, Status::Change);
    }

    #[test]
    fn hosts_without_device_interrupts_or_with_one_cpu_are_not_available() {
        let host = FakeHost::new();
        host.file(
            "proc/interrupts",
            "           CPU0\n  0:  1  IO-APIC 2-edge timer\n",
        );
        assert_eq!(
            IrqAffinity.check(&host.root())[0].status,
            Status::NotAvailable
        );
        let host = super::tests::host(true);
        host.file("sys/devices/system/cpu/online", "0\n");
        let finding = &IrqAffinity.check(&host.root())[0];
        assert_eq!(finding.status, Status::NotAvailable);
        assert!(finding.why.contains("one online CPU"));
    }

    #[test]
    fn word_matching() {
        assert!(names_device(
            "PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0",
            "virtio2"
        ));
        assert!(!names_device(
            "PCI-MSIX-0000:00:04.0 1-edge virtio20-input.0",
            "virtio2"
        ));
        assert!(names_device("PCI-MSIX 1-edge nvme0q12", "nvme0"));
        assert!(!names_device("PCI-MSIX 1-edge nvme10q1", "nvme0"));
        assert!(names_device(
            "IR-PCI-MSI 1-edge mlx5_comp0@pci:0000:3b:00.0",
            "0000:3b:00.0"
        ));
        assert!(is_pci_address("0000:3b:00.0"));
        assert!(!is_pci_address("pci0000:00"));
    }
}

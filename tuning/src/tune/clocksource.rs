//! Kernel clock source: `tsc` where the CPU offers it.
//!
//! Every request and timer reads the clock. `tsc` (and `kvm-clock`,
//! `arch_sys_counter`) are read in user space through the vDSO; `hpet`,
//! `acpi_pm` and `xen` cost a system call or a slow device read per call.
//! Reads `/sys/devices/system/clocksource/clocksource0/{current,available}_clocksource`.

use super::{Finding, Root, Status, Tuner, Write};

pub struct Clocksource;

const KEY: &str = "clocksource";
const DIR: &str = "sys/devices/system/clocksource/clocksource0";
const RECOMMENDED: &str = "tsc";
/// Clock sources that cost a system call or a device read per clock read.
const SLOW: [&str; 4] = ["hpet", "acpi_pm", "xen", "jiffies"];

impl Tuner for Clocksource {
    fn name(&self) -> &'static str {
        "clocksource"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let current_file = format!("{DIR}/current_clocksource");
        let Some(current) = root.read(&current_file) else {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no clocksource in sysfs",
            )];
        };
        let available = root
            .read(&format!("{DIR}/available_clocksource"))
            .unwrap_or_default();
        let tsc_offered = available.split_whitespace().any(|c| c == RECOMMENDED);
        let slow = SLOW.contains(&current.as_str());
        let (status, recommended, why) = if current == RECOMMENDED {
            (Status::Ok, RECOMMENDED, "read in user space (vDSO)")
        } else if slow && tsc_offered {
            (
                Status::Change,
                RECOMMENDED,
                "each clock read is a system call or a slow device read; tsc is read in user space",
            )
        } else if slow {
            (
                Status::NotAvailable,
                "-",
                "a slow clock source, and the kernel offers no tsc to switch to",
            )
        } else {
            (Status::Ok, current.as_str(), "read in user space (vDSO)")
        };
        vec![Finding {
            tuner: self.name(),
            key: KEY.to_string(),
            current: Some(current.clone()),
            recommended: (recommended != "-").then(|| recommended.to_string()),
            status,
            why: why.to_string(),
            writes: if status == Status::Change {
                vec![Write::kernel(root, &current_file, RECOMMENDED)]
            } else {
                Vec::new()
            },
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    fn host(current: &str, available: &str) -> FakeHost {
        let host = FakeHost::new();
        host.file(
            &format!("{DIR}/current_clocksource"),
            &format!("{current}\n"),
        )
        .file(
            &format!("{DIR}/available_clocksource"),
            &format!("{available}\n"),
        );
        host
    }

    #[test]
    fn xen_is_switched_to_tsc() {
        let host = host("xen", "xen tsc hpet acpi_pm");
        let root = host.root();
        let finding = &Clocksource.check(&root)[0];
        assert_eq!(finding.status, Status::Change);
        assert_eq!(finding.recommended.as_deref(), Some("tsc"));
        for result in crate::tune::apply(&Clocksource.plan(&root)) {
            result.expect("write");
        }
        assert_eq!(host.read(&format!("{DIR}/current_clocksource")), "tsc\n");
        assert_eq!(Clocksource.check(&root)[0].status, Status::Ok);
    }

    #[test]
    fn fast_sources_are_kept() {
        for (current, available) in [
            ("tsc", "tsc kvm-clock"),
            ("kvm-clock", "kvm-clock"),
            ("arch_sys_counter", "arch_sys_counter"),
        ] {
            let host = host(current, available);
            let finding = &Clocksource.check(&host.root())[0];
            assert_eq!(finding.status, Status::Ok, "{current}");
            assert!(Clocksource.plan(&host.root()).is_empty());
        }
    }

    #[test]
    fn a_slow_source_without_tsc_is_reported_not_changed() {
        let host = host("hpet", "hpet acpi_pm");
        let finding = &Clocksource.check(&host.root())[0];
        assert_eq!(finding.status, Status::NotAvailable);
        assert!(Clocksource.plan(&host.root()).is_empty());
    }
}

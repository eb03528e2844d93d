//! CPU frequency governor: `performance` on every CPU.
//!
//! A shard's core alternates between bursts of work and short idle polls;
//! `powersave`/`schedutil` clock it down in the gaps and the next request pays
//! the ramp-up in latency. Reads and writes
//! `/sys/devices/system/cpu/cpuN/cpufreq/scaling_governor`; VMs usually have no
//! cpufreq at all (not available).

use super::{Finding, Root, Status, Tuner, Write};
use std::collections::BTreeMap;

pub struct Governor;

const KEY: &str = "cpu.governor";
const RECOMMENDED: &str = "performance";
const CPU_DIR: &str = "sys/devices/system/cpu";

impl Tuner for Governor {
    fn name(&self) -> &'static str {
        "governor"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        let cpus: Vec<String> = root
            .list(CPU_DIR)
            .into_iter()
            .filter(|name| {
                name.strip_prefix("cpu")
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            })
            .collect();
        // governor of each CPU that has cpufreq
        let mut governors: Vec<(String, String)> = Vec::new();
        let mut offers_performance = true;
        for cpu in &cpus {
            let file = format!("{CPU_DIR}/{cpu}/cpufreq/scaling_governor");
            if let Some(governor) = root.read(&file) {
                if let Some(available) = root.read(&format!(
                    "{CPU_DIR}/{cpu}/cpufreq/scaling_available_governors"
                )) {
                    offers_performance &= available.split_whitespace().any(|g| g == RECOMMENDED);
                }
                governors.push((file, governor));
            }
        }
        if governors.is_empty() {
            return vec![Finding::not_available(
                self.name(),
                KEY,
                "no cpufreq (usual in VMs; the hypervisor sets the frequency)",
            )];
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, governor) in &governors {
            *counts.entry(governor.as_str()).or_default() += 1;
        }
        let current = counts
            .iter()
            .map(|(governor, n)| format!("{governor} ({n} CPUs)"))
            .collect::<Vec<_>>()
            .join(", ");
        let writes: Vec<Write> = governors
            .iter()
            .filter(|(_, governor)| governor != RECOMMENDED)
            .map(|(file, _)| Write::kernel(root, file, RECOMMENDED))
            .collect();
        let (status, why, writes) = if writes.is_empty() {
            (Status::Ok, "CPUs run at full clock between bursts", writes)
        } else if !offers_performance {
            (
                Status::NotAvailable,
                "the cpufreq driver offers no 'performance' governor",
                Vec::new(),
            )
        } else {
            (
                Status::Change,
                "power-saving governors clock a shard's core down between bursts; \
                 the next request pays the ramp-up in latency",
                writes,
            )
        };
        vec![Finding {
            tuner: self.name(),
            key: KEY.to_string(),
            current: Some(current),
            recommended: Some(RECOMMENDED.to_string()),
            status,
            why: why.to_string(),
            writes,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    fn cpu(host: &FakeHost, n: usize, governor: &str) {
        host.file(
            &format!("{CPU_DIR}/cpu{n}/cpufreq/scaling_governor"),
            &format!("{governor}\n"),
        )
        .file(
            &format!("{CPU_DIR}/cpu{n}/cpufreq/scaling_available_governors"),
            "performance powersave\n",
        );
    }

    #[test]
    fn powersave_cpus_are_switched_to_performance() {
        let host = FakeHost::new();
        cpu(&host, 0, "powersave");
        cpu(&host, 1, "performance");
        cpu(&host, 10, "powersave");
        host.dir(&format!("{CPU_DIR}/cpufreq"))
            .dir(&format!("{CPU_DIR}/cpuidle"));
        let root = host.root();
        let findings = Governor.check(&root);
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.status, Status::Change);
        assert_eq!(
            f.current.as_deref(),
            Some("performance (1 CPUs), powersave (2 CPUs)")
        );
        let writes = Governor.plan(&root);
        assert_eq!(writes.len(), 2);
        for result in crate::tune::apply(&writes) {
            result.expect("write");
        }
        assert_eq!(
            host.read(&format!("{CPU_DIR}/cpu0/cpufreq/scaling_governor")),
            "performance\n"
        );
        assert_eq!(
            host.read(&format!("{CPU_DIR}/cpu10/cpufreq/scaling_governor")),
            "performance\n"
        );
        assert_eq!(Governor.check(&root)[0].status, Status::Ok);
        assert!(Governor.plan(&root).is_empty());
    }

    #[test]
    fn no_cpufreq_is_not_available() {
        let host = FakeHost::new();
        host.dir(&format!("{CPU_DIR}/cpu0/topology"));
        let findings = Governor.check(&host.root());
        assert_eq!(findings[0].status, Status::NotAvailable);
        assert!(findings[0].why.contains("no cpufreq"), "{:?}", findings[0]);
    }

    #[test]
    fn a_driver_without_performance_is_not_available() {
        let host = FakeHost::new();
        host.file(
            &format!("{CPU_DIR}/cpu0/cpufreq/scaling_governor"),
            "schedutil\n",
        )
        .file(
            &format!("{CPU_DIR}/cpu0/cpufreq/scaling_available_governors"),
            "schedutil\n",
        );
        let findings = Governor.check(&host.root());
        assert_eq!(findings[0].status, Status::NotAvailable);
        assert!(Governor.plan(&host.root()).is_empty());
    }
}

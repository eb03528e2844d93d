//! Transparent hugepages: `enabled` = `madvise`, `defrag` = `defer+madvise`.
//!
//! Strom's records live in the page cache, which THP does not back, so THP
//! gains the broker little; `always` makes the kernel back every anonymous
//! mapping with huge pages (memory bloat, khugepaged scans) and `defrag=always`
//! stalls allocations in direct compaction: latency spikes on a shard. With
//! `madvise` only programs that ask get huge pages. Reads and writes
//! `/sys/kernel/mm/transparent_hugepage/{enabled,defrag}`.

use super::{bracketed_choice, choices, Finding, Root, Status, Tuner, Write};

pub struct TransparentHugepages;

const DIR: &str = "sys/kernel/mm/transparent_hugepage";

/// One THP file: its accepted values and the value to set otherwise.
struct Setting {
    file: &'static str,
    ok: &'static [&'static str],
    recommended: &'static str,
    why_ok: &'static str,
    why_change: &'static str,
}

const SETTINGS: [Setting; 2] = [
    Setting {
        file: "enabled",
        ok: &["madvise", "never"],
        recommended: "madvise",
        why_ok: "huge pages only where a program asks for them",
        why_change: "'always' backs every anonymous mapping with huge pages: memory \
                     bloat and khugepaged scans; the page cache Strom serves from gains nothing",
    },
    Setting {
        file: "defrag",
        ok: &["madvise", "defer+madvise", "defer", "never"],
        recommended: "defer+madvise",
        why_ok: "allocations do not stall in direct compaction",
        why_change: "'always' makes allocations stall in direct compaction: \
                     millisecond latency spikes on a shard",
    },
];

impl Tuner for TransparentHugepages {
    fn name(&self) -> &'static str {
        "thp"
    }

    fn check(&self, root: &Root) -> Vec<Finding> {
        SETTINGS
            .iter()
            .map(|setting| check_setting(root, setting))
            .collect()
    }
}

fn check_setting(root: &Root, setting: &Setting) -> Finding {
    let key = format!("thp.{}", setting.file);
    let relative = format!("{DIR}/{}", setting.file);
    let Some(text) = root.read(&relative) else {
        return Finding::not_available("thp", key, "kernel without transparent hugepages");
    };
    let Some(current) = bracketed_choice(&text) else {
        return Finding::not_available("thp", key, format!("cannot parse '{text}'"));
    };
    let ok = setting.ok.contains(&current.as_str());
    // Older kernels lack defer+madvise; fall back to madvise.
    let recommended = if choices(&text).iter().any(|c| c == setting.recommended) {
        setting.recommended
    } else {
        "madvise"
    };
    Finding {
        tuner: "thp",
        key,
        current: Some(current),
        recommended: Some(recommended.to_string()),
        status: if ok { Status::Ok } else { Status::Change },
        why: if ok {
            setting.why_ok
        } else {
            setting.why_change
        }
        .to_string(),
        writes: if ok {
            Vec::new()
        } else {
            vec![Write::kernel(root, &relative, recommended)]
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::fake::FakeHost;

    #[test]
    fn always_is_changed_and_madvise_is_kept() {
        let host = FakeHost::new();
        host.file(&format!("{DIR}/enabled"), "[always] madvise never\n")
            .file(
                &format!("{DIR}/defrag"),
                "always defer defer+madvise [madvise] never\n",
            );
        let root = host.root();
        let findings = TransparentHugepages.check(&root);
        assert_eq!(findings[0].key, "thp.enabled");
        assert_eq!(findings[0].current.as_deref(), Some("always"));
        assert_eq!(findings[0].status, Status::Change);
        assert_eq!(findings[1].current.as_deref(), Some("madvise"));
        assert_eq!(findings[1].status, Status::Ok);
        let writes = TransparentHugepages.plan(&root);
        assert_eq!(writes.len(), 1);
        assert!(crate::tune::apply(&writes).iter().all(Result::is_ok));
        assert_eq!(host.read(&format!("{DIR}/enabled")), "madvise\n");
    }

    #[test]
    fn defrag_always_becomes_defer_madvise_when_offered() {
        let host = FakeHost::new();
        host.file(
            &format!("{DIR}/defrag"),
            "[always] defer defer+madvise madvise never\n",
        );
        let findings = TransparentHugepages.check(&host.root());
        assert_eq!(findings[0].status, Status::NotAvailable);
        assert_eq!(findings[1].recommended.as_deref(), Some("defer+madvise"));
        host.file(&format!("{DIR}/defrag"), "[always] madvise never\n");
        let findings = TransparentHugepages.check(&host.root());
        assert_eq!(findings[1].recommended.as_deref(), Some("madvise"));
    }
}

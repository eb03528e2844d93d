//! The file tree the tuners and host checks read: `/` on a real host, a
//! temporary directory in tests. Nothing here writes; writes are
//! `tune::Write`s, performed only by `tune::apply`.

use std::fs;
use std::path::{Path, PathBuf};

/// A root directory under which `proc/...` and `sys/...` are read.
///
/// Reads never fail: a file that is missing or unreadable is `None`, because a
/// missing file (no cpufreq in a VM, no NVMe disk) means "not available on this
/// host", which is a normal answer, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The real host: `/`.
    pub fn real() -> Root {
        Root {
            dir: PathBuf::from("/"),
        }
    }

    /// A fake tree (tests, `strom tune --root DIR`).
    pub fn at(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    /// Whether this is the real `/`, where `sysctl -w` addresses the same files.
    pub fn is_real(&self) -> bool {
        self.dir == Path::new("/")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `relative` (e.g. `proc/sys/vm/swappiness`) under this root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative.trim_start_matches('/'))
    }

    /// The file's contents without surrounding white space.
    pub fn read(&self, relative: &str) -> Option<String> {
        fs::read_to_string(self.path(relative))
            .ok()
            .map(|text| text.trim().to_string())
    }

    /// The file parsed as one unsigned number.
    pub fn read_u64(&self, relative: &str) -> Option<u64> {
        self.read(relative)?.parse().ok()
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.path(relative).exists()
    }

    /// Names of the entries of a directory, sorted; empty if it is missing.
    pub fn list(&self, relative: &str) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.path(relative)) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort_by(|a, b| natural_order(a, b));
        names
    }

    /// The components of the path a symlink (e.g. `sys/class/net/eth0/device`)
    /// resolves to, inside this root.
    pub fn resolve_components(&self, relative: &str) -> Option<Vec<String>> {
        let resolved = fs::canonicalize(self.path(relative)).ok()?;
        Some(
            resolved
                .components()
                .filter_map(|c| c.as_os_str().to_str().map(str::to_string))
                .collect(),
        )
    }
}

/// Orders `cpu2` before `cpu10` and `nvme1n1` before `nvme10n1`.
pub fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(text: &str) -> (String, u64, String) {
        let start = text
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(text.len());
        let end = text[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(text.len(), |i| start + i);
        let number = text[start..end].parse().unwrap_or(0);
        (text[..start].to_string(), number, text[end..].to_string())
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// Parses a kernel CPU list (`0-3,8,10-11`) into sorted CPU numbers; `None` if
/// the text is not one.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                let first: usize = first.trim().parse().ok()?;
                let last: usize = last.trim().parse().ok()?;
                if last < first || last - first > 65_536 {
                    return None;
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// Formats CPU numbers as a kernel CPU list: `[0, 1, 2, 5]` → `0-2,5`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The value marked with brackets in a kernel choice file
/// (`always [madvise] never` → `madvise`).
pub fn bracketed_choice(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_string())
}

/// The choices offered by a kernel choice file, brackets removed.
pub fn choices(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_cpu_list(&[4]), "4");
        assert_eq!(format_cpu_list(&[]), "");
    }

    #[test]
    fn kernel_choice_files() {
        assert_eq!(
            bracketed_choice("always [madvise] never").as_deref(),
            Some("madvise")
        );
        assert_eq!(bracketed_choice("none"), None);
        assert_eq!(
            choices("[none] mq-deadline kyber"),
            ["none", "mq-deadline", "kyber"]
        );
    }

    #[test]
    fn natural_order_sorts_numbers_by_value() {
        let mut names = vec!["cpu10", "cpu2", "cpu1", "cpufreq"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(names, ["cpu1", "cpu2", "cpu10", "cpufreq"]);
    }

    #[test]
    fn missing_files_read_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::at(dir.path());
        assert_eq!(root.read("proc/sys/vm/swappiness"), None);
        assert!(root.list("sys/block").is_empty());
        std::fs::create_dir_all(root.path("proc/sys/vm")).expect("mkdir");
        std::fs::write(root.path("proc/sys/vm/swappiness"), "60\n").expect("write");
        assert_eq!(root.read_u64("/proc/sys/vm/swappiness"), Some(60));
        assert!(!root.is_real());
        assert!(Root::real().is_real());
    }
}

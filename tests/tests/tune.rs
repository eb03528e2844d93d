//! `strom tune` against fake `/proc` and `/sys` trees (never the real ones),
//! and the host checks of `strom serve` as a user meets them: a locked-memory
//! limit too low to run, a low soft limit raised by itself, warnings for a
//! memory-backed log dir and little free space.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use strom_tests::*;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A host that needs tuning: powersave CPUs, THP always, swappiness 60, short
/// queues, an NVMe disk with a scheduler, NIC and disk interrupts all on CPU 0,
/// 64 KiB of locked memory.
fn fake_host() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("strom-fake-host-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    let files: &[(&str, &str)] = &[
        ("sys/devices/system/cpu/online", "0-1\n"),
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave\n",
        ),
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_available_governors",
            "performance powersave\n",
        ),
        (
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
            "powersave\n",
        ),
        (
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_available_governors",
            "performance powersave\n",
        ),
        (
            "sys/kernel/mm/transparent_hugepage/enabled",
            "[always] madvise never\n",
        ),
        (
            "sys/kernel/mm/transparent_hugepage/defrag",
            "[always] defer defer+madvise madvise never\n",
        ),
        ("proc/sys/vm/swappiness", "60\n"),
        (
            "sys/devices/system/clocksource/clocksource0/current_clocksource",
            "xen\n",
        ),
        (
            "sys/devices/system/clocksource/clocksource0/available_clocksource",
            "xen tsc hpet\n",
        ),
        ("sys/block/nvme0n1/queue/scheduler", "[mq-deadline] none\n"),
        ("sys/block/nvme0n1/queue/nomerges", "0\n"),
        ("proc/sys/net/core/somaxconn", "128\n"),
        ("proc/sys/net/ipv4/tcp_max_syn_backlog", "4096\n"),
        ("proc/sys/net/core/rmem_max", "212992\n"),
        ("proc/sys/net/core/wmem_max", "212992\n"),
        ("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n"),
        ("proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304\n"),
        ("proc/sys/net/core/busy_poll", "0\n"),
        ("proc/sys/net/core/busy_read", "0\n"),
        ("proc/sys/fs/aio-max-nr", "65536\n"),
        ("proc/sys/fs/file-max", "9223372036854775807\n"),
        (
            "proc/self/limits",
            "Limit                     Soft Limit           Hard Limit           Units\n\
             Max locked memory         65536                65536                bytes\n",
        ),
        (
            "proc/interrupts",
            "           CPU0       CPU1\n\
              24:        100          0   PCI-MSIX-0000:00:03.0   0-edge      eth0-TxRx-0\n\
              25:        100          0   PCI-MSIX-0000:00:03.0   1-edge      eth0-TxRx-1\n\
              26:         10          0   PCI-MSIX-0000:00:04.0   0-edge      nvme0q0\n\
              27:         10          0   PCI-MSIX-0000:00:04.0   1-edge      nvme0q1\n\
             LOC:       1000       1000   Local timer interrupts\n",
        ),
        ("proc/irq/24/smp_affinity_list", "0\n"),
        ("proc/irq/25/smp_affinity_list", "0\n"),
        ("proc/irq/26/smp_affinity_list", "0\n"),
        ("proc/irq/27/smp_affinity_list", "0\n"),
    ];
    for (relative, content) in files {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write fake file");
    }
    std::fs::create_dir_all(root.join("etc/security/limits.d")).expect("mkdir");
    // Devices: eth0 at PCI 0000:00:03.0, nvme0n1 on controller nvme0 at 0000:00:04.0.
    let dirs = [
        "sys/devices/pci0000:00/0000:00:03.0/net/eth0",
        "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0",
        "sys/class/net",
    ];
    for dir in dirs {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    let links = [
        (
            "sys/class/net/eth0",
            "../../devices/pci0000:00/0000:00:03.0/net/eth0",
        ),
        (
            "sys/devices/pci0000:00/0000:00:03.0/net/eth0/device",
            "../../../0000:00:03.0",
        ),
        (
            "sys/block/nvme0n1/device",
            "../../devices/pci0000:00/0000:00:04.0/nvme/nvme0",
        ),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
    }
    dir
}

fn tune(args: &[&str], root: &Path) -> Output {
    let mut cmd = Command::new(strom_bin());
    cmd.arg("tune").args(args).arg("--root").arg(root);
    run_command(cmd, None, TIMEOUT)
}

fn read(root: &Path, relative: &str) -> String {
    std::fs::read_to_string(root.join(relative)).expect("read fake file")
}

fn findings(out: &Output) -> Vec<Value> {
    assert!(out.success(), "{out}");
    out.json()["tunables"].as_array().expect("tunables").clone()
}

fn status_of<'a>(tunables: &'a [Value], key: &str) -> &'a str {
    tunables
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {tunables:?}"))["status"]
        .as_str()
        .expect("status")
}

#[test]
fn check_reports_every_tunable_as_json_and_as_a_table() {
    let host = fake_host();
    let root = host.path();
    let tunables = findings(&tune(&["check", "--format", "json"], root));
    for (key, status) in [
        ("cpu.governor", "change"),
        ("thp.enabled", "change"),
        ("thp.defrag", "change"),
        ("vm.swappiness", "change"),
        ("clocksource", "change"),
        ("irq.affinity", "change"),
        ("disk.nvme0n1.scheduler", "change"),
        ("disk.nvme0n1.nomerges", "change"),
        ("net.core.somaxconn", "change"),
        ("net.ipv4.tcp_max_syn_backlog", "ok"),
        ("net.core.rmem_max", "change"),
        ("net.core.busy_poll", "optional"),
        ("fs.aio-max-nr", "change"),
        ("fs.file-max", "ok"),
        ("memlock", "change"),
    ] {
        assert_eq!(status_of(&tunables, key), status, "{key}: {tunables:?}");
    }
    let swappiness = tunables
        .iter()
        .find(|t| t["key"] == "vm.swappiness")
        .expect("swappiness");
    assert_eq!(swappiness["current"], "60");
    assert_eq!(swappiness["recommended"], "1");
    assert!(!swappiness["why"].as_str().unwrap_or("").is_empty());
    let irq = tunables
        .iter()
        .find(|t| t["key"] == "irq.affinity")
        .expect("irq");
    assert_eq!(
        irq["current"], "4 IRQs (eth0, nvme0n1) all on CPU 0",
        "{irq}"
    );

    let table = tune(&["check"], root);
    assert!(table.success(), "{table}");
    let header = table.stdout.lines().next().unwrap_or("");
    for column in ["TUNABLE", "CURRENT", "RECOMMENDED", "STATUS", "WHY"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.stdout.contains("vm.swappiness"), "{table}");
    // check reads only.
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "60\n");

    let only = findings(&tune(
        &["check", "--format", "json", "--only", "swappiness,fs"],
        root,
    ));
    let keys: Vec<&str> = only.iter().filter_map(|t| t["key"].as_str()).collect();
    assert_eq!(keys, ["vm.swappiness", "fs.aio-max-nr", "fs.file-max"]);
}

#[test]
fn dry_run_prints_a_script_that_applies_the_plan_and_writes_nothing() {
    let host = fake_host();
    let root = host.path();
    let out = tune(&["apply", "--dry-run"], root);
    assert!(out.success(), "{out}");
    let script = &out.stdout;
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    let fake = root.display().to_string();
    assert!(
        script.contains(&format!("echo 1 > {fake}/proc/sys/vm/swappiness\n")),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "echo performance > {fake}/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor\n"
        )),
        "{script}"
    );
    assert!(script.contains("name it with --only busy-poll"), "{script}");
    // Every command writes under the fake root (no sysctl -w there).
    for line in script
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.contains(&format!("> {fake}/")), "{line}");
    }
    // Nothing written by the dry run.
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "60\n");
    assert_eq!(
        read(root, "sys/block/nvme0n1/queue/scheduler"),
        "[mq-deadline] none\n"
    );
    assert!(!root.join("etc/security/limits.d/99-strom.conf").exists());

    // The script is exact: run by sh against the fake tree, it leaves nothing to change.
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(script.as_str());
    let ran = run_command(sh, None, TIMEOUT);
    assert!(ran.success(), "{ran}");
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "1\n");
    simulate_kernel_choice_files(root);
    let after = findings(&tune(&["check", "--format", "json"], root));
    // memlock stays: the limits file applies at the next login, and the fake
    // /proc/self/limits does not log in.
    let left: Vec<&Value> = after
        .iter()
        .filter(|t| t["status"] == "change" && t["key"] != "memlock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The kernel shows a written choice as `[choice]` among the others; a plain
/// file just holds what was written.
fn simulate_kernel_choice_files(root: &Path) {
    for (relative, all) in [
        (
            "sys/kernel/mm/transparent_hugepage/enabled",
            "always madvise never",
        ),
        (
            "sys/kernel/mm/transparent_hugepage/defrag",
            "always defer defer+madvise madvise never",
        ),
        ("sys/block/nvme0n1/queue/scheduler", "mq-deadline none"),
    ] {
        let chosen = read(root, relative).trim().to_string();
        let text: Vec<String> = all
            .split(' ')
            .map(|c| {
                if c == chosen {
                    format!("[{c}]")
                } else {
                    c.to_string()
                }
            })
            .collect();
        std::fs::write(root.join(relative), text.join(" ") + "\n").expect("write");
    }
}

#[test]
fn apply_writes_the_fake_tree() {
    let host = fake_host();
    let root = host.path();
    let out = tune(&["apply"], root);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("write(s) done"), "{out}");
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "1\n");
    assert_eq!(
        read(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "performance\n"
    );
    assert_eq!(
        read(root, "sys/kernel/mm/transparent_hugepage/enabled"),
        "madvise\n"
    );
    assert_eq!(
        read(
            root,
            "sys/devices/system/clocksource/clocksource0/current_clocksource"
        ),
        "tsc\n"
    );
    assert_eq!(read(root, "sys/block/nvme0n1/queue/scheduler"), "none\n");
    assert_eq!(read(root, "sys/block/nvme0n1/queue/nomerges"), "2\n");
    assert_eq!(read(root, "proc/sys/net/core/somaxconn"), "4096\n");
    assert_eq!(
        read(root, "proc/sys/net/ipv4/tcp_max_syn_backlog"),
        "4096\n",
        "was ok: untouched"
    );
    assert_eq!(
        read(root, "proc/sys/net/ipv4/tcp_wmem"),
        "4096 16384 16777216\n"
    );
    assert_eq!(read(root, "proc/sys/fs/aio-max-nr"), "1048576\n");
    let spread: Vec<String> = [24, 25, 26, 27]
        .iter()
        .map(|n| read(root, &format!("proc/irq/{n}/smp_affinity_list")))
        .collect();
    assert_eq!(spread, ["0\n", "1\n", "0\n", "1\n"]);
    assert!(read(root, "etc/security/limits.d/99-strom.conf").contains("memlock  unlimited"));
    // Optional busy polling is left alone unless named.
    assert_eq!(read(root, "proc/sys/net/core/busy_poll"), "0\n");
    let out = tune(&["apply", "--only", "busy-poll"], root);
    assert!(out.success(), "{out}");
    assert_eq!(read(root, "proc/sys/net/core/busy_poll"), "50\n");
    assert_eq!(read(root, "proc/sys/net/core/busy_read"), "50\n");
}

#[test]
fn apply_reports_the_writes_that_failed_and_exits_1() {
    let host = fake_host();
    let root = host.path();
    // Directories where files are written: the writes fail whoever we are
    // (these tests may run as root, which ignores file modes; as a user the
    // real /proc/sys fails the same way with EACCES).
    std::fs::create_dir(root.join("etc/security/limits.d/99-strom.conf")).expect("mkdir");
    for irq in [24, 25, 26, 27] {
        std::fs::write(
            root.join(format!("proc/irq/{irq}/effective_affinity_list")),
            "0\n",
        )
        .expect("write");
    }
    std::fs::remove_file(root.join("proc/irq/24/smp_affinity_list")).expect("rm");
    std::fs::create_dir(root.join("proc/irq/24/smp_affinity_list")).expect("mkdir");
    let out = tune(&["apply"], root);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
    let fake = root.display().to_string();
    assert!(
        out.stderr
            .contains(&format!("{fake}/etc/security/limits.d/99-strom.conf")),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("{fake}/proc/irq/24/smp_affinity_list")),
        "{out}"
    );
    assert!(out.stderr.contains("2 of 19 write(s) failed"), "{out}");
    // The other writes were made.
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "1\n");
    assert_eq!(read(root, "proc/irq/25/smp_affinity_list"), "1\n");
}

/// Not root: the writes fail with EACCES, are named, and the hint says to run
/// as root. As root, the test drops to user 65534 with `setpriv`.
#[test]
fn apply_without_privileges_names_the_denied_writes() {
    let host = fake_host();
    let root = host.path();
    let mut cmd = if effective_uid() == Some(0) {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("setpriv not installed: skipped");
            return;
        }
        let mut modes = root.metadata().expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut modes, 0o755);
        std::fs::set_permissions(root, modes).expect("chmod");
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        cmd.arg(strom_bin());
        cmd
    } else {
        let file = root.join("proc/sys/vm/swappiness");
        let mut modes = file.metadata().expect("stat").permissions();
        modes.set_readonly(true);
        std::fs::set_permissions(&file, modes).expect("chmod");
        Command::new(strom_bin())
    };
    cmd.args(["tune", "apply", "--only", "swappiness", "--root"])
        .arg(root);
    let out = run_command(cmd, None, TIMEOUT);
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "cannot write {}/proc/sys/vm/swappiness: Permission denied",
            root.display()
        )),
        "{out}"
    );
    assert!(
        out.stderr.contains("1 of 1 write(s) failed (run as root)"),
        "{out}"
    );
    assert_eq!(read(root, "proc/sys/vm/swappiness"), "60\n");
}

/// `Uid:` (effective) of /proc/self/status.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn the_root_can_come_from_the_environment() {
    let host = fake_host();
    let mut cmd = Command::new(strom_bin());
    cmd.args(["tune", "apply", "--dry-run", "--only", "swappiness"])
        .env("STROM_TUNE_ROOT", host.path());
    let out = run_command(cmd, None, TIMEOUT);
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "echo 1 > {}/proc/sys/vm/swappiness",
            host.path().display()
        )),
        "{out}"
    );
}

#[test]
fn unknown_tuner_names_are_refused() {
    let host = fake_host();
    let out = tune(&["apply", "--dry-run", "--only", "turbo"], host.path());
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out}");
    assert!(out.stderr.contains("governor"), "{out}");
}

/// glommio refuses to start below 512 KiB of locked memory. With the hard
/// limit that low the broker cannot raise it: one clear line naming the limit
/// and the fix, exit status 1, no panic.
#[test]
fn serve_under_a_too_low_memlock_limit_names_the_limit_and_the_fix() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("bash");
    // `ulimit -l` (KiB) without -S/-H sets the soft and the hard limit.
    cmd.arg("-c")
        .arg(r#"ulimit -l 16 && exec "$0" serve --data-dir "$1" --listen 127.0.0.1:0 --smp 1"#)
        .arg(strom_bin())
        .arg(data.path());
    let out = run_command(cmd, None, TIMEOUT);
    assert!(!out.timed_out, "{out}");
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("strom: "))
        .unwrap_or_else(|| panic!("no 'strom:' line: {out}"));
    for needle in [
        "RLIMIT_MEMLOCK",
        "16 KiB",
        "512 KiB",
        "ulimit -l unlimited",
        "LimitMEMLOCK=infinity",
        "/etc/security/limits.conf",
    ] {
        assert!(line.contains(needle), "{needle} missing: {line}");
    }
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!out.stdout.contains("listening"), "{out}");
}

/// A soft limit below what glommio needs, under a hard limit that allows
/// more, is raised at start-up and the broker runs.
#[test]
fn a_low_soft_memlock_limit_is_raised_to_the_hard_limit() {
    // The hard limit stays as it is (raising it needs CAP_SYS_RESOURCE).
    let mut broker = Broker::start(BrokerOpts::default().memlock_limits(64 << 10, None));
    broker.assert_running();
    let stderr = broker.stderr();
    assert!(
        stderr.contains("raised the soft limit") && stderr.contains("RLIMIT_MEMLOCK"),
        "{stderr}"
    );
    broker.stop();
}

/// Slow-but-working settings are one warning each, and the broker starts:
/// a log dir on tmpfs, less free space than strom.log.dir.min.free.bytes,
/// more shards than usable cores.
#[test]
fn slow_settings_are_warnings_and_the_broker_starts() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shm = Path::new("/dev/shm");
    let on_tmpfs = shm.is_dir()
        && Command::new("stat")
            .args(["-f", "-c", "%T", "/dev/shm"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "tmpfs");
    let shm_dir = on_tmpfs.then(|| tempfile::tempdir_in(shm).expect("tempdir in /dev/shm"));
    let mut opts = BrokerOpts::default()
        .smp(cores + 1)
        .config("strom.log.dir.min.free.bytes = 9223372036854775807\n");
    if let Some(dir) = &shm_dir {
        opts = opts.data_dir(dir.path().join("data"));
    }
    let mut broker = Broker::start(opts);
    broker.assert_running();
    let stderr = broker.stderr();
    assert!(
        stderr.contains(&format!(
            "--smp {} is more than the {cores} cores",
            cores + 1
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("below strom.log.dir.min.free.bytes"),
        "{stderr}"
    );
    if shm_dir.is_some() {
        assert!(stderr.contains("is on tmpfs (memory)"), "{stderr}");
    } else {
        eprintln!("/dev/shm is not tmpfs here: tmpfs warning not checked");
    }
    broker.stop();
}

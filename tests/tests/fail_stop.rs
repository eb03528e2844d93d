//! Fail-stop: when the disk under the broker fails a write or an `fdatasync`
//! (not a full file system: a broken one), the broker stops with a clear log
//! line and exit status 3 instead of carrying on in an unknown state.
//!
//! The broken disk: an ext4 file system on a loop device whose backing file
//! lives on a tmpfs far smaller than the file system claims to be. Once the
//! broker has written more than the tmpfs holds, writeback to the device fails
//! and the next `fdatasync` reports an I/O error. Needs root (mount, losetup).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use strom_tests::*;

fn run(program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run_command(cmd, None, Duration::from_secs(60));
    assert!(
        out.success(),
        "{program} {args:?} failed (this test needs root): {out}"
    );
    out.stdout.trim().to_string()
}

/// The mounts and the loop device, undone in reverse order on drop.
struct FailingDisk {
    root: tempfile::TempDir,
    loop_device: Option<String>,
    mounted: Vec<PathBuf>,
}

impl FailingDisk {
    fn new(backing_mib: u64, claimed_mib: u64) -> FailingDisk {
        let root = tempfile::Builder::new()
            .prefix("strom-e2e-faildisk-")
            .tempdir()
            .expect("tempdir");
        let mut disk = FailingDisk {
            root,
            loop_device: None,
            mounted: Vec::new(),
        };
        let back = disk.root.path().join("back");
        let fs = disk.root.path().join("fs");
        std::fs::create_dir_all(&back).expect("mkdir");
        std::fs::create_dir_all(&fs).expect("mkdir");
        let back_s = back.to_str().expect("utf-8 path");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={backing_mib}m"),
                "tmpfs",
                back_s,
            ],
        );
        disk.mounted.push(back.clone());
        let image = back.join("disk.img");
        let image_s = image.to_str().expect("utf-8 path");
        run("truncate", &["-s", &format!("{claimed_mib}M"), image_s]);
        let device = run("losetup", &["-f", "--show", image_s]);
        disk.loop_device = Some(device.clone());
        run("mkfs.ext4", &["-q", "-F", &device]);
        run("mount", &[&device, fs.to_str().expect("utf-8 path")]);
        disk.mounted.push(fs);
        disk
    }

    fn path(&self) -> &Path {
        self.mounted.last().expect("mounted")
    }
}

impl Drop for FailingDisk {
    fn drop(&mut self) {
        // Lazy unmounts: a broken ext4 may still be busy writing back.
        if let Some(fs) = self.mounted.get(1) {
            let _ = Command::new("umount").arg("-l").arg(fs).status();
        }
        if let Some(device) = &self.loop_device {
            let _ = Command::new("losetup").arg("-d").arg(device).status();
        }
        if let Some(back) = self.mounted.first() {
            let _ = Command::new("umount").arg("-l").arg(back).status();
        }
    }
}

#[test]
fn a_failing_fdatasync_stops_the_broker_with_status_3() {
    require_kcat();
    let disk = FailingDisk::new(24, 160);
    let mut broker = Broker::start(
        BrokerOpts::default()
            .smp(1)
            .data_dir(disk.path().join("data"))
            .config("strom.log.dir.min.free.bytes = 0\n"),
    );
    // 40 MB of 10 KB records with acks=all: more than the 24 MiB that can
    // actually be written.
    let line = "x".repeat(10_000);
    let mut input = String::with_capacity(40_100_000);
    for _ in 0..4_000 {
        input.push_str(&line);
        input.push('\n');
    }
    let _ = try_kcat(
        &[
            "-P",
            "-b",
            &broker.bootstrap(),
            "-t",
            "doomed",
            "-X",
            "acks=all",
            "-X",
            "message.timeout.ms=15000",
        ],
        Some(input.as_bytes()),
    );
    let status = broker.wait_exit(Duration::from_secs(60));
    let stderr = broker.stderr();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the broker kept running on a failing disk\n{}",
            tail_lines(&stderr, 30)
        )
    });
    assert_eq!(status.code(), Some(3), "{}", tail_lines(&stderr, 30));
    assert!(
        stderr.contains("stopping the broker"),
        "no fail-stop line:\n{}",
        tail_lines(&stderr, 30)
    );
    eprintln!("{}", tail_lines(&stderr, 3));
    drop(broker);
    drop(disk);
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

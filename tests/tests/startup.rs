//! Start-up failures a user can cause: each stops the broker with a clear message
//! and a distinct exit status, before it listens.

use std::process::Command;
use strom_tests::*;

fn serve_output(args: &[&str], wrapper: Option<&[&str]>) -> std::process::Output {
    let bin = strom_bin();
    let data = tempfile::tempdir().expect("tempdir");
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = Command::new(w[0]);
            c.args(&w[1..]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data.path())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(args);
    cmd.output().expect("run strom")
}

#[test]
fn invalid_config_names_every_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "log.segment.bytes = 1048576\nlog.retention.hourz = 5\nnum.partitions = \"many\"\n",
    )
    .expect("write config");
    let out = serve_output(&["--config", config.to_str().expect("utf-8 path")], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("log.retention.hourz"), "{stderr}");
    assert!(stderr.contains("num.partitions"), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
}

#[test]
fn too_little_locked_memory_for_io_uring_is_explained() {
    let out = serve_output(&[], Some(&["prlimit", "--memlock=65536:65536", "--"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("RLIMIT_MEMLOCK"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

/// Every shard listens with SO_REUSEPORT; without a check, a second broker
/// (another data directory, same port) would join the first one's port and
/// clients would reach either at random.
#[test]
fn a_port_in_use_by_another_broker_is_refused() {
    let first = Broker::start_default();
    let data = tempfile::tempdir().expect("tempdir");
    let address = format!("127.0.0.1:{}", first.port());
    let mut cmd = Command::new(strom_bin());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data.path())
        .arg("--listen")
        .arg(&address);
    let out = run_command(cmd, None, std::time::Duration::from_secs(20));
    assert!(
        !out.timed_out,
        "second broker kept running on a port in use\n{}",
        out.stderr
    );
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("cannot listen on {address}")),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("listening"), "{}", out.stdout);
}

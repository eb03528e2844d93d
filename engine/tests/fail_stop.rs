//! A panic on one thread stops the whole broker process (fail-stop), with the
//! exit status `strom_engine::EXIT_PANIC`, while other threads are still busy.
//!
//! The test runs itself again as a child process (the same test binary, this
//! test only), which installs the broker's panic hook, keeps one thread
//! looping like a shard and panics on another; the parent checks how the
//! child ended.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "STROM_FAIL_STOP_CHILD";

#[test]
fn a_panic_on_one_thread_stops_the_whole_process() {
    if std::env::var_os(CHILD).is_some() {
        strom_engine::logging::fail_stop_on_panic(strom_engine::EXIT_PANIC);
        let _busy = std::thread::Builder::new()
            .name("strom-shard-0".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(10));
            })
            .expect("spawn");
        let _ = std::thread::Builder::new()
            .name("strom-shard-1".into())
            .spawn(|| panic!("an invariant broke"))
            .expect("spawn")
            .join();
        // Without fail-stop the process would go on; give the hook time.
        std::thread::sleep(Duration::from_secs(20));
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_panic_on_one_thread_stops_the_whole_process",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the child");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the process kept running after a thread panicked");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().expect("stderr")).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(strom_engine::EXIT_PANIC),
        "exit status; stderr: {stderr}"
    );
    assert!(stderr.contains("an invariant broke"), "stderr: {stderr}");
    assert!(
        stderr.contains("strom-shard-1"),
        "the panicking thread is named: {stderr}"
    );
}

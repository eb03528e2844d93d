//! End-to-end test harness for Strom: starts real `strom` processes on
//! temporary data directories and drives them with real Kafka clients
//! (`kcat`, python `confluent_kafka`) and raw TCP.
//!
//! The binary is not built here: run the command from `tests/README.md`, which
//! builds `strom` first. The binary is found through `STROM_BIN`, or next to
//! the test executable (`<target>/debug/deps/test-xxx` → `<target>/debug/strom`).

pub mod cluster;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long the broker may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Default time limit for one client process.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The command that installs the client tools and runs this suite.
pub const README_HINT: &str = "see tests/README.md and run its test command \
     (it installs kcat and python confluent-kafka, builds strom, then runs `cargo test -p strom-tests`)";

/// How to start a broker.
#[derive(Clone, Debug)]
pub struct BrokerOpts {
    /// `--smp`.
    pub smp: usize,
    /// TOML text written to a config file and passed with `--config`.
    pub config: Option<String>,
    /// Data directory to use instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// Start under these (soft, hard) open-file limits (via util-linux `prlimit`,
    /// which execs the broker in place); `None` for hard keeps the current one.
    pub open_files_limits: Option<(u64, Option<u64>)>,
    /// Start under these (soft, hard) locked-memory limits in bytes (via
    /// `prlimit --memlock`); `None` for hard keeps the current one.
    pub memlock_limits: Option<(u64, Option<u64>)>,
    /// Extra environment variables of the broker process.
    pub env: Vec<(String, String)>,
    /// Kafka port kept across restarts (0: a free one at every start), for
    /// clients that must find the broker again where it was.
    pub port: u16,
}

impl Default for BrokerOpts {
    fn default() -> Self {
        BrokerOpts {
            smp: 1,
            config: None,
            data_dir: None,
            open_files_limits: None,
            memlock_limits: None,
            env: Vec::new(),
            port: 0,
        }
    }
}

impl BrokerOpts {
    pub fn smp(mut self, smp: usize) -> Self {
        self.smp = smp;
        self
    }

    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    pub fn open_files_limits(mut self, soft: u64, hard: Option<u64>) -> Self {
        self.open_files_limits = Some((soft, hard));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Listen on a free port picked now and keep it across restarts.
    pub fn fixed_port(mut self) -> Self {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
        self.port = probe.local_addr().expect("probe address").port();
        self
    }

    pub fn memlock_limits(mut self, soft_bytes: u64, hard_bytes: Option<u64>) -> Self {
        self.memlock_limits = Some((soft_bytes, hard_bytes));
        self
    }
}

/// A running `strom serve` process.
pub struct Broker {
    opts: BrokerOpts,
    child: Option<Child>,
    port: u16,
    admin_port: Option<u16>,
    data_dir: PathBuf,
    work: tempfile::TempDir,
    stderr_path: PathBuf,
    starts: usize,
}

/// Path of the `strom` binary (`STROM_BIN`, else next to the test executable).
pub fn strom_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STROM_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "STROM_BIN={} does not exist; {README_HINT}",
            bin.display()
        );
        return bin;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/debug/deps/test-xxx → <target>/debug/strom
    let debug_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable has no grand-parent directory");
    let bin = debug_dir.join("strom");
    assert!(
        bin.is_file(),
        "strom binary not found at {} (derived from the test executable {}); build it with \
         `cargo build -p strom-engine` using the same CARGO_TARGET_DIR, or set STROM_BIN; {README_HINT}",
        bin.display(),
        exe.display()
    );
    bin
}

impl Broker {
    /// Starts a broker and waits until it listens.
    pub fn start(opts: BrokerOpts) -> Broker {
        let work = tempfile::Builder::new()
            .prefix("strom-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| work.path().join("data"));
        let stderr_path = work.path().join("strom.stderr");
        let mut broker = Broker {
            opts,
            child: None,
            port: 0,
            admin_port: None,
            data_dir,
            work,
            stderr_path,
            starts: 0,
        };
        broker.spawn();
        broker
    }

    /// Starts a broker with default options (1 shard, fresh data dir).
    pub fn start_default() -> Broker {
        Broker::start(BrokerOpts::default())
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.starts += 1;
        let bin = strom_bin();
        let limits: Vec<String> = [
            ("nofile", self.opts.open_files_limits),
            ("memlock", self.opts.memlock_limits),
        ]
        .iter()
        .filter_map(|(name, limits)| {
            let (soft, hard) = (*limits)?;
            let hard = hard.map_or(String::new(), |h| h.to_string());
            Some(format!("--{name}={soft}:{hard}"))
        })
        .collect();
        let mut cmd = if limits.is_empty() {
            Command::new(&bin)
        } else {
            let mut wrapper = Command::new("prlimit");
            wrapper.args(&limits).arg("--").arg(&bin);
            wrapper
        };
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.opts.port))
            .arg("--smp")
            .arg(self.opts.smp.to_string());
        if self.opts.port != 0 {
            // A fixed Kafka port would put the admin API on 9644.
            cmd.arg("--admin-listen").arg("127.0.0.1:0");
        }
        if let Some(config) = &self.opts.config {
            let path = self.work.path().join("strom.toml");
            std::fs::write(&path, config).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.envs(self.opts.env.iter().map(|(k, v)| (k, v)));
        // Append the stderr of every start to one file.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("open stderr file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line.trim_end().to_string()).is_err() {
                            // Nobody listens any more; keep draining.
                        }
                    }
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(port) = parse_listening_line(&line) {
                        self.admin_port = parse_admin_port(&line);
                        break port;
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "strom did not print its listening line within {START_TIMEOUT:?} \
                         (exit status: {status:?})\n--- stderr ---\n{}",
                        self.stderr()
                    );
                }
            }
        };
        self.port = port;
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` of the admin API (`/metrics`, `/v1/...`).
    pub fn admin_url(&self) -> String {
        let port = self
            .admin_port
            .expect("the listening line named no admin API address");
        format!("http://127.0.0.1:{port}")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A scratch directory that lives as long as the broker.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// Everything the broker wrote on stderr so far (all starts).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The process is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// Asserts the process is still running, showing stderr if not.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "strom exited unexpectedly with {status}\n--- stderr ---\n{}",
                    self.stderr()
                );
            }
        } else {
            panic!("strom is not running");
        }
    }

    /// Waits up to `timeout` for the broker to exit on its own; its status,
    /// or None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("broker not running");
        let status = wait_timeout(child, timeout);
        if status.is_some() {
            self.child = None;
        }
        status
    }

    /// SIGTERM, wait for exit, assert exit status 0.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        signal(child.id(), "TERM");
        let status = wait_timeout(&mut child, STOP_TIMEOUT);
        match status {
            Some(status) => assert!(
                status.success(),
                "strom exited with {status} after SIGTERM (expected 0)\n--- stderr ---\n{}",
                self.stderr()
            ),
            None => {
                let stacks = thread_stacks(child.id());
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "strom did not exit within {STOP_TIMEOUT:?} after SIGTERM\n--- stderr ---\n{}\n--- threads ---\n{stacks}",
                    self.stderr()
                );
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Starts again on the same data dir (after `stop` or `kill9`). The port changes.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- strom stderr ({} start(s), data dir {}) ---\n{}",
                self.starts,
                self.data_dir.display(),
                tail(&self.stderr(), 200)
            );
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The port of `admin API on http://HOST:PORT` in the listening line.
pub fn parse_admin_port(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once("admin API on http://")?;
    let addr = rest.trim_end_matches(')').split_whitespace().next()?;
    addr.trim_end_matches(')').rsplit(':').next()?.parse().ok()
}

/// Parses `strom listening for Kafka clients on 127.0.0.1:PORT (...)`.
pub fn parse_listening_line(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("strom listening for Kafka clients on ")?;
    let addr = rest.split_whitespace().next()?;
    let port = addr.rsplit(':').next()?;
    port.parse().ok()
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// The stacks of every thread of a hung process (gdb, when installed), to
/// say where a broker that would not stop was waiting.
fn thread_stacks(pid: u32) -> String {
    let out = Command::new("timeout")
        .args(["30", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "thread apply all bt 40"])
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let stacks: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("Thread ") || l.starts_with('#'))
                .collect();
            stacks.join("\n")
        }
        Err(err) => format!("(no thread stacks: gdb: {err})"),
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Output of a finished client process.
#[derive(Debug)]
pub struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// stdout parsed as JSON (the last non-empty line).
    pub fn json(&self) -> serde_json::Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| panic!("no output to parse as JSON: {self}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

/// Runs a command with a time limit, feeding `stdin`, capturing both outputs.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {README_HINT}"));
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut pipe = child.stdin.take().expect("stdin");
        thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&data);
        })
    });
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = wait_timeout(&mut child, timeout);
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = String::from_utf8_lossy(&out_thread.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    Output {
        status,
        stdout,
        stderr,
        timed_out,
    }
}

/// `tests/clients/` in the source tree.
pub fn clients_dir() -> PathBuf {
    // `cargo test` sets CARGO_MANIFEST_DIR when it runs a test binary; prefer it to
    // the compile-time value, which is stale when a shared target dir was last
    // built from another checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.join("clients")
}

fn python_exe() -> String {
    std::env::var("STROM_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Fails (never skips) when python `confluent_kafka` is missing.
pub fn require_confluent_kafka() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let mut cmd = Command::new(python_exe());
        cmd.args([
            "-c",
            "import confluent_kafka; print(confluent_kafka.libversion()[0])",
        ]);
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => return Err(format!("cannot run {}: {e}", python_exe())),
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(err) = result {
        panic!("python confluent_kafka is not available ({err}); {README_HINT}");
    }
}

/// Fails (never skips) when kcat is missing.
pub fn require_kcat() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| match Command::new(kcat_bin()).arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    });
    if let Err(err) = result {
        panic!("kcat is not available ({err}); {README_HINT}");
    }
}

pub fn kcat_bin() -> String {
    std::env::var("STROM_KCAT").unwrap_or_else(|_| "kcat".to_string())
}

/// Runs `tests/clients/<script>` with args and extra env; returns its output
/// whatever the exit status.
pub fn try_python(script: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Output {
    require_confluent_kafka();
    let path = clients_dir().join(script);
    assert!(path.is_file(), "no client script {}", path.display());
    let mut cmd = Command::new(python_exe());
    cmd.arg(&path).args(args).env("PYTHONUNBUFFERED", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, None, timeout)
}

/// Runs a client script and asserts exit 0 (showing its output otherwise).
pub fn python(script: &str, args: &[&str]) -> Output {
    python_env(script, args, &[])
}

/// [`python`] with extra environment variables.
pub fn python_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = try_python(script, args, env, CLIENT_TIMEOUT);
    assert!(out.success(), "client {script} {args:?} failed\n{out}");
    out
}

/// Runs `tests/clients/node/<script>` with node (KafkaJS installed by the README's
/// test command) and asserts exit 0.
pub fn node(script: &str, args: &[&str]) -> Output {
    let dir = clients_dir().join("node");
    assert!(
        dir.join("node_modules").join("kafkajs").is_dir(),
        "KafkaJS is not installed in {}; {README_HINT}",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).args(args).current_dir(&dir);
    let out = run_command(cmd, None, CLIENT_TIMEOUT);
    assert!(out.success(), "node {script} {args:?} failed\n{out}");
    out
}

/// Runs kcat with args and optional stdin; returns its output whatever the status.
pub fn try_kcat(args: &[&str], stdin: Option<&[u8]>) -> Output {
    require_kcat();
    let mut cmd = Command::new(kcat_bin());
    cmd.args(args);
    run_command(cmd, stdin, Duration::from_secs(60))
}

/// Runs kcat and asserts exit 0.
pub fn kcat(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let out = try_kcat(args, stdin);
    assert!(out.success(), "kcat {args:?} failed\n{out}");
    out
}

/// Lines of `kcat -L -J` metadata as JSON.
pub fn kcat_metadata(bootstrap: &str) -> serde_json::Value {
    let out = kcat(&["-b", bootstrap, "-L", "-J", "-m", "10"], None);
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("kcat -L -J output is not JSON ({e})\n{out}"))
}

/// Connects a raw TCP client with read/write timeouts.
pub fn raw_connect(bootstrap: &str) -> TcpStream {
    let stream =
        TcpStream::connect(bootstrap).unwrap_or_else(|e| panic!("connect {bootstrap}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Produces keyed, numbered messages with `produce_consume.py` and reads them
/// back; returns the JSON summary.
pub fn produce_consume(bootstrap: &str, topic: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--bootstrap", bootstrap, "--topic", topic];
    args.extend_from_slice(extra);
    python("produce_consume.py", &args).json()
}

/// The compression codecs (RecordBatch attributes bits 0-2) of every batch stored
/// for a topic, read straight from its segment files: proves what the broker kept.
pub fn stored_codecs(data_dir: &Path, topic: &str) -> std::collections::BTreeSet<u8> {
    stored_batches(data_dir, topic)
        .iter()
        .map(|h| h.compression())
        .collect()
}

/// The header of every batch stored for a topic, from its segment files.
pub fn stored_batches(data_dir: &Path, topic: &str) -> Vec<strom_storage::batch::BatchHeader> {
    let mut batches = Vec::new();
    let prefix = format!("{topic}-");
    let entries = std::fs::read_dir(data_dir).expect("read data dir");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_partition = name
            .strip_prefix(&prefix)
            .is_some_and(|p| p.parse::<u32>().is_ok());
        if !is_partition {
            continue;
        }
        for file in std::fs::read_dir(entry.path())
            .expect("read partition dir")
            .flatten()
        {
            if file.path().extension().is_none_or(|e| e != "log") {
                continue;
            }
            let bytes = std::fs::read(file.path()).expect("read segment");
            let mut pos = 0;
            while pos + strom_storage::batch::BATCH_HEADER_BYTES <= bytes.len() {
                let header = strom_storage::batch::parse_header(&bytes[pos..])
                    .unwrap_or_else(|e| panic!("bad batch in {}: {e}", file.path().display()));
                pos += header.total_bytes();
                batches.push(header);
            }
        }
    }
    batches
}

/// Sends one request on a new connection and returns the decoded
/// response (raw protocol tests).
pub fn exchange<
    Req: kafka_protocol::protocol::Encodable,
    Resp: kafka_protocol::protocol::Decodable,
>(
    bootstrap: &str,
    api_key: kafka_protocol::messages::ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let frame =
        strom_net::request::encode_request(api_key, version, 42, "strom-protocol-test", request)
            .expect("encode request");
    let mut stream = raw_connect(bootstrap);
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    std::io::Write::write_all(&mut stream, &frame).expect("send");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).expect("response body");
    let mut buf = bytes::Bytes::from(response);
    assert_eq!(bytes::Buf::get_i32(&mut buf), 42, "correlation id");
    if api_key.response_header_version(version) >= 1 {
        assert_eq!(bytes::Buf::get_u8(&mut buf), 0, "no response header tags");
    }
    Resp::decode(&mut buf, version).expect("decode response")
}

/// Fails (never skips) when kafka-python with lz4 support is missing.
pub fn require_kafka_python() {
    let out = Command::new(python_exe())
        .args(["-c", "import kafka, lz4"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python_exe()));
    assert!(
        out.status.success(),
        "python kafka-python / lz4 not available ({}); {README_HINT}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `too_large.py` on topic "limited" (max.message.bytes 10000, creating it
/// unless `create` is false): a 50,000-byte message must be refused, a small one
/// accepted. Returns its JSON summary.
pub fn limited_topic(bootstrap: &str, create: bool) -> serde_json::Value {
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--topic",
        "limited",
        "--limit",
        "10000",
        "--size",
        "50000",
    ];
    if !create {
        args.push("--no-create");
    }
    python("too_large.py", &args).json()
}

/// Reads `summary[key]` as u64, panicking with the summary otherwise.
pub fn json_u64(summary: &serde_json::Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no integer {key:?}: {summary}"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_listening_line() {
        assert_eq!(
            parse_listening_line(
                "strom listening for Kafka clients on 127.0.0.1:41234 (node 1, 2 shards, data in /tmp/x)"
            ),
            Some(41234)
        );
        assert_eq!(parse_listening_line("something else"), None);
        assert_eq!(
            parse_admin_port(
                "strom listening for Kafka clients on 127.0.0.1:1 (node 1, 2 shards, data in /x, admin API on http://127.0.0.1:45678)"
            ),
            Some(45678)
        );
    }
}

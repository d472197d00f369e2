//! The real binary as a child process: killed and reaped on drop, output in files, signals;
//! commands run to completion; the configs and golden files the command-line tests share.
//!
//! Waiting is polling with a deadline, never a fixed sleep.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use dataverse_gateway::sim::{SimConfig, Simulator};

pub const BIN: &str = env!("CARGO_BIN_EXE_dataverse-gateway");
/// The repository root: `gateway.yaml` and `tests/golden/` live here.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// How long a command that needs no network may take.
pub const QUICK: Duration = Duration::from_secs(10);

/// The binary, run from the repository root with no secrets and no config from the environment.
pub fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(ROOT)
        .env_remove("CONTOSO_CLIENT_SECRET")
        .env_remove("DATAVERSE_GATEWAY_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

/// A command that ran to completion.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion (within [`QUICK`]).
pub fn run(cmd: &mut Command) -> Finished {
    let mut proc = Proc::spawn(cmd);
    let status = proc.wait(QUICK);
    Finished {
        code: status.code(),
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// `check --config CONFIG`
pub fn check(config: &str) -> Finished {
    run(gateway().args(["check", "--config", config]))
}

/// `explain --config gateway.yaml ARGS...` on the shipped example.
pub fn explain(args: &[&str]) -> Finished {
    run(gateway()
        .args(["explain", "--config", "gateway.yaml"])
        .args(args))
}

/// `tests/golden/NAME`
pub fn golden(name: &str) -> PathBuf {
    Path::new(ROOT).join("tests/golden").join(name)
}

/// Asserts that `actual` is the golden file `name` (`UPDATE_GOLDEN=1` rewrites it).
pub fn assert_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
    }
    let expected = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(actual, expected, "stdout differs from {}", path.display());
}

/// Asserts that `needles` appear in `haystack` as whole lines, in this order.
pub fn assert_lines_in_order(haystack: &str, needles: &[String]) {
    let lines: Vec<&str> = haystack.lines().collect();
    let mut from = 0;
    for needle in needles {
        match lines[from..].iter().position(|l| l == needle) {
            Some(i) => from += i + 1,
            None => panic!("missing line (or out of order):\n{needle}\n--- in ---\n{haystack}"),
        }
    }
}

/// The `auth:` block (indented 4) of the simulator's default app, its secret in
/// `dir/client-secret`, for a config the binary reads.
pub fn sim_auth(sim: &Simulator, dir: &Path) -> String {
    let app = &SimConfig::default().apps[0];
    let secret_file = write(dir, "client-secret", &format!("{}\n", app.secret));
    format!(
        "    auth:\n      tenant_id: {}\n      client_id: {}\n      authority: {url}\n      client_secret: {{ file: {secret_file:?} }}\n",
        app.tenant_id,
        app.client_id,
        url = sim.base_url()
    )
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub struct Proc {
    child: Child,
    out: tempfile::TempDir,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let out = tempfile::tempdir().expect("temporary directory");
        let stdout = File::create(out.path().join("stdout")).expect("stdout file");
        let stderr = File::create(out.path().join("stderr")).expect("stderr file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("the binary starts");
        Proc { child, out }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.out.path().join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.out.path().join("stderr")).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Sends a signal by name (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed: {status}");
    }

    /// Sends SIGTERM, the way a process supervisor stops the gateway.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Waits for the exit status, blocking this thread; panics after `within`.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("still running after {within:?}\n{}", self.output());
    }

    /// Waits for the exit status without blocking the runtime; panics after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `addr` accepts TCP connections.
    pub async fn wait_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "exited with {status} before listening on {addr}\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "not listening on {addr}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 10 s) until the admin listener at `admin` (`http://host:port`) answers
/// `/readyz` with 200: every tenant has its token and its metadata.
pub async fn wait_ready(http: &reqwest::Client, admin: &str) {
    eventually(Duration::from_secs(10), "/readyz to turn 200", || async {
        let s = http.get(format!("{admin}/readyz")).send().await.ok()?;
        (s.status() == 200).then_some(())
    })
    .await;
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.to_str().expect("utf-8 temp path").to_string()
}

//! `grpc-chaos serve` as a child process.

use std::process::Stdio;
use std::time::Duration;

/// The running binary; killed on drop so a failing test leaves no process behind.
pub struct Served {
    child: tokio::process::Child,
    stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    pub addr: String,
}

impl Served {
    /// Starts `grpc-chaos serve` on 127.0.0.1:0 and reads the address it prints first.
    pub async fn start(extra_args: &[&str]) -> Self {
        Self::spawn(extra_args, "warn", Stdio::inherit()).await
    }

    /// Starts it logging at `level` (a `RUST_LOG` filter) to a pipe, for
    /// [`Served::logs_after_exit`].
    pub async fn start_logging(level: &str, extra_args: &[&str]) -> Self {
        Self::spawn(extra_args, level, Stdio::piped()).await
    }

    /// Starts it listening on `addr` (such as `0.0.0.0:0`) instead of loopback.
    pub async fn start_on(addr: &str, extra_args: &[&str]) -> Self {
        Self::spawn_on(addr, extra_args, "warn", Stdio::inherit()).await
    }

    async fn spawn(extra_args: &[&str], log: &str, stderr: Stdio) -> Self {
        Self::spawn_on("127.0.0.1:0", extra_args, log, stderr).await
    }

    /// Starts `grpc-chaos proxy` on 127.0.0.1:0 in front of `upstream`.
    pub async fn start_proxy(upstream: &str, extra_args: &[&str]) -> Self {
        let mut args = vec!["--upstream", upstream];
        args.extend_from_slice(extra_args);
        Self::spawn_command("proxy", "127.0.0.1:0", &args, "warn", Stdio::inherit()).await
    }

    async fn spawn_on(addr: &str, extra_args: &[&str], log: &str, stderr: Stdio) -> Self {
        Self::spawn_command("serve", addr, extra_args, log, stderr).await
    }

    async fn spawn_command(
        command: &str,
        addr: &str,
        extra_args: &[&str],
        log: &str,
        stderr: Stdio,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
            .args([command, "--addr", addr])
            .args(extra_args)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("the grpc-chaos binary starts");
        let mut first = String::new();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).await.unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .expect("first line names the address")
            .to_string();
        Self {
            child,
            stdout,
            addr,
        }
    }

    /// The next line it printed on stdout (after the first, which named the address).
    pub async fn next_line(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        self.stdout.read_line(&mut line).await.unwrap();
        line.trim_end().to_string()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the process is running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (the runtime keeps running meanwhile, so the
    /// test's client still answers the server's HTTP/2 shutdown handshake).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let status = tokio::time::timeout(limit, self.child.wait()).await.ok()?;
        status.ok()?.code()
    }

    /// Everything it logged, once it has exited (see [`Served::start_logging`]).
    pub async fn logs_after_exit(&mut self) -> String {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        let mut stderr = self
            .child
            .stderr
            .take()
            .expect("started with start_logging");
        stderr.read_to_string(&mut text).await.unwrap();
        text
    }

    /// The process's resident set size in KiB (Linux), `None` where /proc has none.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// A connected channel, for clients without `connect` of their own.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.uri())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Runs the `grpc-chaos` binary to its end: its exit code, stdout and stderr.
pub async fn cli(args: &[String]) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
        .args(args)
        .output()
        .await
        .expect("the grpc-chaos binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

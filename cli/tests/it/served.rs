//! `grpc-chaos serve` as a child process.

use std::process::Stdio;
use std::time::Duration;

/// The running binary; killed on drop so a failing test leaves no process behind.
pub struct Served {
    child: tokio::process::Child,
    pub addr: String,
}

impl Served {
    /// Starts `grpc-chaos serve` on 127.0.0.1:0 and reads the address it prints first.
    pub async fn start(extra_args: &[&str]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_grpc-chaos"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the grpc-chaos binary starts");
        let mut first = String::new();
        tokio::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .await
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .expect("first line names the address")
            .to_string();
        Self { child, addr }
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

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}

//! A server binary run as its users run it, for tests: on a free loopback port, its
//! log captured, stopped with SIGTERM so its shutdown is tested too, and killed if the
//! test fails first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A running server process with its standard error captured.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    port: u16,
}

impl ServerProcess {
    /// Starts `command` (which must make the server listen on 127.0.0.1:`port`), with
    /// its standard output discarded and its standard error kept for
    /// [`stop`](Self::stop).
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(mut command: Command, port: u16) -> std::io::Result<Self> {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Self {
            child: Some(child),
            port,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits (10 s at most) until it accepts connections; `false` if it never did.
    pub async fn wait_listening(&self) -> bool {
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    /// Sends SIGTERM, waits for it to exit, and returns its exit status and every line
    /// it wrote to standard error.
    ///
    /// # Errors
    /// When the signal cannot be sent or the process cannot be waited for.
    pub fn stop(mut self) -> std::io::Result<(ExitStatus, Vec<String>)> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("already stopped"));
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let lines = match child.stderr.take() {
            Some(stderr) => BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect(),
            None => Vec::new(),
        };
        Ok((child.wait()?, lines))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Parses log lines as JSON objects (`--log-format json`), naming the first line that
/// is not one.
///
/// # Errors
/// The first line that is not JSON, with the parser's complaint.
pub fn json_lines(lines: &[String]) -> Result<Vec<serde_json::Value>, String> {
    lines
        .iter()
        .map(|line| serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}")))
        .collect()
}

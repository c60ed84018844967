//! A node in its own process: the `headwater` binary started on free ports, for tests and
//! benchmarks that kill it, restart it, or must not share a process with their client.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A free TCP port of 127.0.0.1, as the OS hands one out. Another process may take it before
/// it is used; for in-process nodes bind port 0 instead (see [`crate::TestNode`]).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `headwater serve` process; killed when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    /// Where its Kafka listener is.
    pub kafka: SocketAddr,
    /// Where its HTTP listener is.
    pub http: SocketAddr,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    /// Starts `bin serve` over `data` (applying the manifests in `domains`) and waits until
    /// both listeners accept connections.
    pub fn start(bin: &Path, data: &Path, domains: Option<&Path>) -> anyhow::Result<Self> {
        let kafka: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data)
            .arg("--kafka-addr")
            .arg(kafka.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(d) = domains {
            cmd.arg("--domains").arg(d);
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "starting {}; build it with `cargo build --release -p headwater`",
                bin.display()
            )
        })?;
        let mut node = NodeProcess { child, kafka, http };
        node.wait_listening(Duration::from_secs(30))?;
        Ok(node)
    }

    /// Waits until both listeners accept connections; fails early if the process exits.
    fn wait_listening(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while TcpStream::connect(self.http).is_err() || TcpStream::connect(self.kafka).is_err() {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the node exited before listening: {status}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the node did not start listening within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

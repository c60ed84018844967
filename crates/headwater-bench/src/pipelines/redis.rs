//! Redis as the baseline of view lookups: a `redis-server` started on a free port, and a RESP
//! connection to load it with the view's answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use headwater_test_support::{connect, free_port};

/// A Redis connection speaking RESP.
pub(crate) struct Redis {
    stream: BufReader<TcpStream>,
}

impl Redis {
    pub(crate) fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Redis {
            stream: BufReader::new(connect(addr)?),
        })
    }

    pub(crate) fn command(&mut self, args: &[&[u8]]) -> anyhow::Result<Vec<u8>> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&req)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        match line.as_bytes().first() {
            Some(b'$') => {
                let n: i64 = line[1..].trim().parse()?;
                if n < 0 {
                    return Ok(Vec::new());
                }
                let mut v = vec![0; n as usize + 2];
                self.stream.read_exact(&mut v)?;
                v.truncate(n as usize);
                Ok(v)
            }
            Some(b'+' | b':') => Ok(line.into_bytes()),
            _ => anyhow::bail!("redis answered {line:?}"),
        }
    }
}

pub(crate) struct RedisProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_redis() -> anyhow::Result<RedisProcess> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server; install it with `apt-get install redis-server`")?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(RedisProcess { child, addr })
}

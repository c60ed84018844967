//! A keep-alive HTTP/1.1 client, enough for the node's small JSON answers: benchmarks measure
//! the server, not a client library's overhead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use anyhow::Context;
use serde_json::Value;

/// A client connection with Nagle off: every benchmark client sends small requests and waits.
pub fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct Http {
    stream: BufReader<TcpStream>,
}

impl Http {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Http {
            stream: BufReader::new(connect(addr)?),
        })
    }

    /// Sends one request; answers its status and body (read by its Content-Length).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Sends one request and reads a 2xx answer as JSON; another status is an error.
    pub fn json(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, text) = self.request(method, path, body)?;
        anyhow::ensure!(status < 300, "{method} {path}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

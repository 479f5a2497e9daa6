//! A server that holds the clinic's own TLS certificate and key (so the phone's pinning lets it
//! through) and answers every request `200 OK` with an empty body: a 2xx with no receipt, as a
//! broken clinic or a compromised front end could send.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running liar; stopped when dropped (with its runtime).
pub struct Liar {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Liar {
    /// Serves with the certificate and key in a clinic directory (`tls/cert.pem`, `tls/key.pem`).
    pub fn start(clinic_dir: &Path) -> Liar {
        let read = |f: &str| std::fs::read(clinic_dir.join("tls").join(f)).unwrap();
        let chain =
            lotsa_clinic::tls::certificates(&read("cert.pem"), Path::new("cert.pem")).unwrap();
        let key = lotsa_clinic::tls::private_key(&read("key.pem"), Path::new("key.pem")).unwrap();
        let config: Arc<rustls::ServerConfig> =
            lotsa_clinic::server::tls_config(chain, key).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // Read one request (headers, then the body its Content-Length names).
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let Ok(n) = tls.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if let Some(end) = find(&seen, b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if seen.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = tls.write_all(answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Liar {
            addr,
            _runtime: runtime,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

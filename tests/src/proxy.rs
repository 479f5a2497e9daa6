//! A real TCP proxy on 127.0.0.1 between a device and a clinic, for fault injection: it forwards
//! bytes both ways, counts what the device sent, can be pointed at another upstream (a server
//! that is not the clinic), and can misbehave on the next connections: reset them at once, drop
//! the clinic's answer after forwarding the request, or hold the answer back.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A running proxy; stopped when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What the proxy does to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways.
    None,
    /// Close the device's connection at once, before anything reaches the clinic.
    Hangup,
    /// Forward the TLS handshake and the device's request to the clinic, then cut the connection
    /// instead of forwarding the answer: the clinic did the work, the device never hears.
    DropResponse,
    /// Hold the clinic's answer back this long before forwarding it.
    Delay(std::time::Duration),
    /// Hold back every answer on the connection this long (a slow link, request after request).
    SlowAnswers(std::time::Duration),
}

struct Shared {
    faults: Mutex<std::collections::VecDeque<Fault>>,
    upstream: Mutex<SocketAddr>,
    to_upstream: AtomicU64,
    connections: AtomicU64,
    stopping: AtomicBool,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        let addr = listener.local_addr().expect("it has an address");
        let shared = Arc::new(Shared {
            faults: Mutex::new(std::collections::VecDeque::new()),
            upstream: Mutex::new(upstream),
            to_upstream: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = shared.clone();
                    std::thread::spawn(move || forward(client, &shared));
                }
            })
        };
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Where devices connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends what comes next to another server.
    pub fn point_at(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = upstream;
    }

    /// The next connections, one fault each, in order (then forwarding again).
    pub fn next(&self, faults: &[Fault]) {
        self.shared.faults.lock().unwrap().extend(faults);
    }

    /// Bytes the device sent through the proxy so far (TLS records included).
    pub fn bytes_to_upstream(&self) -> u64 {
        self.shared.to_upstream.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn forward(client: TcpStream, shared: &Shared) {
    let fault = shared
        .faults
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Fault::None);
    if fault == Fault::Hangup {
        return;
    }
    let upstream = *shared.upstream.lock().unwrap();
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (Ok(client_read), Ok(server_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let sent = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            copy(
                client_read,
                server_write,
                &[&shared.to_upstream, &sent],
                Fault::None,
                None,
            )
        });
        copy(server, client, &[], fault, Some(&sent));
    });
}

/// More than a TLS 1.3 client sends before its request (ClientHello and Finished), less than
/// any request with a body.
const HANDSHAKE_BYTES: u64 = 1_500;

/// Copies until either side closes, adding what it copies to `counts`, doing `fault` to it
/// (`device_sent`: what the device has sent on this connection, for `DropResponse`).
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    counts: &[&AtomicU64],
    fault: Fault,
    device_sent: Option<&AtomicU64>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut delayed = false;
    // How much the device had sent when the last answer was held back.
    let mut answered_up_to = 0;
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for count in counts {
                    count.fetch_add(n as u64, Ordering::SeqCst);
                }
                let request_sent =
                    device_sent.is_some_and(|s| s.load(Ordering::SeqCst) > HANDSHAKE_BYTES);
                match fault {
                    Fault::DropResponse if request_sent => {
                        // Give the clinic time to answer, then cut: its answer is thrown away.
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                        return;
                    }
                    Fault::Delay(d) if request_sent && !delayed => {
                        std::thread::sleep(d);
                        delayed = true;
                    }
                    Fault::SlowAnswers(d) if request_sent => {
                        let sent = device_sent.map_or(0, |s| s.load(Ordering::SeqCst));
                        if sent > answered_up_to {
                            std::thread::sleep(d);
                            answered_up_to = sent;
                        }
                    }
                    _ => {}
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

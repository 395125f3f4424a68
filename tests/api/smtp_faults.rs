//! A TCP proxy in front of the test SMTP server that the test can make misbehave the way
//! real mail servers do: refuse connections, answer 421, drop the connection in the
//! middle of a message, or stall. lettre talks real SMTP through it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::TestSmtp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Pass everything through.
    None,
    /// Nothing listens: connection refused.
    Refuse,
    /// Greets with "421 try again later" and hangs up.
    Busy,
    /// Passes the conversation through until the message is being sent, then cuts it.
    DropDuringData,
    /// Accepts the connection and never says a word.
    Stall,
    /// Refuses with a reply full of control characters: a line break that would forge a
    /// log line, a terminal escape, a bell.
    Hostile,
}

pub struct FaultySmtp {
    pub smtp: TestSmtp,
    port: u16,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl FaultySmtp {
    pub fn start(fault: Fault) -> Self {
        let smtp = TestSmtp::start();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            smtp: smtp.clone(),
            port,
            fault: Arc::new(Mutex::new(fault)),
            connections: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(Mutex::new(Vec::new())),
        };
        let (fault, connections, open) = (
            proxy.fault.clone(),
            proxy.connections.clone(),
            proxy.open.clone(),
        );
        std::thread::spawn(move || {
            accept_loop(listener, port, smtp.port, fault, connections, open)
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Changes behaviour; connections already open are cut, as a failing server would.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn accept_loop(
    listener: TcpListener,
    port: u16,
    upstream: u16,
    fault: Arc<Mutex<Fault>>,
    connections: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<TcpStream>>>,
) {
    let mut listener = Some(listener);
    loop {
        let now = *fault.lock().unwrap();
        if now == Fault::Refuse {
            // Closing the socket makes connection attempts fail with "refused".
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let Some(active) = &listener else {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(rebound) => {
                    rebound.set_nonblocking(true).unwrap();
                    listener = Some(rebound);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            continue;
        };
        active.set_nonblocking(true).unwrap();
        match active.accept() {
            Ok((client, _)) => {
                connections.fetch_add(1, Ordering::SeqCst);
                client.set_nonblocking(false).unwrap();
                if let Ok(copy) = client.try_clone() {
                    open.lock().unwrap().push(copy);
                }
                let fault = fault.clone();
                std::thread::spawn(move || serve(client, upstream, now, fault));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve(mut client: TcpStream, upstream: u16, fault: Fault, current: Arc<Mutex<Fault>>) {
    match fault {
        Fault::Refuse => {}
        Fault::Busy => {
            let _ = client.write_all(b"421 4.7.0 Too busy, try again later\r\n");
        }
        Fault::Hostile => {
            let _ = client.write_all(
                b"554 5.7.1 Go away\r\x1b[2K2026-11-30T00:00:00Z  INFO enroll: admin signed in\x07\x1b[31m\r\n",
            );
        }
        Fault::Stall => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while *current.lock().unwrap() == Fault::Stall && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Fault::None | Fault::DropDuringData => {
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (mut client_reader, mut server_writer) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let downstream = std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(Shutdown::Both);
            });
            let mut seen = Vec::new();
            let mut after_data = None::<usize>;
            let mut buffer = [0u8; 4096];
            while let Ok(n) = client_reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if fault == Fault::DropDuringData {
                    seen.extend_from_slice(&buffer[..n]);
                    if after_data.is_none()
                        && let Some(at) = find(&seen, b"DATA\r\n")
                    {
                        after_data = Some(at);
                    }
                    // The command and the first part of the message go through; then the line dies.
                    if let Some(at) = after_data
                        && seen.len() > at + 200
                    {
                        let keep = (at + 200).saturating_sub(seen.len() - n);
                        let _ = server_writer.write_all(&buffer[..keep.min(n)]);
                        let _ = server_writer.shutdown(Shutdown::Both);
                        let _ = client_reader.shutdown(Shutdown::Both);
                        break;
                    }
                }
                if server_writer.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = server_writer.shutdown(Shutdown::Both);
            let _ = downstream.join();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

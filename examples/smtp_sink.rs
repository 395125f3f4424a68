//! An SMTP server on loopback that accepts everything and counts it, for the outbox
//! throughput benchmark. Writes "count first_ms last_ms" to a file ten times a second.
//!
//! cargo run --release --example smtp_sink -- 2525 /tmp/sink.txt

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server};

#[derive(Clone)]
struct Counter {
    count: Arc<AtomicU64>,
    first_ms: Arc<AtomicU64>,
    last_ms: Arc<AtomicU64>,
    start: Instant,
}

static FIRST: OnceLock<()> = OnceLock::new();

impl Handler for Counter {
    fn data_end(&mut self) -> Response {
        let at = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        if FIRST.set(()).is_ok() {
            self.first_ms.store(at, Ordering::SeqCst);
        }
        self.last_ms.store(at, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
        OK
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(2525);
    let report = args.next().unwrap_or_else(|| "smtp-sink.txt".to_owned());
    let counter = Counter {
        count: Arc::default(),
        first_ms: Arc::default(),
        last_ms: Arc::default(),
        start: Instant::now(),
    };
    let watcher = counter.clone();
    std::thread::spawn(move || {
        loop {
            let line = format!(
                "{} {} {}\n",
                watcher.count.load(Ordering::SeqCst),
                watcher.first_ms.load(Ordering::SeqCst),
                watcher.last_ms.load(Ordering::SeqCst)
            );
            let _ = std::fs::write(&report, line);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let mut server = Server::new(counter);
    server
        .with_name("smtp-sink")
        // A thread per connection: enough for every pooled connection of the sender.
        .with_num_threads(64)
        .with_addr(("127.0.0.1", port))
        .expect("a valid address");
    server.serve().expect("the SMTP sink runs");
}

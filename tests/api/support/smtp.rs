//! The loopback SMTP server every test app sends to, and the emails it received.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server};
use tokio::sync::watch;

/// How long a test waits for the background worker to deliver.
const WORKER_DEADLINE: Duration = Duration::from_secs(20);

/// An email as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub to: Vec<String>,
    pub raw: String,
    pub received_at: Instant,
}

impl ReceivedEmail {
    /// An email written by the file transport.
    pub fn from_file(path: &std::path::Path) -> Self {
        Self {
            to: Vec::new(),
            raw: std::fs::read_to_string(path).expect("a readable .eml file"),
            received_at: Instant::now(),
        }
    }

    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(self.raw.as_bytes()).expect("a parseable email")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body of the first part with this content type.
    pub fn part(&self, content_type: &str) -> String {
        fn find(mail: &mailparse::ParsedMail<'_>, content_type: &str) -> Option<String> {
            if mail.ctype.mimetype == content_type {
                return mail.get_body().ok().map(|body| body.replace("\r\n", "\n"));
            }
            mail.subparts.iter().find_map(|p| find(p, content_type))
        }
        find(&self.parsed(), content_type).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The enrollment link's path (`/enroll/<token>`), from the plain-text part.
    pub fn enrollment_path(&self) -> String {
        let text = self.text();
        let start = text
            .find("/enroll/")
            .expect("an enrollment link in the email");
        let token: String = text[start + "/enroll/".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        format!("/enroll/{token}")
    }

    pub fn enrollment_link(&self) -> String {
        let text = self.text();
        let start = text.find("http").expect("a link in the email");
        text[start..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// What the test SMTP server does with each recipient.
#[derive(Clone, Default)]
pub struct SmtpBehaviour {
    /// Recipients containing this text are refused with 550.
    pub refuse_containing: Option<String>,
    /// How long the server takes to accept each message (after it has it).
    pub delay_per_message: Duration,
}

#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    /// How many emails have arrived, for tests waiting on the background worker.
    arrivals: Arc<watch::Sender<usize>>,
    behaviour: Arc<Mutex<SmtpBehaviour>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        let refuse = self
            .behaviour
            .lock()
            .unwrap()
            .refuse_containing
            .clone()
            .is_some_and(|text| to.contains(&text));
        if refuse { NO_MAILBOX } else { OK }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let count = {
            let mut received = self.received.lock().unwrap();
            received.push(ReceivedEmail {
                to: std::mem::take(&mut self.to),
                raw: String::from_utf8_lossy(&self.data).into_owned(),
                received_at: Instant::now(),
            });
            received.len()
        };
        self.arrivals.send_replace(count);
        let delay = self.behaviour.lock().unwrap().delay_per_message;
        std::thread::sleep(delay);
        OK
    }
}

/// A real SMTP server (mailin-embedded) on a random loopback port.
#[derive(Clone)]
pub struct TestSmtp {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    arrivals: Arc<watch::Sender<usize>>,
    behaviour: Arc<Mutex<SmtpBehaviour>>,
}

impl TestSmtp {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(SmtpBehaviour::default()));
        let arrivals = Arc::new(watch::Sender::new(0));
        let recorder = Recorder {
            received: received.clone(),
            arrivals: arrivals.clone(),
            behaviour: behaviour.clone(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        server
            .with_name("test-smtp")
            .with_num_threads(8)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self {
            port,
            received,
            arrivals,
            behaviour,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn delay_each_message(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay_per_message = delay;
    }

    pub fn clear_refusals(&self) {
        self.behaviour.lock().unwrap().refuse_containing = None;
    }

    pub fn refuse_recipients_containing(&self, text: &str) {
        self.behaviour.lock().unwrap().refuse_containing = Some(text.to_owned());
    }

    pub fn received(&self) -> Vec<ReceivedEmail> {
        self.received.lock().unwrap().clone()
    }

    /// All emails to `address`, oldest first.
    pub fn to(&self, address: &str) -> Vec<ReceivedEmail> {
        self.received()
            .into_iter()
            .filter(|e| e.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// The `n`-th (1-based) email to `address`, which must have arrived.
    pub fn nth_to(&self, address: &str, n: usize) -> ReceivedEmail {
        let emails = self.to(address);
        assert!(
            emails.len() >= n,
            "expected email #{n} to {address}, the SMTP server has {} to them",
            emails.len()
        );
        emails[n - 1].clone()
    }

    /// For tests of the background worker (the others deliver with
    /// `TestApp::deliver_due_emails` and read the inbox at once): waits, woken by each
    /// arrival, until `done` holds, for at most 20 seconds.
    async fn wait_until(&self, done: impl Fn(&Self) -> bool, what: impl Fn(&Self) -> String) {
        let mut arrivals = self.arrivals.subscribe();
        let waited = tokio::time::timeout(WORKER_DEADLINE, arrivals.wait_for(|_| done(self))).await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "after {WORKER_DEADLINE:?}: {}",
            what(self)
        );
    }

    /// Waits for the background worker to deliver at least `count` emails; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<ReceivedEmail> {
        self.wait_until(
            |smtp| smtp.received().len() >= count,
            |smtp| {
                format!(
                    "expected {count} emails, the SMTP server has {}",
                    smtp.received().len()
                )
            },
        )
        .await;
        self.received()
    }

    /// Waits for the background worker to deliver the `n`-th (1-based) email to `address`.
    pub async fn wait_for_nth_to(&self, address: &str, n: usize) -> ReceivedEmail {
        self.wait_until(
            |smtp| smtp.to(address).len() >= n,
            |smtp| {
                format!(
                    "expected email #{n} to {address}, got {}",
                    smtp.to(address).len()
                )
            },
        )
        .await;
        self.nth_to(address, n)
    }
}

//! Email: templates to messages, the outbox, transports, and the worker that sends.

pub mod compose;
pub mod dkim;
pub mod outbox;
pub mod seal;
pub mod transport;
mod watcher;
pub mod worker;

pub use dkim::{dkim_txt_record, txt_record_name};
pub use seal::MailKey;
pub use transport::Mailer;
pub use worker::{MailQueue, MailWorker, RetryPolicy, WorkerSettings};

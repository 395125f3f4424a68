//! Email: templates to messages, the outbox, transports, and the worker that sends.

pub mod compose;
pub mod outbox;
pub mod transport;
pub mod worker;

pub use transport::Mailer;
pub use worker::{MailQueue, MailWorker, RetryPolicy, WorkerSettings};

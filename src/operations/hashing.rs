//! Password hashing on threads of its own, a few at a time.
//!
//! Argon2 takes 19 MiB and tens of milliseconds of CPU per password. On the runtime's
//! blocking pool it queued every database call behind it: a few dozen failing sign-ins
//! at once stalled every page. Here at most `threads` hashes run at once, each on a
//! thread started for it (cheap next to the hash), and a sign-in that finds them all
//! busy is refused at once rather than queued: queueing would only turn a flood into
//! memory and latency.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Error, Result};

pub struct PasswordHashing {
    slots: Arc<Semaphore>,
}

/// The right to run one hash; the slot is free again when this is dropped.
pub struct HashSlot {
    _permit: OwnedSemaphorePermit,
}

impl PasswordHashing {
    pub fn new(threads: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Half the cores: the other half keeps serving pages whatever comes in.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores / 2)
    }

    /// A slot now, or none when every one is taken.
    pub fn try_slot(&self) -> Option<HashSlot> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        Some(HashSlot { _permit: permit })
    }

    /// A slot, waiting for one: for an administrator's change (a new account, a reset
    /// password), which is rare and should not fail because of a flood. The semaphore
    /// is fair, so waiters go before later `try_slot` calls.
    pub async fn slot(&self) -> Result<HashSlot> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map(|permit| HashSlot { _permit: permit })
            .map_err(|e| Error::Unexpected(e.into()))
    }
}

impl HashSlot {
    /// Runs `work` on a thread of its own; the slot is free again when it ends.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("enroll-password-hash".to_owned())
            .spawn(move || {
                let outcome = work();
                drop(self);
                // The request may have gone away; nothing is waiting then.
                let _ = done.send(outcome);
            })
            .map_err(|e| {
                Error::Unexpected(anyhow::Error::new(e).context("cannot start a thread"))
            })?;
        result
            .await
            .map_err(|_| Error::Unexpected(anyhow::anyhow!("the password hash did not finish")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_beyond_the_slots_are_refused_not_queued() {
        let hashing = PasswordHashing::new(1);
        let first = hashing.try_slot().expect("a free slot");
        assert!(hashing.try_slot().is_none());
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn(first.run(move || wait.recv().is_ok()));
        assert!(hashing.try_slot().is_none(), "taken while its hash runs");
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        assert!(hashing.try_slot().is_some(), "free once it ended");
    }
}

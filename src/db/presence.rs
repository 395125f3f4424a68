//! This instance as the others see it through the database: a lock that it holds for as
//! long as it runs (so that another instance can tell at once that it died and take
//! over the email it had claimed), and, on PostgreSQL, the notifications it hears.
//!
//! - PostgreSQL: one dedicated connection holds a session advisory lock on a key derived
//!   from the instance's id and LISTENs on the channels the triggers notify. A process
//!   killed with SIGKILL loses its connections, and PostgreSQL releases the lock with
//!   them.
//! - SQLite: the instance holds an exclusive lock (flock) on a file of its own in a folder
//!   beside the database; the kernel releases it when the process dies. Every instance
//!   of one SQLite database runs on its machine, so a file lock is as exact as the
//!   advisory lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{DatabaseUrl, DbConnection, Engine};

/// Channels the triggers notify (see the `outbox_instances` migration).
pub const OUTBOX_CHANNEL: &str = "enroll_outbox";
pub const SESSIONS_CHANNEL: &str = "enroll_sessions";
pub const USERS_CHANNEL: &str = "enroll_users";

/// How often the listening connection looks for notifications that arrived. diesel
/// reads them without blocking (it does not expose the socket to wait on); reading
/// sends nothing to the server, so this costs the database nothing.
const LISTEN_TICK: Duration = Duration::from_millis(25);
/// Between attempts to connect again after losing the listening connection.
const RECONNECT_WAIT: Duration = Duration::from_secs(1);
/// Looks for a dead connection this often (a query), since a vanished server does
/// not always close the socket.
const LISTEN_CHECK: Duration = Duration::from_secs(30);

type Hook = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Hooks {
    outbox: Vec<Hook>,
    sessions: Vec<Hook>,
    users: Vec<Hook>,
}

/// Shared between the [`Presence`] and its listening thread.
struct Shared {
    hooks: Mutex<Hooks>,
    /// Whether notifications are being heard now; a gap means some may have been missed.
    listening: AtomicBool,
    /// PostgreSQL: the connection that holds the lock and listens (None while lost).
    conn: Mutex<Option<diesel::PgConnection>>,
    stopping: Mutex<bool>,
    stop: Condvar,
}

impl Shared {
    fn run_hooks(&self, pick: fn(&Hooks) -> &Vec<Hook>) {
        let hooks: Vec<Hook> = self
            .hooks
            .lock()
            .map(|hooks| pick(&hooks).clone())
            .unwrap_or_default();
        for hook in hooks {
            hook();
        }
    }

    /// Sleeps `wait` unless stopped; true when stopping.
    fn sleep(&self, wait: Duration) -> bool {
        let Ok(stopping) = self.stopping.lock() else {
            return true;
        };
        self.stop
            .wait_timeout_while(stopping, wait, |stopping| !*stopping)
            .map_or(true, |(stopping, _)| *stopping)
    }
}

pub struct Presence {
    instance_id: String,
    engine: Engine,
    /// SQLite: the folder of the instances' lock files.
    lock_dir: Option<PathBuf>,
    /// SQLite: this instance's lock, held until the process ends.
    _lock_file: Option<File>,
    shared: Arc<Shared>,
}

impl Presence {
    /// Takes this instance's lock under a new id and, on PostgreSQL, starts listening.
    pub fn start(url: &DatabaseUrl) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            hooks: Mutex::default(),
            listening: AtomicBool::new(false),
            conn: Mutex::new(None),
            stopping: Mutex::new(false),
            stop: Condvar::new(),
        });
        match url.engine() {
            Engine::Sqlite
                if url
                    .sqlite_path()
                    .is_some_and(|p| p == Path::new(":memory:")) =>
            {
                // A database of this process alone: nobody else can claim its email.
                shared.listening.store(true, Ordering::SeqCst);
                Ok(Self {
                    instance_id: uuid::Uuid::new_v4().to_string(),
                    engine: Engine::Sqlite,
                    lock_dir: None,
                    _lock_file: None,
                    shared,
                })
            }
            Engine::Sqlite => {
                let dir = sqlite_lock_dir(url);
                crate::files::create_private_dir_all(&dir)?;
                let instance_id = uuid::Uuid::new_v4().to_string();
                let file = crate::files::create_private_file(&dir.join(lock_name(&instance_id)))?;
                file.try_lock()
                    .map_err(|e| anyhow::anyhow!("cannot lock this instance's file: {e}"))?;
                // Nothing to hear on SQLite: every change comes from this process.
                shared.listening.store(true, Ordering::SeqCst);
                Ok(Self {
                    instance_id,
                    engine: Engine::Sqlite,
                    lock_dir: Some(dir),
                    _lock_file: Some(file),
                    shared,
                })
            }
            Engine::Postgres => {
                let instance_id = uuid::Uuid::new_v4().to_string();
                let key = lock_key(&instance_id);
                // The first connection is made here, so that a start without a lock fails.
                let conn = listen(url, key)?;
                if let Ok(mut slot) = shared.conn.lock() {
                    *slot = Some(conn);
                }
                shared.listening.store(true, Ordering::SeqCst);
                let thread_shared = shared.clone();
                let url = url.clone();
                std::thread::Builder::new()
                    .name("db-listen".to_owned())
                    .spawn(move || keep_listening(&url, key, &thread_shared))?;
                Ok(Self {
                    instance_id,
                    engine: Engine::Postgres,
                    lock_dir: None,
                    _lock_file: None,
                    shared,
                })
            }
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Calls `hook` when another instance (or anything else) queued email.
    pub fn on_outbox(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.shared.hooks.lock() {
            hooks.outbox.push(Arc::new(hook));
        }
    }

    /// Calls `hook` when sessions, accounts or credentials changed anywhere, and when notifications
    /// may have been missed (the listening connection was lost and made again).
    pub fn on_sessions(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.shared.hooks.lock() {
            hooks.sessions.push(Arc::new(hook));
        }
    }

    /// Calls `hook` when users changed anywhere (the `user_changes` log grew), and when
    /// notifications may have been missed.
    pub fn on_users(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.shared.hooks.lock() {
            hooks.users.push(Arc::new(hook));
        }
    }

    /// Whether the database tells this instance of changes made by others (PostgreSQL's
    /// notifications). On SQLite the command line writes without telling anyone.
    pub fn hears_other_writers(&self) -> bool {
        self.engine == Engine::Postgres
    }

    /// Whether every change made elsewhere is heard now (always on SQLite). On
    /// PostgreSQL the notifications that already arrived are handled first (reading
    /// them asks nothing of the server), so that a change another instance committed
    /// before this call began is known here, not only on the listener's next tick.
    pub fn is_listening(&self) -> bool {
        if self.engine == Engine::Postgres {
            let Ok(mut conn) = self.shared.conn.lock() else {
                return false;
            };
            let Some(live) = conn.as_mut() else {
                return false;
            };
            if drain(live, &self.shared).is_err() {
                // The listener thread notices too, and connects again.
                return false;
            }
        }
        self.shared.listening.load(Ordering::SeqCst)
    }

    /// Whether the instance `other` still runs. On PostgreSQL this briefly takes its
    /// lock on `conn` when it is free (and gives it back at once).
    pub fn is_alive(&self, conn: &mut DbConnection, other: &str) -> anyhow::Result<bool> {
        if other == self.instance_id {
            return Ok(true);
        }
        match self.engine {
            Engine::Postgres => {
                let key = lock_key(other);
                let DbConnection::Postgresql(pg) = conn else {
                    anyhow::bail!("not a PostgreSQL connection");
                };
                let taken = diesel::select(pg_try_advisory_lock(key)).get_result::<bool>(pg)?;
                if taken {
                    diesel::select(pg_advisory_unlock(key)).get_result::<bool>(pg)?;
                }
                Ok(!taken)
            }
            Engine::Sqlite => {
                let Some(dir) = &self.lock_dir else {
                    return Ok(true);
                };
                let path = dir.join(lock_name(other));
                let file = match File::open(&path) {
                    Ok(file) => file,
                    // Removed by whoever found it dead first.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                match file.try_lock() {
                    Ok(()) => {
                        // Dead: its file is of no more use (ours stays locked meanwhile).
                        let _ = std::fs::remove_file(&path);
                        Ok(false)
                    }
                    Err(std::fs::TryLockError::WouldBlock) => Ok(true),
                    Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
                }
            }
        }
    }

    /// Stops listening and, on PostgreSQL, gives up the lock with its connection (what
    /// this instance still sends is protected by its rows' locks); on SQLite the lock
    /// goes with the process.
    pub fn stop(&self) {
        if let Ok(mut stopping) = self.shared.stopping.lock() {
            *stopping = true;
            self.shared.stop.notify_all();
        }
        self.shared.listening.store(false, Ordering::SeqCst);
        if let Ok(mut conn) = self.shared.conn.lock() {
            *conn = None;
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.stop();
        if let (Some(dir), Some(_)) = (&self.lock_dir, &self._lock_file) {
            let _ = std::fs::remove_file(dir.join(lock_name(&self.instance_id)));
        }
    }
}

diesel::define_sql_function!(fn pg_try_advisory_lock(key: BigInt) -> Bool);
diesel::define_sql_function!(fn pg_advisory_unlock(key: BigInt) -> Bool);

/// The advisory lock key of an instance: 64 bits of its random id.
fn lock_key(instance_id: &str) -> i64 {
    let digest = crate::crypto::sha256_hex(instance_id.as_bytes());
    u64::from_str_radix(&digest[..16], 16).map_or(0, |bits| bits as i64)
}

fn lock_name(instance_id: &str) -> String {
    // Ids are uuids we made; the hash keeps any other text out of the path.
    format!(
        "{}.lock",
        &crate::crypto::sha256_hex(instance_id.as_bytes())[..32]
    )
}

fn sqlite_lock_dir(url: &DatabaseUrl) -> PathBuf {
    let path = url.sqlite_path().unwrap_or_default();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".instances");
    path.with_file_name(name)
}

/// A connection that holds the instance's lock and listens on every channel.
fn listen(url: &DatabaseUrl, key: i64) -> anyhow::Result<diesel::PgConnection> {
    openssl_sys::init();
    let mut conn = diesel::PgConnection::establish(&url.url)?;
    let locked = diesel::select(pg_try_advisory_lock(key)).get_result::<bool>(&mut conn)?;
    // Only this instance knows its id: the lock is free unless another instance is
    // checking at this very moment whether we are alive (and then sees we are).
    anyhow::ensure!(locked, "this instance's lock is held elsewhere");
    conn.batch_execute(&format!(
        "LISTEN {OUTBOX_CHANNEL}; LISTEN {SESSIONS_CHANNEL}; LISTEN {USERS_CHANNEL};"
    ))?;
    Ok(conn)
}

/// Handles the notifications that arrived on `conn`; an error means the connection is lost.
fn drain(conn: &mut diesel::PgConnection, shared: &Shared) -> QueryResult<()> {
    let (mut outbox, mut sessions, mut users) = (false, false, false);
    let mut failed = None;
    for notification in conn.notifications_iter() {
        match notification {
            Ok(n) if n.channel == OUTBOX_CHANNEL => outbox = true,
            Ok(n) if n.channel == SESSIONS_CHANNEL => sessions = true,
            Ok(n) if n.channel == USERS_CHANNEL => users = true,
            Ok(_) => {}
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    if sessions {
        shared.run_hooks(|h| &h.sessions);
    }
    if users {
        shared.run_hooks(|h| &h.users);
    }
    if outbox {
        shared.run_hooks(|h| &h.outbox);
    }
    failed.map_or(Ok(()), Err)
}

fn keep_listening(url: &DatabaseUrl, key: i64, shared: &Shared) {
    let checks_every = (LISTEN_CHECK.as_millis() / LISTEN_TICK.as_millis()).max(1);
    let mut ticks: u128 = 0;
    loop {
        if shared.sleep(LISTEN_TICK) {
            return;
        }
        ticks += 1;
        let lost = {
            let Ok(mut conn) = shared.conn.lock() else {
                return;
            };
            let Some(live) = conn.as_mut() else {
                return;
            };
            let mut result = drain(live, shared);
            if result.is_ok() && ticks.is_multiple_of(checks_every) {
                result = live.batch_execute("SELECT 1");
            }
            match result {
                Ok(()) => continue,
                Err(error) => {
                    // Not trusted from now on: whatever was cached on the strength of
                    // notifications is forgotten.
                    shared.listening.store(false, Ordering::SeqCst);
                    *conn = None;
                    error
                }
            }
        };
        tracing::warn!(error = %lost, "lost the database connection that hears other instances; reconnecting");
        shared.run_hooks(|h| &h.sessions);
        shared.run_hooks(|h| &h.users);
        let again = loop {
            if shared.sleep(RECONNECT_WAIT) {
                return;
            }
            match listen(url, key) {
                Ok(again) => break again,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen to the database yet; retrying");
                }
            }
        };
        if let Ok(mut conn) = shared.conn.lock() {
            *conn = Some(again);
        }
        // Notifications sent meanwhile were missed: forget, then trust again, and look.
        shared.run_hooks(|h| &h.sessions);
        shared.run_hooks(|h| &h.users);
        shared.listening.store(true, Ordering::SeqCst);
        tracing::info!("listening to the database again");
        shared.run_hooks(|h| &h.outbox);
    }
}

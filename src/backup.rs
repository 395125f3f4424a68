//! `enroll backup` and `enroll restore` for the SQLite database, while the console runs.
//!
//! A backup is `VACUUM INTO` a new file: one read transaction, so the copy is the
//! database as of one moment (every transaction committed before it began, none after),
//! and in WAL mode it does not hold up the console's writers. It is written under a
//! temporary name and renamed when whole and checked, so a backup file is never half of
//! one.
//!
//! A restore checks a copy of the backup first (SQLite's integrity check, Enroll's
//! tables and migrations, none newer than this build) and only then replaces the live
//! database, through SQLite's backup API: page by page in one write transaction of the
//! live file, so that its WAL stays consistent and a failure leaves it as it was.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use anyhow::Context;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, SqliteConnection};
use libsqlite3_sys as ffi;

use crate::db::{self, DbConnection, SQLITE_BUSY_TIMEOUT_MS};

/// What a checked backup holds, for the command's last line.
#[derive(Debug)]
pub struct Summary {
    pub users: i64,
    pub invitations: i64,
    /// Migrations that this build has and the backup lacked (applied on restore).
    pub migrations_applied: usize,
}

/// Tables every Enroll database has; a SQLite file without them is something else.
const ENROLL_TABLES: [&str; 5] = [
    "__diesel_schema_migrations",
    "users",
    "invitations",
    "outbound_emails",
    "accounts",
];

/// Copies the live database at `database` to `to` (replaced if it exists, only once the
/// new copy is whole and checked).
pub fn backup_sqlite(database: &Path, to: &Path) -> anyhow::Result<Summary> {
    anyhow::ensure!(
        database.is_file(),
        "there is no database at {}: nothing to back up",
        database.display()
    );
    let partial = sibling(to, "partial")?;
    let result = write_backup(database, &partial).and_then(|()| check(&partial, to));
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, to)
                .with_context(|| format!("cannot move the backup to {}", to.display()))?;
            Ok(summary)
        }
        Err(error) => {
            remove_with_journal(&partial);
            Err(error)
        }
    }
}

fn write_backup(database: &Path, partial: &Path) -> anyhow::Result<()> {
    // Created empty and private first (VACUUM INTO accepts an empty file): a backup
    // holds everything the database does.
    create_private(partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let target = partial
        .to_str()
        .context("the backup's path must be valid UTF-8")?;
    let mut conn = open(database)?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target)
        .execute(&mut conn)
        .with_context(|| format!("cannot copy the database {}", database.display()))?;
    Ok(())
}

/// Replaces the database at `database` with the backup `from`, once a copy of it has
/// passed every check. Nothing is changed when a check fails.
pub fn restore_sqlite(from: &Path, database: &Path) -> anyhow::Result<Summary> {
    anyhow::ensure!(from.is_file(), "there is no file at {}", from.display());
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    // Checked and migrated as a copy beside the database, so that what is checked is
    // exactly what goes in, and the backup file itself is left as it was.
    let staged = sibling(database, "restore")?;
    let result = stage(from, &staged).and_then(|summary| {
        if database.exists() {
            copy_into_live(&staged, database)?;
        } else {
            std::fs::rename(&staged, database).with_context(|| {
                format!(
                    "cannot move the restored database to {}",
                    database.display()
                )
            })?;
        }
        Ok(summary)
    });
    remove_with_journal(&staged);
    result
}

fn stage(from: &Path, staged: &Path) -> anyhow::Result<Summary> {
    create_private(staged).with_context(|| format!("cannot create {}", staged.display()))?;
    std::fs::copy(from, staged).with_context(|| format!("cannot read {}", from.display()))?;
    let mut summary =
        check(staged, from).with_context(|| format!("{} cannot be restored", from.display()))?;
    // A backup from before an upgrade gets the migrations a start would apply.
    let mut conn = DbConnection::Sqlite(open(staged)?);
    summary.migrations_applied = db::run_migrations(&mut conn)
        .with_context(|| format!("cannot bring {} up to date", from.display()))?;
    Ok(summary)
}

/// Whether `path` is a whole Enroll database that this build can run on; messages name
/// it `shown_as` (the file the operator named, rather than a working copy).
pub fn check(path: &Path, shown_as: &Path) -> anyhow::Result<Summary> {
    let mut header = [0_u8; 16];
    let looks_like_sqlite = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
        .is_ok()
        && &header == b"SQLite format 3\0";
    anyhow::ensure!(
        looks_like_sqlite,
        "{} is not a SQLite database, so not an Enroll backup",
        shown_as.display()
    );
    let mut conn = open(path)?;
    #[derive(QueryableByName)]
    struct Integrity {
        #[diesel(sql_type = Text)]
        integrity_check: String,
    }
    let problems: Vec<String> = diesel::sql_query("PRAGMA integrity_check")
        .load::<Integrity>(&mut conn)
        .map_err(|e| anyhow::anyhow!("the file is damaged: {e}"))?
        .into_iter()
        .map(|row| row.integrity_check)
        .filter(|line| line != "ok")
        .collect();
    anyhow::ensure!(
        problems.is_empty(),
        "the file is damaged; SQLite's integrity check says: {}",
        problems
            .iter()
            .take(5)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ")
    );
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let tables: Vec<String> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load::<Name>(&mut conn)?
            .into_iter()
            .map(|row| row.name)
            .collect();
    let missing: Vec<&str> = ENROLL_TABLES
        .into_iter()
        .filter(|table| !tables.iter().any(|t| t == table))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "this SQLite database is not an Enroll database (it has no {} table)",
        missing.join(", ")
    );
    let unknown = db::unknown_sqlite_migrations(&mut conn)?;
    anyhow::ensure!(
        unknown.is_empty(),
        "the backup was taken by a newer Enroll (it has migrations {} that this version does \
         not know): restore it with that version",
        unknown.join(", ")
    );
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let mut count = |table: &str| -> anyhow::Result<i64> {
        Ok(
            diesel::sql_query(format!("SELECT COUNT(*) AS count FROM {table}"))
                .get_result::<Count>(&mut conn)?
                .count,
        )
    };
    Ok(Summary {
        users: count("users")?,
        invitations: count("invitations")?,
        migrations_applied: 0,
    })
}

fn open(path: &Path) -> anyhow::Result<SqliteConnection> {
    let url = path
        .to_str()
        .context("the database path must be valid UTF-8")?;
    let mut conn = SqliteConnection::establish(url)
        .with_context(|| format!("cannot open {}", path.display()))?;
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        &format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"),
    )?;
    Ok(conn)
}

/// A new name beside `path`, hidden and unique, for a file being written.
fn sibling(path: &Path, purpose: &str) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    Ok(path.with_file_name(format!(
        ".{}.{purpose}-{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    )))
}

fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

fn remove_with_journal(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// An open SQLite handle of our own, closed when dropped.
struct Handle(*mut ffi::sqlite3);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from sqlite3_open_v2 and is closed once, here.
        unsafe { ffi::sqlite3_close(self.0) };
    }
}

impl Handle {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let c_path = CString::new(path.to_str().context("the path must be valid UTF-8")?)
            .context("the path holds a NUL byte")?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: a valid C string and an out pointer; the handle is closed by Drop even
        // when opening fails, as SQLite asks.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut raw,
                ffi::SQLITE_OPEN_READWRITE,
                std::ptr::null(),
            )
        };
        let handle = Self(raw);
        anyhow::ensure!(
            rc == ffi::SQLITE_OK,
            "cannot open {}: {}",
            path.display(),
            handle.message()
        );
        // SAFETY: an open handle.
        unsafe { ffi::sqlite3_busy_timeout(handle.0, SQLITE_BUSY_TIMEOUT_MS as std::ffi::c_int) };
        Ok(handle)
    }

    fn message(&self) -> String {
        if self.0.is_null() {
            return "out of memory".to_owned();
        }
        // SAFETY: SQLite returns a NUL-terminated string owned by the handle.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0)) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Copies `staged` over the live database with SQLite's backup API: the live file's WAL
/// and any connection still open on it see a consistent database, and a failure rolls
/// back to what it was.
fn copy_into_live(staged: &Path, database: &Path) -> anyhow::Result<()> {
    let source = Handle::open(staged)?;
    let target = Handle::open(database)?;
    // SAFETY: both handles are open; the backup object is finished before they close.
    unsafe {
        let backup =
            ffi::sqlite3_backup_init(target.0, c"main".as_ptr(), source.0, c"main".as_ptr());
        anyhow::ensure!(
            !backup.is_null(),
            "cannot write {}: {}",
            database.display(),
            target.message()
        );
        let step = ffi::sqlite3_backup_step(backup, -1);
        let finish = ffi::sqlite3_backup_finish(backup);
        anyhow::ensure!(
            step == ffi::SQLITE_DONE && finish == ffi::SQLITE_OK,
            "cannot write {} (it is unchanged): {}",
            database.display(),
            target.message()
        );
    }
    Ok(())
}

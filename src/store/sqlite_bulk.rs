//! Bulk inserts on SQLite through the connection's own handle: one prepared statement per table,
//! bound and stepped row by row inside the caller's transaction. sqlx hands every value to its
//! worker thread one by one (about 10 µs a row); this is about 1 µs.

use std::ffi::{CStr, CString, c_int};
use std::ptr;

use libsqlite3_sys as ffi;

/// A value bound to one column.
pub(super) enum Value<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Int(i64),
}

/// A prepared `INSERT` on a locked connection handle; finalised on drop.
pub(super) struct Inserter {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
}

impl Inserter {
    /// Prepare `INSERT INTO table (columns) VALUES (?, …)`.
    ///
    /// # Safety
    /// `db` must be a live handle that no other thread uses until the inserter is dropped
    /// (sqlx's `LockedSqliteHandle` guarantees this while it is held).
    pub unsafe fn new(
        db: *mut ffi::sqlite3,
        table: &str,
        columns: &[&str],
    ) -> Result<Inserter, String> {
        let marks = vec!["?"; columns.len()].join(", ");
        let sql = CString::new(format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            columns.join(", ")
        ))
        .map_err(|e| e.to_string())?;
        let mut stmt = ptr::null_mut();
        // SAFETY: db is live and ours (caller's contract); sql is NUL-terminated.
        let rc =
            unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, ptr::null_mut()) };
        let inserter = Inserter { db, stmt };
        if rc != ffi::SQLITE_OK {
            return Err(inserter.error());
        }
        Ok(inserter)
    }

    /// Insert one row.
    pub fn insert(&mut self, values: &[Value<'_>]) -> Result<(), String> {
        for (i, value) in values.iter().enumerate() {
            let at = i as c_int + 1;
            // SAFETY: stmt is prepared and ours. SQLITE_STATIC: SQLite reads each text in place, which is
            // sound because `values` outlives the step below and the reset that ends its use.
            let rc = unsafe {
                match value {
                    Value::Text(s) | Value::MaybeText(Some(s)) => ffi::sqlite3_bind_text(
                        self.stmt,
                        at,
                        s.as_ptr().cast(),
                        s.len() as c_int,
                        ffi::SQLITE_STATIC(),
                    ),
                    Value::MaybeText(None) => ffi::sqlite3_bind_null(self.stmt, at),
                    Value::Int(n) => ffi::sqlite3_bind_int64(self.stmt, at, *n),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(self.error());
            }
        }
        // SAFETY: as above.
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        let outcome = if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(self.error())
        };
        // SAFETY: as above; reset readies the statement for the next row.
        unsafe { ffi::sqlite3_reset(self.stmt) };
        outcome
    }

    fn error(&self) -> String {
        // SAFETY: db is live; sqlite3_errmsg returns a NUL-terminated string owned by SQLite.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Inserter {
    fn drop(&mut self) {
        // SAFETY: stmt came from sqlite3_prepare_v2 (or is null, which finalize accepts).
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// How long a connection waits for another's write lock before giving up (as `busy_timeout`).
const BUSY_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wait for a busy database in short steps instead of SQLite's default 1, 2, 5 … 100 ms back-off,
/// which turns a lock held for a fraction of a millisecond into a 5–25 ms stall: an opt-out or a
/// claim then waits only as long as the writer ahead of it. The first tries only yield the CPU
/// (the lock is mostly held for tens of microseconds, and a 50 µs sleep on Linux lasts about
/// 100 µs: the lock would sit free while its waiters sleep); then 50 µs sleeps; then 1 ms ones.
pub(super) fn short_busy_waits(db: *mut ffi::sqlite3) {
    extern "C" fn wait(_: *mut std::ffi::c_void, tries: c_int) -> c_int {
        const YIELDS: c_int = 200;
        const SHORT: c_int = YIELDS + 200;
        const STEP: std::time::Duration = std::time::Duration::from_micros(50);
        const LONG: std::time::Duration = std::time::Duration::from_millis(1);
        if tries < YIELDS {
            std::thread::yield_now();
            return 1;
        }
        // Time spent sleeping so far (the yields count as nothing).
        let waited =
            STEP * (tries.min(SHORT) - YIELDS) as u32 + LONG * (tries - SHORT).max(0) as u32;
        if waited >= BUSY_LIMIT {
            return 0;
        }
        std::thread::sleep(if tries < SHORT { STEP } else { LONG });
        1
    }
    // SAFETY: `db` is a live handle held locked by the caller for the duration of the call;
    // the handler is a plain function that touches no shared state.
    unsafe {
        ffi::sqlite3_busy_handler(db, Some(wait), ptr::null_mut());
    }
}

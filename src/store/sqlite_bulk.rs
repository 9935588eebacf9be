//! Bulk writes on SQLite through the connection's own handle: one prepared statement per table
//! or per kind of change, bound and stepped row by row inside the caller's transaction. sqlx hands every value to its
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

/// A prepared statement on a locked connection handle, run row by row; finalised on drop.
pub(super) struct Statement {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    /// For each of the statement's parameters in order, the index of the value bound to it:
    /// `$3` and `?3` take the third value, a bare `?` the value at its own position.
    slots: Vec<usize>,
}

impl Statement {
    /// Prepare `INSERT INTO table (columns) VALUES (?, …)`.
    ///
    /// # Safety
    /// As [`Statement::prepare`].
    pub unsafe fn insert_into(
        db: *mut ffi::sqlite3,
        table: &str,
        columns: &[&str],
    ) -> Result<Statement, String> {
        let marks = vec!["?"; columns.len()].join(", ");
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({marks})",
            columns.join(", ")
        );
        // SAFETY: passed on from the caller.
        unsafe { Statement::prepare(db, &sql) }
    }

    /// Prepare one statement whose parameters are `?` or numbered (`$1`, `?1`), as the SQL
    /// that sqlx runs on both backends.
    ///
    /// # Safety
    /// `db` must be a live handle that no other thread uses until the statement is dropped
    /// (sqlx's `LockedSqliteHandle` guarantees this while it is held).
    pub unsafe fn prepare(db: *mut ffi::sqlite3, sql: &str) -> Result<Statement, String> {
        let sql = CString::new(sql).map_err(|e| e.to_string())?;
        let mut stmt = ptr::null_mut();
        // SAFETY: db is live and ours (caller's contract); sql is NUL-terminated.
        let rc =
            unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, ptr::null_mut()) };
        let mut statement = Statement {
            db,
            stmt,
            slots: Vec::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(statement.error());
        }
        // SAFETY: stmt is prepared; parameter names are NUL-terminated strings owned by it.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        for at in 1..=count {
            let name = unsafe { ffi::sqlite3_bind_parameter_name(stmt, at) };
            let slot = if name.is_null() {
                at as usize - 1
            } else {
                let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                name[1..]
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| n.checked_sub(1))
                    .ok_or_else(|| format!("parameter {name} is not numbered"))?
            };
            statement.slots.push(slot);
        }
        Ok(statement)
    }

    /// Run the statement once with `values`; the number of rows it changed.
    pub fn execute(&mut self, values: &[Value<'_>]) -> Result<u64, String> {
        self.bind(values)?;
        // SAFETY: stmt is prepared and ours, its texts bound by `bind` from `values`, which
        // outlive this step and the reset that ends their use.
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        let outcome = if rc == ffi::SQLITE_DONE {
            // SAFETY: db is live; the count is of the step just done.
            Ok(unsafe { ffi::sqlite3_changes64(self.db) } as u64)
        } else {
            Err(self.error())
        };
        // SAFETY: as above; reset readies the statement for the next row.
        unsafe { ffi::sqlite3_reset(self.stmt) };
        outcome
    }

    /// Run a query with `values`, handing each row of the result to `each`.
    pub fn query(
        &mut self,
        values: &[Value<'_>],
        mut each: impl FnMut(&Row<'_>),
    ) -> Result<(), String> {
        self.bind(values)?;
        let outcome = loop {
            // SAFETY: as in `execute`.
            match unsafe { ffi::sqlite3_step(self.stmt) } {
                ffi::SQLITE_ROW => each(&Row { statement: self }),
                ffi::SQLITE_DONE => break Ok(()),
                _ => break Err(self.error()),
            }
        };
        // SAFETY: as in `execute`.
        unsafe { ffi::sqlite3_reset(self.stmt) };
        outcome
    }

    fn bind(&mut self, values: &[Value<'_>]) -> Result<(), String> {
        for (i, &slot) in self.slots.iter().enumerate() {
            let at = i as c_int + 1;
            let value = values
                .get(slot)
                .ok_or_else(|| format!("no value for parameter {}", slot + 1))?;
            // SAFETY: stmt is prepared and ours. SQLITE_STATIC: SQLite reads each text in place;
            // the callers keep `values` alive until the statement is reset.
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
        Ok(())
    }

    fn error(&self) -> String {
        // SAFETY: db is live; sqlite3_errmsg returns a NUL-terminated string owned by SQLite.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The current row of a query.
pub(super) struct Row<'s> {
    statement: &'s Statement,
}

impl Row<'_> {
    /// Column `i` as text; `None` when it is NULL.
    pub fn text(&self, i: c_int) -> Option<String> {
        let stmt = self.statement.stmt;
        // SAFETY: stmt is stepped onto a row (Row exists only inside `query`'s loop); the text
        // pointer and its length stay valid until the next step, and are copied out here.
        unsafe {
            let text = ffi::sqlite3_column_text(stmt, i);
            if text.is_null() {
                return None;
            }
            let len = ffi::sqlite3_column_bytes(stmt, i) as usize;
            let bytes = std::slice::from_raw_parts(text, len);
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
    }

    /// Column `i` as an integer (0 when NULL).
    pub fn int(&self, i: c_int) -> i64 {
        // SAFETY: as in `text`.
        unsafe { ffi::sqlite3_column_int64(self.statement.stmt, i) }
    }
}

impl Drop for Statement {
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

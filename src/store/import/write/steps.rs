//! Running one step of an import's write on each backend: on SQLite, one prepared statement run
//! row by row on the connection's own handle; on PostgreSQL, new rows streamed with `COPY` and
//! changes as JSON chunks that the server unpacks.

use super::{Bulk, Cell, Rows, Step, Tally};
use crate::import::PROGRESS_EVERY;
use crate::store::{StoreError, sqlite_bulk};

/// Rows per PostgreSQL bulk update, carried as one JSON parameter that the server unpacks.
const PG_BULK_ROWS: usize = 5_000;

impl serde::Serialize for sqlite_bulk::Value<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            sqlite_bulk::Value::Text(t) | sqlite_bulk::Value::MaybeText(Some(t)) => {
                s.serialize_str(t)
            }
            sqlite_bulk::Value::MaybeText(None) => s.serialize_none(),
            // As text, so that `->>` hands PostgreSQL a string to cast.
            sqlite_bulk::Value::Int(n) => s.collect_str(n),
        }
    }
}

/// Run one step through the connection's own handle: one prepared statement, a row at a time.
pub(super) async fn sqlite_step(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    step: &Step<'_, '_>,
    tally: &mut Tally<'_>,
) -> Result<(), StoreError> {
    let what = match step {
        Step::Insert(bulk, _) => bulk.table,
        Step::Update(change, _) => change.sql,
    };
    let rows = step.rows();
    if rows.len() == 0 {
        return Ok(());
    }
    let failed = |e: String| StoreError::Bulk(format!("{what}: {e}"));
    let mut handle = tx.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle stays locked (so used by no one else) until `statement` is dropped below.
    let mut statement = unsafe {
        match step {
            Step::Insert(bulk, _) => {
                sqlite_bulk::Statement::insert_into(raw, bulk.table, bulk.columns)
            }
            Step::Update(change, _) => sqlite_bulk::Statement::prepare(raw, change.sql),
        }
    }
    .map_err(failed)?;
    let mut cells = Vec::new();
    for i in 0..rows.len() {
        cells.clear();
        rows.fill(i, &mut cells);
        statement.execute(&cells).map_err(failed)?;
        if (i + 1) % PROGRESS_EVERY == 0 {
            tally.rows(PROGRESS_EVERY);
        }
    }
    tally.rows(rows.len() % PROGRESS_EVERY);
    drop(statement);
    drop(handle);
    Ok(())
}

/// Run one step on PostgreSQL: new rows streamed with `COPY` (about twice as fast as unpacking
/// them from JSON), changes one statement per chunk of rows carried as one JSON parameter.
pub(super) async fn postgres_step(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    step: &Step<'_, '_>,
    tally: &mut Tally<'_>,
) -> Result<(), StoreError> {
    let rows = step.rows();
    let change = match step {
        Step::Insert(bulk, _) => return postgres_copy(tx, bulk, rows, tally).await,
        Step::Update(change, _) => change,
    };
    let sql = change.postgres_sql();
    for first in (0..rows.len()).step_by(PG_BULK_ROWS) {
        let chunk: Vec<Vec<Cell<'_>>> = (first..rows.len().min(first + PG_BULK_ROWS))
            .map(|i| {
                let mut cells = Vec::new();
                rows.fill(i, &mut cells);
                cells
            })
            .collect();
        let body = serde_json::to_string(&chunk).map_err(|e| StoreError::Bulk(e.to_string()))?;
        // The SQL is made of the constant statements, table and column names above, never of input.
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(body)
            .execute(&mut **tx)
            .await?;
        tally.rows(chunk.len());
    }
    Ok(())
}

/// Stream a table's new rows to PostgreSQL with `COPY`, a chunk of [`PROGRESS_EVERY`] rows at a time.
async fn postgres_copy(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    bulk: &Bulk,
    rows: &(dyn Rows<'_> + Sync),
    tally: &mut Tally<'_>,
) -> Result<(), StoreError> {
    if rows.len() == 0 {
        return Ok(());
    }
    let mut copy = tx.copy_in_raw(&bulk.copy_sql()).await?;
    let (mut cells, mut data) = (Vec::new(), Vec::new());
    for first in (0..rows.len()).step_by(PROGRESS_EVERY) {
        let last = rows.len().min(first + PROGRESS_EVERY);
        data.clear();
        for i in first..last {
            cells.clear();
            rows.fill(i, &mut cells);
            copy_line(&cells, &mut data);
        }
        if let Err(e) = copy.send(data.as_slice()).await {
            // Leave the connection able to roll the transaction back.
            let _ = copy.abort("the import stopped").await;
            return Err(e.into());
        }
        tally.rows(last - first);
    }
    copy.finish().await?;
    Ok(())
}

/// One row as `COPY`'s text format has it: values apart by tabs, `\N` for none, and a
/// backslash, tab, newline or carriage return within a value escaped.
fn copy_line(cells: &[Cell<'_>], out: &mut Vec<u8>) {
    for (n, cell) in cells.iter().enumerate() {
        if n > 0 {
            out.push(b'\t');
        }
        match cell {
            sqlite_bulk::Value::Text(text) | sqlite_bulk::Value::MaybeText(Some(text)) => {
                for &b in text.as_bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        _ => out.push(b),
                    }
                }
            }
            sqlite_bulk::Value::MaybeText(None) => out.extend_from_slice(b"\\N"),
            sqlite_bulk::Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_line_escapes_what_the_text_format_reads_as_structure() {
        use sqlite_bulk::Value::{Int, MaybeText, Text};
        let mut line = Vec::new();
        copy_line(
            &[
                Text("O\\Brien\tRoca\nline\rend"),
                MaybeText(None),
                MaybeText(Some("")),
                Int(-5),
                Text("Núria"),
            ],
            &mut line,
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "O\\\\Brien\\tRoca\\nline\\rend\t\\N\t\t-5\tNúria\n"
        );
    }
}

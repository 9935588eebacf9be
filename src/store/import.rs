//! Reading what an import must know, and writing its changes in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::outreach::WITHDRAW_OUTREACH;
use super::{Db, StoreError, instant, millis, on_pool, sqlite_bulk};
use crate::campaign::Campaign;
use crate::import::Changes;
use crate::import::reconcile::{AppointmentRecord, Contact, Existing, PatientRecord};

type AppointmentTuple = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);
type PatientTuple = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Rows per PostgreSQL bulk statement, carried as one JSON parameter that the server unpacks.
const PG_BULK_ROWS: usize = 5_000;

/// A table written in bulk: its name and its columns with their PostgreSQL types.
struct Bulk {
    table: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const PATIENTS: Bulk = Bulk {
    table: "patients",
    columns: &[
        ("id", "text"),
        ("clinic", "text"),
        ("external_id", "text"),
        ("first_name", "text"),
        ("last_name", "text"),
        ("phone", "text"),
        ("timezone", "text"),
        ("language", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
    ],
};
const APPOINTMENTS: Bulk = Bulk {
    table: "appointments",
    columns: &[
        ("id", "text"),
        ("campaign", "text"),
        ("external_id", "text"),
        ("patient_id", "text"),
        ("starts_at", "bigint"),
        ("timezone", "text"),
        ("provider", "text"),
        ("location", "text"),
        ("status", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
    ],
};
const OUTREACH: Bulk = Bulk {
    table: "outreach",
    columns: &[
        ("id", "text"),
        ("campaign", "text"),
        ("kind", "text"),
        ("patient_id", "text"),
        ("appointment_id", "text"),
        ("phone", "text"),
        ("timezone", "text"),
        ("language", "text"),
        ("opens_at", "bigint"),
        ("deadline", "bigint"),
        ("state", "text"),
        ("source", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
    ],
};
const ATTEMPTS: Bulk = Bulk {
    table: "attempts",
    columns: &[
        ("id", "text"),
        ("outreach_id", "text"),
        ("seq", "bigint"),
        ("channel", "text"),
        ("phone", "text"),
        ("status", "text"),
        ("due_at", "bigint"),
        ("daypart", "text"),
        ("reason", "text"),
        ("created_at", "bigint"),
        ("updated_at", "bigint"),
    ],
};

impl Bulk {
    fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(c, _)| *c).collect()
    }

    /// `INSERT … SELECT` from a JSON array of rows, each an array in column order.
    fn postgres_sql(&self) -> String {
        let names = self.names();
        let values: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("(r ->> {i})::{t}"))
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM json_array_elements($1::json) AS r",
            self.table,
            names.join(", "),
            values.join(", ")
        )
    }
}

/// One value of a bulk row.
type Cell<'a> = sqlite_bulk::Value<'a>;

/// Every new row of an import, in column order per table.
struct BulkRows<'a> {
    patients: Vec<Vec<Cell<'a>>>,
    appointments: Vec<Vec<Cell<'a>>>,
    outreach: Vec<Vec<Cell<'a>>>,
    attempts: Vec<Vec<Cell<'a>>>,
}

impl<'a> BulkRows<'a> {
    fn new(campaign: &'a Campaign, changes: &'a Changes, now: i64) -> BulkRows<'a> {
        use sqlite_bulk::Value::{Int, MaybeText, Text};
        BulkRows {
            patients: changes
                .new_patients
                .iter()
                .map(|p| {
                    vec![
                        Text(&p.id),
                        Text(&campaign.clinic),
                        Text(&p.external_id),
                        Text(&p.first_name),
                        MaybeText(p.last_name.as_deref()),
                        Text(&p.phone),
                        MaybeText(p.timezone.as_deref()),
                        MaybeText(p.language.as_deref()),
                        Int(now),
                        Int(now),
                    ]
                })
                .collect(),
            appointments: changes
                .new_appointments
                .iter()
                .map(|a| {
                    vec![
                        Text(&a.id),
                        Text(&campaign.id),
                        Text(&a.external_id),
                        Text(&a.patient_id),
                        Int(millis(a.starts_at)),
                        Text(&a.timezone),
                        MaybeText(a.provider.as_deref()),
                        MaybeText(a.location.as_deref()),
                        Text(&a.status),
                        Int(now),
                        Int(now),
                    ]
                })
                .collect(),
            outreach: changes
                .new_outreach
                .iter()
                .map(|o| {
                    vec![
                        Text(&o.id),
                        Text(&campaign.id),
                        Text("reminder"),
                        Text(&o.patient_id),
                        Text(&o.appointment_id),
                        Text(&o.phone),
                        Text(&o.timezone),
                        Text(&o.language),
                        Int(millis(o.opens_at)),
                        Int(millis(o.deadline)),
                        Text("active"),
                        Text("import"),
                        Int(now),
                        Int(now),
                    ]
                })
                .collect(),
            attempts: changes
                .new_attempts
                .iter()
                .map(|a| {
                    vec![
                        Text(&a.id),
                        Text(&a.outreach_id),
                        Int(1),
                        Text(a.channel.name()),
                        Text(&a.phone),
                        Text("planned"),
                        Int(millis(a.due_at)),
                        Text(&a.daypart),
                        Text(&a.reason),
                        Int(now),
                        Int(now),
                    ]
                })
                .collect(),
        }
    }
}

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

async fn sqlite_insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    bulk: &Bulk,
    rows: &[Vec<Cell<'_>>],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut handle = tx.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: the handle stays locked (so used by no one else) until `inserter` is dropped below.
    let mut inserter = unsafe { sqlite_bulk::Inserter::new(raw, bulk.table, &bulk.names()) }
        .map_err(|e| StoreError::Bulk(format!("{}: {e}", bulk.table)))?;
    for row in rows {
        inserter
            .insert(row)
            .map_err(|e| StoreError::Bulk(format!("{}: {e}", bulk.table)))?;
    }
    drop(inserter);
    drop(handle);
    Ok(())
}

async fn postgres_insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    bulk: &Bulk,
    rows: &[Vec<Cell<'_>>],
) -> Result<(), StoreError> {
    let sql = bulk.postgres_sql();
    for chunk in rows.chunks(PG_BULK_ROWS) {
        let body = serde_json::to_string(chunk).map_err(|e| StoreError::Bulk(e.to_string()))?;
        // The SQL is made of the constant table and column names above, never of input.
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(body)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The updates of an import, the same SQL on both backends; `$conn` is the open transaction.
macro_rules! updates {
    ($conn:expr, $changes:expr, $now:expr, patients) => {
        for p in &$changes.changed_patients {
            sqlx::query(
                "UPDATE patients SET first_name = $1, last_name = $2, phone = $3, timezone = $4, language = $5, updated_at = $6 WHERE id = $7",
            )
            .bind(&p.first_name).bind(&p.last_name).bind(&p.phone).bind(&p.timezone).bind(&p.language).bind($now).bind(&p.id)
            .execute(&mut *$conn)
            .await?;
        }
    };
    ($conn:expr, $changes:expr, $now:expr, appointments) => {
        for a in &$changes.changed_appointments {
            sqlx::query(
                "UPDATE appointments SET patient_id = $1, starts_at = $2, timezone = $3, provider = $4, location = $5, status = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(&a.patient_id).bind(millis(a.starts_at)).bind(&a.timezone).bind(&a.provider).bind(&a.location)
            .bind(&a.status).bind($now).bind(&a.id)
            .execute(&mut *$conn)
            .await?;
        }
        // An outreach ends withdrawn before its appointment gets a new one (one open per appointment).
        for id in &$changes.withdrawn_outreach {
            sqlx::query(
                "UPDATE outreach SET state = 'finished', outcome = 'withdrawn', outcome_at = $1, updated_at = $1 WHERE id = $2 AND state = 'active'",
            )
            .bind($now).bind(id)
            .execute(&mut *$conn)
            .await?;
            sqlx::query(WITHDRAW_OUTREACH)
                .bind(id).bind($now)
                .execute(&mut *$conn)
                .await?;
        }
        for (id, language) in &$changes.relabelled_outreach {
            sqlx::query("UPDATE outreach SET language = $1, updated_at = $2 WHERE id = $3")
                .bind(language).bind($now).bind(id)
                .execute(&mut *$conn)
                .await?;
        }
    };
}

impl Db {
    /// The campaign's appointments, its clinic's patients and the recent and planned contacts.
    pub async fn import_state(
        &self,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<Existing, StoreError> {
        let since = millis(now - TimeDelta::days(8));
        let (appointments, patients, contacts) = on_pool!(self, pool => {
            let appointments: Vec<AppointmentTuple> = sqlx::query_as(
                "SELECT a.id, a.external_id, a.patient_id, p.phone, a.starts_at, a.timezone, a.provider, a.location, a.status, o.id
                 FROM appointments a JOIN patients p ON p.id = a.patient_id
                 LEFT JOIN outreach o ON o.appointment_id = a.id AND o.state = 'active'
                 WHERE a.campaign = $1",
            )
            .bind(&campaign.id)
            .fetch_all(pool)
            .await?;
            let patients: Vec<PatientTuple> = sqlx::query_as(
                "SELECT id, external_id, first_name, last_name, phone, timezone, language
                 FROM patients WHERE clinic = $1 AND external_id IS NOT NULL",
            )
            .bind(&campaign.clinic)
            .fetch_all(pool)
            .await?;
            let contacts: Vec<(String, String, String, i64, String)> = sqlx::query_as(
                "SELECT phone, id, outreach_id, due_at, status FROM attempts
                 WHERE status <> 'withdrawn' AND due_at >= $1",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            (appointments, patients, contacts)
        });
        let mut existing = Existing::default();
        for (
            id,
            external_id,
            patient_id,
            phone,
            starts_at,
            timezone,
            provider,
            location,
            status,
            open,
        ) in appointments
        {
            existing.appointments.insert(
                external_id.clone(),
                AppointmentRecord {
                    id,
                    external_id,
                    patient_id,
                    phone,
                    starts_at: instant(starts_at),
                    timezone,
                    provider,
                    location,
                    status,
                    open_outreach: open,
                },
            );
        }
        for (id, external_id, first_name, last_name, phone, timezone, language) in patients {
            existing.patients.insert(
                external_id.clone(),
                PatientRecord {
                    id,
                    external_id,
                    first_name,
                    last_name,
                    phone,
                    timezone,
                    language,
                },
            );
        }
        let mut by_phone: HashMap<String, Vec<Contact>> = HashMap::new();
        for (phone, attempt_id, outreach_id, due_at, status) in contacts {
            by_phone.entry(phone).or_default().push(Contact {
                attempt_id,
                outreach_id,
                at: instant(due_at),
                planned: status == "planned",
            });
        }
        existing.contacts = by_phone;
        Ok(existing)
    }

    /// Write an import's changes: all of them, or (on any error) none.
    pub async fn apply_import(
        &self,
        campaign: &Campaign,
        changes: &Changes,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let rows = BulkRows::new(campaign, changes, now);
        match self {
            Db::Sqlite(pool) => {
                let clock = std::time::Instant::now();
                let lap = |step: &str| {
                    tracing::debug!(
                        step,
                        elapsed_ms = clock.elapsed().as_millis() as u64,
                        "import write"
                    )
                };
                // Take the write lock up front: preparing a statement reads the schema, and a
                // read that later upgrades to a write can be refused outright under contention.
                let mut conn = pool.acquire().await?;
                // A large import keeps its index pages in memory (64 MiB on this connection,
                // for the import only).
                sqlx::query("PRAGMA cache_size = -65536")
                    .execute(&mut *conn)
                    .await?;
                let result = async {
                    let mut tx =
                        sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                    sqlite_insert(&mut tx, &PATIENTS, &rows.patients).await?;
                    lap("patients");
                    updates!(tx, changes, now, patients);
                    sqlite_insert(&mut tx, &APPOINTMENTS, &rows.appointments).await?;
                    lap("appointments");
                    updates!(tx, changes, now, appointments);
                    sqlite_insert(&mut tx, &OUTREACH, &rows.outreach).await?;
                    lap("outreach");
                    sqlite_insert(&mut tx, &ATTEMPTS, &rows.attempts).await?;
                    lap("attempts");
                    tx.commit().await?;
                    lap("commit");
                    Ok::<(), StoreError>(())
                }
                .await;
                sqlx::query("PRAGMA cache_size = -8192")
                    .execute(&mut *conn)
                    .await?;
                result?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                postgres_insert(&mut tx, &PATIENTS, &rows.patients).await?;
                updates!(tx, changes, now, patients);
                postgres_insert(&mut tx, &APPOINTMENTS, &rows.appointments).await?;
                updates!(tx, changes, now, appointments);
                postgres_insert(&mut tx, &OUTREACH, &rows.outreach).await?;
                postgres_insert(&mut tx, &ATTEMPTS, &rows.attempts).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

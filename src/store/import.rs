//! Reading what an import must know, and writing its changes in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Db, StoreError, instant, millis, on_pool};
use crate::campaign::Campaign;
use crate::import::Changes;
use crate::import::reconcile::{AppointmentRecord, Contact, Existing, PatientRecord};

/// Rows per bulk statement: each statement carries its rows as one JSON parameter, which the
/// database unpacks itself (far cheaper than binding every value one by one).
const BULK_ROWS: usize = 5_000;

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
        ("seq", "integer"),
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
    /// `INSERT … SELECT` from a JSON array of objects keyed by column name.
    fn sql(&self, backend: &str) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(c, _)| *c).collect();
        if backend == "sqlite" {
            let values: Vec<String> = names.iter().map(|c| format!("value ->> '$.{c}'")).collect();
            format!(
                "INSERT INTO {} ({}) SELECT {} FROM json_each($1)",
                self.table,
                names.join(", "),
                values.join(", ")
            )
        } else {
            let types: Vec<String> = self
                .columns
                .iter()
                .map(|(c, t)| format!("{c} {t}"))
                .collect();
            format!(
                "INSERT INTO {} ({}) SELECT {} FROM json_to_recordset($1::json) AS r({})",
                self.table,
                names.join(", "),
                names.join(", "),
                types.join(", ")
            )
        }
    }
}

/// The rows of each bulk table, serialised as JSON objects keyed by column.
#[derive(Serialize)]
struct PatientRow<'a> {
    id: &'a str,
    clinic: &'a str,
    external_id: &'a str,
    first_name: &'a str,
    last_name: Option<&'a str>,
    phone: &'a str,
    timezone: Option<&'a str>,
    language: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct AppointmentRow<'a> {
    id: &'a str,
    campaign: &'a str,
    external_id: &'a str,
    patient_id: &'a str,
    starts_at: i64,
    timezone: &'a str,
    provider: Option<&'a str>,
    location: Option<&'a str>,
    status: &'a str,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct OutreachRow<'a> {
    id: &'a str,
    campaign: &'a str,
    kind: &'a str,
    patient_id: &'a str,
    appointment_id: &'a str,
    phone: &'a str,
    timezone: &'a str,
    language: &'a str,
    opens_at: i64,
    deadline: i64,
    state: &'a str,
    source: &'a str,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct AttemptRow<'a> {
    id: &'a str,
    outreach_id: &'a str,
    seq: i64,
    channel: &'a str,
    phone: &'a str,
    status: &'a str,
    due_at: i64,
    daypart: &'a str,
    reason: &'a str,
    created_at: i64,
    updated_at: i64,
}

/// Insert `rows` (JSON objects) into a [`Bulk`] table in chunks, inside the caller's transaction.
macro_rules! bulk_insert {
    ($conn:expr, $backend:expr, $bulk:expr, $rows:expr) => {
        let sql = $bulk.sql($backend);
        for chunk in $rows.chunks(BULK_ROWS) {
            let body = serde_json::to_string(chunk).unwrap_or_else(|_| "[]".into());
            // The SQL is built from the constant table and column names above, never from input.
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(body)
                .execute($conn)
                .await?;
        }
    };
}

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
        let backend = self.backend();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let rows: Vec<PatientRow> = changes.new_patients.iter().map(|p| PatientRow {
                id: &p.id, clinic: &campaign.clinic, external_id: &p.external_id, first_name: &p.first_name,
                last_name: p.last_name.as_deref(), phone: &p.phone, timezone: p.timezone.as_deref(),
                language: p.language.as_deref(), created_at: now, updated_at: now,
            }).collect();
            bulk_insert!(&mut *tx, backend, PATIENTS, &rows);
            for p in &changes.changed_patients {
                sqlx::query(
                    "UPDATE patients SET first_name = $1, last_name = $2, phone = $3, timezone = $4, language = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&p.first_name).bind(&p.last_name).bind(&p.phone).bind(&p.timezone).bind(&p.language).bind(now).bind(&p.id)
                .execute(&mut *tx)
                .await?;
            }
            let rows: Vec<AppointmentRow> = changes.new_appointments.iter().map(|a| AppointmentRow {
                id: &a.id, campaign: &campaign.id, external_id: &a.external_id, patient_id: &a.patient_id,
                starts_at: millis(a.starts_at), timezone: &a.timezone, provider: a.provider.as_deref(),
                location: a.location.as_deref(), status: &a.status, created_at: now, updated_at: now,
            }).collect();
            bulk_insert!(&mut *tx, backend, APPOINTMENTS, &rows);
            for a in &changes.changed_appointments {
                sqlx::query(
                    "UPDATE appointments SET patient_id = $1, starts_at = $2, timezone = $3, provider = $4, location = $5, status = $6, updated_at = $7 WHERE id = $8",
                )
                .bind(&a.patient_id).bind(millis(a.starts_at)).bind(&a.timezone).bind(&a.provider).bind(&a.location)
                .bind(&a.status).bind(now).bind(&a.id)
                .execute(&mut *tx)
                .await?;
            }
            for id in &changes.withdrawn_outreach {
                sqlx::query(
                    "UPDATE outreach SET state = 'finished', outcome = 'withdrawn', outcome_at = $1, updated_at = $1 WHERE id = $2 AND state = 'active'",
                )
                .bind(now).bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE attempts SET status = 'withdrawn', updated_at = $1 WHERE outreach_id = $2 AND status = 'planned'")
                    .bind(now).bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            for (id, language) in &changes.relabelled_outreach {
                sqlx::query("UPDATE outreach SET language = $1, updated_at = $2 WHERE id = $3")
                    .bind(language).bind(now).bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let rows: Vec<OutreachRow> = changes.new_outreach.iter().map(|o| OutreachRow {
                id: &o.id, campaign: &campaign.id, kind: "reminder", patient_id: &o.patient_id,
                appointment_id: &o.appointment_id, phone: &o.phone, timezone: &o.timezone, language: &o.language,
                opens_at: millis(o.opens_at), deadline: millis(o.deadline), state: "active", source: "import",
                created_at: now, updated_at: now,
            }).collect();
            bulk_insert!(&mut *tx, backend, OUTREACH, &rows);
            let rows: Vec<AttemptRow> = changes.new_attempts.iter().map(|a| AttemptRow {
                id: &a.id, outreach_id: &a.outreach_id, seq: 1, channel: a.channel.name(), phone: &a.phone,
                status: "planned", due_at: millis(a.due_at), daypart: &a.daypart, reason: &a.reason,
                created_at: now, updated_at: now,
            }).collect();
            bulk_insert!(&mut *tx, backend, ATTEMPTS, &rows);
            tx.commit().await?;
        });
        Ok(())
    }
}

/// A planned attempt as the demo and `plan` show it.
#[derive(Debug, Clone)]
pub struct PlannedAttempt {
    pub appointment: String,
    pub phone: String,
    pub starts_at: DateTime<Utc>,
    pub timezone: String,
    pub due_at: DateTime<Utc>,
    pub reason: String,
}

impl Db {
    /// The campaign's planned attempts, soonest first.
    pub async fn planned_attempts(
        &self,
        campaign: &str,
    ) -> Result<Vec<PlannedAttempt>, StoreError> {
        let rows: Vec<(String, String, i64, String, i64, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT a.external_id, o.phone, a.starts_at, o.timezone, t.due_at, t.reason
                 FROM attempts t JOIN outreach o ON o.id = t.outreach_id
                 JOIN appointments a ON a.id = o.appointment_id
                 WHERE o.campaign = $1 AND t.status = 'planned' ORDER BY t.due_at, a.external_id",
            )
            .bind(campaign)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(appointment, phone, starts_at, timezone, due_at, reason)| PlannedAttempt {
                    appointment,
                    phone,
                    starts_at: instant(starts_at),
                    timezone,
                    due_at: instant(due_at),
                    reason,
                },
            )
            .collect())
    }
}

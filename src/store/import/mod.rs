//! Reading what an import must know (the stored appointments, patients and contacts that a list
//! names); [`write`] writes its changes in one transaction.

mod write;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use super::{Db, ListQuery, StoreError, instant, json_list, millis, on_pool, sqlite_bulk};
use crate::campaign::Campaign;
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

type ContactTuple = (String, String, String, i64, String);

/// The campaign's (`$1`) appointments with the list's ids (`$2`), their patients' numbers and
/// their open outreach. Only the list's own: the campaign keeps every appointment ever imported.
const STORED_APPOINTMENTS: ListQuery = list_query!(
    "SELECT a.id, a.external_id, a.patient_id, p.phone, a.starts_at, a.timezone, a.provider, a.location, a.status, o.id
    FROM appointments a JOIN patients p ON p.id = a.patient_id
    LEFT JOIN outreach o ON o.appointment_id = a.id AND o.state = 'active'
    WHERE a.campaign = $1 AND a.external_id IN ",
    "2",
    ""
);
/// The clinic's (`$1`) patients with the list's patient ids (`$2`).
const STORED_PATIENTS: ListQuery = list_query!(
    "SELECT id, external_id, first_name, last_name, phone, timezone, language
    FROM patients WHERE clinic = $1 AND external_id IN ",
    "2",
    ""
);
/// Every campaign's attempts to the list's numbers (`$1`) since `$2` that were not withdrawn,
/// for the caps. Only the list's own numbers: a database shared by many clinics holds many more.
const RECENT_CONTACTS: ListQuery = list_query!(
    "SELECT phone, id, outreach_id, due_at, status FROM attempts WHERE phone IN ",
    "1",
    " AND due_at >= $2 AND status <> 'withdrawn'"
);

/// Which of the numbers of the JSON array `$1` are on the opt-out ledger.
const ON_LEDGER: ListQuery = list_query!("SELECT phone FROM optouts WHERE phone IN ", "1", "");

/// Run a query on a locked connection handle, one value per row of its result: sqlx hands each
/// row over from its worker thread (about 8 µs a row), and a re-import reads a stored row for
/// each of its own.
///
/// # Safety
/// As [`sqlite_bulk::Statement::prepare`]: `raw` is live and used by no one else meanwhile.
unsafe fn sqlite_rows<T>(
    raw: *mut libsqlite3_sys::sqlite3,
    sql: &str,
    values: &[sqlite_bulk::Value<'_>],
    mut read: impl FnMut(&sqlite_bulk::Row<'_>) -> T,
) -> Result<Vec<T>, StoreError> {
    // SAFETY: passed on from the caller; the statement is dropped before this returns.
    let mut statement =
        unsafe { sqlite_bulk::Statement::prepare(raw, sql) }.map_err(StoreError::Bulk)?;
    let mut rows = Vec::new();
    statement
        .query(values, |r| rows.push(read(r)))
        .map_err(StoreError::Bulk)?;
    Ok(rows)
}

/// The stored appointments and patients of [`Db::import_state`], on SQLite.
///
/// # Safety
/// As [`sqlite_rows`].
unsafe fn sqlite_stored(
    raw: *mut libsqlite3_sys::sqlite3,
    campaign: &Campaign,
    appointment_ids: &str,
    patient_ids: &str,
) -> Result<(Vec<AppointmentTuple>, Vec<PatientTuple>), StoreError> {
    use sqlite_bulk::Value::Text;
    let ids = [Text(&campaign.id), Text(appointment_ids)];
    // SAFETY: passed on from the caller.
    let appointments = unsafe {
        sqlite_rows(raw, STORED_APPOINTMENTS.sqlite, &ids, |r| {
            (
                r.text(0).unwrap_or_default(),
                r.text(1).unwrap_or_default(),
                r.text(2).unwrap_or_default(),
                r.text(3).unwrap_or_default(),
                r.int(4),
                r.text(5).unwrap_or_default(),
                r.text(6),
                r.text(7),
                r.text(8).unwrap_or_default(),
                r.text(9),
            )
        })
    }?;
    let ids = [Text(&campaign.clinic), Text(patient_ids)];
    // SAFETY: as above.
    let patients = unsafe {
        sqlite_rows(raw, STORED_PATIENTS.sqlite, &ids, |r| {
            (
                r.text(0).unwrap_or_default(),
                r.text(1).unwrap_or_default(),
                r.text(2).unwrap_or_default(),
                r.text(3),
                r.text(4).unwrap_or_default(),
                r.text(5),
                r.text(6),
            )
        })
    }?;
    Ok((appointments, patients))
}

fn appointment_record(
    (id, external_id, patient_id, phone, starts_at, timezone, provider, location, status, open): AppointmentTuple,
) -> AppointmentRecord {
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
    }
}

fn patient_record(
    (id, external_id, first_name, last_name, phone, timezone, language): PatientTuple,
) -> PatientRecord {
    PatientRecord {
        id,
        external_id,
        first_name,
        last_name,
        phone,
        timezone,
        language,
    }
}

impl Db {
    /// The campaign's appointments and its clinic's patients that a list names by their ids
    /// (the contacts come from [`Db::recent_contacts`], once the list's numbers are known).
    pub async fn import_state(
        &self,
        campaign: &Campaign,
        appointment_ids: &[String],
        patient_ids: &[String],
    ) -> Result<Existing, StoreError> {
        let appointment_ids = json_list(appointment_ids)?;
        let patient_ids = json_list(patient_ids)?;
        let (appointments, patients) = match self {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                let mut handle = conn.lock_handle().await?;
                let raw = handle.as_raw_handle().as_ptr();
                // SAFETY: the handle stays locked (used by no one else) while `handle` lives.
                unsafe { sqlite_stored(raw, campaign, &appointment_ids, &patient_ids) }?
            }
            Db::Postgres(pool) => {
                let appointments: Vec<AppointmentTuple> =
                    sqlx::query_as(STORED_APPOINTMENTS.postgres)
                        .bind(&campaign.id)
                        .bind(&appointment_ids)
                        .fetch_all(pool)
                        .await?;
                let patients: Vec<PatientTuple> = sqlx::query_as(STORED_PATIENTS.postgres)
                    .bind(&campaign.clinic)
                    .bind(&patient_ids)
                    .fetch_all(pool)
                    .await?;
                (appointments, patients)
            }
        };
        Ok(Existing {
            appointments: appointments
                .into_iter()
                .map(appointment_record)
                .map(|a| (a.external_id.clone(), a))
                .collect(),
            patients: patients
                .into_iter()
                .map(patient_record)
                .map(|p| (p.external_id.clone(), p))
                .collect(),
            ..Existing::default()
        })
    }

    /// Which of `phones` (sorted) are on the opt-out ledger. A ledger no longer than the list is
    /// read whole (one short read, as a clinic's usually is); a longer one is asked about the
    /// list's numbers.
    pub async fn on_ledger(&self, phones: &[&str]) -> Result<HashSet<String>, StoreError> {
        let whole = i64::try_from(phones.len()).unwrap_or(i64::MAX - 1) + 1;
        let ledger: Vec<String> = on_pool!(self, pool => sqlx::query_scalar("SELECT phone FROM optouts LIMIT $1")
            .bind(whole).fetch_all(pool).await?);
        if (ledger.len() as i64) < whole {
            return Ok(ledger
                .into_iter()
                .filter(|p| phones.binary_search(&p.as_str()).is_ok())
                .collect());
        }
        let numbers = json_list(phones)?;
        let found: Vec<String> = on_pool!(self, pool => sqlx::query_scalar(ON_LEDGER.for_db(self))
            .bind(&numbers).fetch_all(pool).await?);
        Ok(found.into_iter().collect())
    }

    /// The attempts of the last week and the future to `phones`, any campaign, by number.
    pub async fn recent_contacts(
        &self,
        phones: &[&str],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, Vec<Contact>>, StoreError> {
        let since = millis(now - TimeDelta::days(8));
        let numbers = json_list(phones)?;
        let contacts: Vec<ContactTuple> = match self {
            Db::Sqlite(pool) => {
                use sqlite_bulk::Value::{Int, Text};
                let mut conn = pool.acquire().await?;
                let mut handle = conn.lock_handle().await?;
                let raw = handle.as_raw_handle().as_ptr();
                let values = [Text(&numbers), Int(since)];
                // SAFETY: the handle stays locked (used by no one else) while `handle` lives.
                let contacts = unsafe {
                    sqlite_rows(raw, RECENT_CONTACTS.sqlite, &values, |r| {
                        (
                            r.text(0).unwrap_or_default(),
                            r.text(1).unwrap_or_default(),
                            r.text(2).unwrap_or_default(),
                            r.int(3),
                            r.text(4).unwrap_or_default(),
                        )
                    })
                }?;
                drop(handle);
                contacts
            }
            Db::Postgres(pool) => {
                sqlx::query_as(RECENT_CONTACTS.postgres)
                    .bind(&numbers)
                    .bind(since)
                    .fetch_all(pool)
                    .await?
            }
        };
        let mut by_phone: HashMap<String, Vec<Contact>> = HashMap::new();
        for (phone, attempt_id, outreach_id, due_at, status) in contacts {
            by_phone.entry(phone).or_default().push(Contact {
                attempt_id,
                outreach_id,
                at: instant(due_at),
                planned: status == "planned",
            });
        }
        Ok(by_phone)
    }
}

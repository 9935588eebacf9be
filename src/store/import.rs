//! Reading what an import must know, and writing its changes in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::QueryBuilder;

use super::{Db, StoreError, instant, millis, on_pool};
use crate::campaign::Campaign;
use crate::import::Changes;
use crate::import::reconcile::{AppointmentRecord, Contact, Existing, PatientRecord};

/// Bound parameters per statement, under SQLite's limit of 32,766.
const MAX_BINDS: usize = 30_000;

type AppointmentTuple = (String, String, String, String, i64, String, Option<String>, Option<String>, String, Option<String>);
type PatientTuple = (String, String, String, Option<String>, String, Option<String>, Option<String>);

impl Db {
    /// The campaign's appointments, its clinic's patients and the recent and planned contacts.
    pub async fn import_state(&self, campaign: &Campaign, now: DateTime<Utc>) -> Result<Existing, StoreError> {
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
        for (id, external_id, patient_id, phone, starts_at, timezone, provider, location, status, open) in appointments {
            existing.appointments.insert(external_id.clone(), AppointmentRecord {
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
            });
        }
        for (id, external_id, first_name, last_name, phone, timezone, language) in patients {
            existing.patients.insert(external_id.clone(), PatientRecord {
                id,
                external_id,
                first_name,
                last_name,
                phone,
                timezone,
                language,
            });
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
    pub async fn apply_import(&self, campaign: &Campaign, changes: &Changes, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = millis(now);
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in changes.new_patients.chunks(MAX_BINDS / 10) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO patients (id, clinic, external_id, first_name, last_name, phone, timezone, language, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, p| {
                    b.push_bind(p.id.clone()).push_bind(campaign.clinic.clone()).push_bind(p.external_id.clone())
                        .push_bind(p.first_name.clone()).push_bind(p.last_name.clone()).push_bind(p.phone.clone())
                        .push_bind(p.timezone.clone()).push_bind(p.language.clone()).push_bind(now).push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
            for p in &changes.changed_patients {
                sqlx::query(
                    "UPDATE patients SET first_name = $1, last_name = $2, phone = $3, timezone = $4, language = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&p.first_name).bind(&p.last_name).bind(&p.phone).bind(&p.timezone).bind(&p.language).bind(now).bind(&p.id)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in changes.new_appointments.chunks(MAX_BINDS / 11) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO appointments (id, campaign, external_id, patient_id, starts_at, timezone, provider, location, status, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(a.id.clone()).push_bind(campaign.id.clone()).push_bind(a.external_id.clone())
                        .push_bind(a.patient_id.clone()).push_bind(millis(a.starts_at)).push_bind(a.timezone.clone())
                        .push_bind(a.provider.clone()).push_bind(a.location.clone()).push_bind(a.status.clone())
                        .push_bind(now).push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
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
            for chunk in changes.new_outreach.chunks(MAX_BINDS / 14) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO outreach (id, campaign, kind, patient_id, appointment_id, phone, timezone, language, opens_at, deadline, state, source, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, o| {
                    b.push_bind(o.id.clone()).push_bind(campaign.id.clone()).push_bind("reminder")
                        .push_bind(o.patient_id.clone()).push_bind(o.appointment_id.clone()).push_bind(o.phone.clone())
                        .push_bind(o.timezone.clone()).push_bind(o.language.clone()).push_bind(millis(o.opens_at))
                        .push_bind(millis(o.deadline)).push_bind("active").push_bind("import").push_bind(now).push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in changes.new_attempts.chunks(MAX_BINDS / 11) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO attempts (id, outreach_id, seq, channel, phone, status, due_at, daypart, reason, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(a.id.clone()).push_bind(a.outreach_id.clone()).push_bind(1_i64)
                        .push_bind(a.channel.name()).push_bind(a.phone.clone()).push_bind("planned")
                        .push_bind(millis(a.due_at)).push_bind(a.daypart.clone()).push_bind(a.reason.clone())
                        .push_bind(now).push_bind(now);
                });
                q.build().execute(&mut *tx).await?;
            }
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
    pub async fn planned_attempts(&self, campaign: &str) -> Result<Vec<PlannedAttempt>, StoreError> {
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
            .map(|(appointment, phone, starts_at, timezone, due_at, reason)| PlannedAttempt {
                appointment,
                phone,
                starts_at: instant(starts_at),
                timezone,
                due_at: instant(due_at),
                reason,
            })
            .collect())
    }
}

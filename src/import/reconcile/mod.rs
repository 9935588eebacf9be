//! Deciding what an import changes, against what is stored, without touching storage: new
//! appointments get an outreach and a planned first attempt; changed ones are re-planned;
//! cancelled ones are withdrawn; the rest stay as they are.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::row::{Row, Status};
use super::{Rejection, Summary};
use crate::campaign::Campaign;
use crate::outreach::Channel;
use crate::plan::{self, Request, Step};
use crate::store::new_id;

/// A stored patient of the campaign's clinic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    pub id: String,
    pub external_id: String,
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: String,
    pub timezone: Option<String>,
    pub language: Option<String>,
}

/// A stored appointment of the campaign, and its open outreach if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRecord {
    pub id: String,
    pub external_id: String,
    pub patient_id: String,
    /// The patient's number as last imported for this appointment.
    pub phone: String,
    pub starts_at: DateTime<Utc>,
    pub timezone: String,
    pub provider: Option<String>,
    pub location: Option<String>,
    pub status: String,
    pub open_outreach: Option<String>,
}

impl PatientRecord {
    /// Whether the stored patient already says what `row` says of them.
    fn says_as(&self, row: &Row) -> bool {
        self.first_name == row.first_name
            && self.last_name == row.last_name
            && self.phone == row.phone.as_str()
            && self.timezone.as_deref() == row.timezone.map(|z| z.name())
            && self.language == row.language
    }
}

impl AppointmentRecord {
    /// Whether the two records say the same of the appointment (its open outreach aside).
    fn says_as(&self, other: &AppointmentRecord) -> bool {
        let AppointmentRecord {
            id,
            external_id,
            patient_id,
            phone,
            starts_at,
            timezone,
            provider,
            location,
            status,
            open_outreach: _,
        } = self;
        *id == other.id
            && *external_id == other.external_id
            && *patient_id == other.patient_id
            && *phone == other.phone
            && *starts_at == other.starts_at
            && *timezone == other.timezone
            && *provider == other.provider
            && *location == other.location
            && *status == other.status
    }
}

/// An attempt to a phone number in any campaign, for the caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub attempt_id: String,
    pub outreach_id: String,
    pub at: DateTime<Utc>,
    pub planned: bool,
}

/// What is stored that an import must take into account.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub patients: HashMap<String, PatientRecord>,
    pub appointments: HashMap<String, AppointmentRecord>,
    /// Attempts of the last week and the future, by phone number.
    pub contacts: HashMap<String, Vec<Contact>>,
    /// The list's numbers that are on the opt-out ledger.
    pub opted_out: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutreach {
    pub id: String,
    pub patient_id: String,
    pub appointment_id: String,
    pub phone: String,
    pub timezone: String,
    pub language: String,
    pub opens_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttempt {
    pub id: String,
    pub outreach_id: String,
    pub channel: Channel,
    pub phone: String,
    pub due_at: DateTime<Utc>,
    pub daypart: &'static str,
    pub reason: String,
}

/// Every write an import makes, to be applied in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub new_patients: Vec<PatientRecord>,
    pub changed_patients: Vec<PatientRecord>,
    pub new_appointments: Vec<AppointmentRecord>,
    pub changed_appointments: Vec<AppointmentRecord>,
    /// Open outreach that end `withdrawn` (cancelled or changed upstream), planned attempts too.
    pub withdrawn_outreach: Vec<String>,
    /// Open outreach whose language changed.
    pub relabelled_outreach: Vec<(String, String)>,
    pub new_outreach: Vec<NewOutreach>,
    /// New outreach to a number on the opt-out ledger: they end `opted_out` as they are made.
    pub opted_out_outreach: Vec<String>,
    pub new_attempts: Vec<NewAttempt>,
    pub summary: Summary,
}

/// Decide what importing `rows` changes. `rejected` are the rows that did not parse.
/// `on_row` hears how many rows have been decided, of how many, now and then and once all are.
pub fn reconcile(
    campaign: &Campaign,
    rows: Vec<Row>,
    rejected: Vec<Rejection>,
    existing: Existing,
    now: DateTime<Utc>,
    mut on_row: impl FnMut(usize, usize),
) -> Changes {
    let mut changes = Changes::default();
    changes.summary.rejected = rejected;
    let rows = drop_duplicates(rows, &mut changes.summary.rejected);
    let mut run = Reconciling {
        campaign,
        now,
        planned_on: planned_numbers(&existing.contacts),
        existing,
        changes,
        new_patient_ids: HashMap::new(),
    };
    let total = rows.len();
    for (done, row) in rows.into_iter().enumerate() {
        if done % super::PROGRESS_EVERY == 0 && done > 0 {
            on_row(done, total);
        }
        let (patient_id, patient_changed) = run.upsert_patient(&row);
        let zone = row.timezone.unwrap_or(campaign.timezone);
        // Each id is on one row (duplicates were dropped): its stored record is taken, not copied.
        match run.existing.appointments.remove(&row.appointment_id) {
            None => run.new_appointment(&row, &patient_id, zone),
            Some(stored) => {
                run.stored_appointment(&row, stored, &patient_id, patient_changed, zone)
            }
        }
    }
    on_row(total, total);
    run.changes
}

/// One import being decided, row after row: what is stored (as the rows before left it) and
/// the changes so far.
struct Reconciling<'a> {
    campaign: &'a Campaign,
    now: DateTime<Utc>,
    /// The numbers each stored outreach has planned attempts to.
    planned_on: HashMap<String, Vec<String>>,
    existing: Existing,
    changes: Changes,
    /// Patients first seen in this file, by their id there: where they are in `new_patients`.
    new_patient_ids: HashMap<String, usize>,
}

impl Reconciling<'_> {
    /// The row's patient as stored after it: its id, and whether the row changed it.
    fn upsert_patient(&mut self, row: &Row) -> (String, bool) {
        let (existing, changes, new_patient_ids) = (
            &mut self.existing,
            &mut self.changes,
            &mut self.new_patient_ids,
        );
        let wanted = |id: String| PatientRecord {
            id,
            external_id: row.patient_id.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            phone: row.phone.to_string(),
            timezone: row.timezone.map(|z| z.name().to_string()),
            language: row.language.clone(),
        };
        if let Some(&i) = new_patient_ids.get(&row.patient_id) {
            // A patient first seen earlier in this file: the later row's details win.
            let id = changes.new_patients[i].id.clone();
            changes.new_patients[i] = wanted(id.clone());
            return (id, false);
        }
        match existing.patients.get(&row.patient_id) {
            Some(stored) if stored.says_as(row) => (stored.id.clone(), false),
            Some(stored) => {
                let id = stored.id.clone();
                let record = wanted(id.clone());
                changes.changed_patients.push(record.clone());
                existing.patients.insert(row.patient_id.clone(), record);
                (id, true)
            }
            None => {
                let record = wanted(new_id());
                let id = record.id.clone();
                new_patient_ids.insert(row.patient_id.clone(), changes.new_patients.len());
                changes.new_patients.push(record);
                // Stored only after this import; later rows of the file find it in new_patient_ids.
                (id, false)
            }
        }
    }

    /// An appointment not stored yet: kept with its outreach, or (cancelled) kept as it is.
    fn new_appointment(&mut self, row: &Row, patient_id: &str, zone: Tz) {
        let appointment = appointment_record(row, new_id(), patient_id, zone, None);
        if row.status == Status::Cancelled {
            self.changes.new_appointments.push(appointment);
            self.changes.summary.unchanged += 1;
        } else if self.plan_outreach(row, &appointment.id, patient_id, zone) {
            self.changes.new_appointments.push(appointment);
            self.changes.summary.created += 1;
        } else {
            self.changes.summary.skipped_too_late += 1;
        }
    }

    /// A stored appointment: cancelled, moved (re-planned), changed in what it says, or as it was.
    fn stored_appointment(
        &mut self,
        row: &Row,
        stored: AppointmentRecord,
        patient_id: &str,
        patient_changed: bool,
        zone: Tz,
    ) {
        let updated = appointment_record(
            row,
            stored.id.clone(),
            patient_id,
            zone,
            stored.open_outreach.clone(),
        );
        let timing_changed = stored.starts_at != row.starts_at
            || stored.timezone != zone.name()
            || stored.patient_id != patient_id
            || stored.phone != row.phone.as_str()
            || (stored.status == Status::Cancelled.name() && row.status == Status::Booked);
        let same_as_stored = updated.says_as(&stored);

        if row.status == Status::Cancelled {
            if stored.status == Status::Cancelled.name() {
                self.changes.summary.unchanged += 1;
            } else {
                self.changes.changed_appointments.push(updated);
                self.withdraw(&stored);
                self.changes.summary.withdrawn += 1;
            }
        } else if timing_changed {
            self.changes.changed_appointments.push(updated);
            self.withdraw(&stored);
            if self.plan_outreach(row, &stored.id, patient_id, zone) {
                self.changes.summary.updated += 1;
            } else {
                self.changes.summary.skipped_too_late += 1;
            }
        } else if !same_as_stored || patient_changed {
            if !same_as_stored {
                self.changes.changed_appointments.push(updated);
            }
            if let (Some(open), Some(language)) = (&stored.open_outreach, &row.language) {
                self.changes
                    .relabelled_outreach
                    .push((open.clone(), language.clone()));
            }
            self.changes.summary.updated += 1;
        } else {
            self.changes.summary.unchanged += 1;
        }
    }

    /// End the appointment's open outreach as withdrawn, and forget its planned attempts for the
    /// caps. Only the numbers it has planned attempts to are looked at: a re-import that moves
    /// every appointment stays linear in the list's size.
    fn withdraw(&mut self, stored: &AppointmentRecord) {
        let Some(outreach) = &stored.open_outreach else {
            return;
        };
        self.changes.withdrawn_outreach.push(outreach.clone());
        for phone in self.planned_on.get(outreach).into_iter().flatten() {
            if let Some(contacts) = self.existing.contacts.get_mut(phone) {
                contacts.retain(|c| !(c.planned && c.outreach_id == *outreach));
            }
        }
    }

    /// Plan a fresh outreach's first attempt; `false` when no permitted time is left. A number on
    /// the opt-out ledger gets its outreach, ended `opted_out` at once, and no attempt: the
    /// appointment's record says why nobody will call.
    fn plan_outreach(
        &mut self,
        row: &Row,
        appointment_id: &str,
        patient_id: &str,
        zone: Tz,
    ) -> bool {
        let (campaign, now) = (self.campaign, self.now);
        let (existing, changes) = (&mut self.existing, &mut self.changes);
        let phone = row.phone.to_string();
        let mut request = Request::reminder(campaign, zone, row.starts_at);
        let outreach_id = new_id();
        let language = row
            .language
            .clone()
            .unwrap_or_else(|| campaign.default_language.clone());
        let outreach = NewOutreach {
            id: outreach_id.clone(),
            patient_id: patient_id.to_string(),
            appointment_id: appointment_id.to_string(),
            phone: phone.clone(),
            timezone: zone.name().to_string(),
            language,
            opens_at: request.opens,
            deadline: request.deadline,
        };
        if existing.opted_out.contains(&phone) {
            changes.new_outreach.push(outreach);
            changes.opted_out_outreach.push(outreach_id);
            changes.summary.on_ledger.push(row.line);
            return true;
        }
        request.others = existing
            .contacts
            .get(&phone)
            .map(|c| c.iter().map(|c| c.at).collect())
            .unwrap_or_default();
        let Step::Attempt(slot) = plan::next(&request, now) else {
            return false;
        };
        let attempt_id = new_id();
        existing
            .contacts
            .entry(phone.clone())
            .or_default()
            .push(Contact {
                attempt_id: attempt_id.clone(),
                outreach_id: outreach_id.clone(),
                at: slot.at,
                planned: true,
            });
        changes.new_outreach.push(outreach);
        changes.new_attempts.push(NewAttempt {
            id: attempt_id,
            outreach_id,
            channel: slot.channel,
            phone,
            due_at: slot.at,
            daypart: slot.daypart.name(),
            reason: slot.reason,
        });
        true
    }
}

/// An id twice in one file: neither row can be trusted over the other, so both are rejected.
fn drop_duplicates(rows: Vec<Row>, rejected: &mut Vec<Rejection>) -> Vec<Row> {
    let mut seen: HashMap<&str, u32> = HashMap::with_capacity(rows.len());
    for row in &rows {
        *seen.entry(row.appointment_id.as_str()).or_default() += 1;
    }
    let mut duplicated: HashMap<String, Vec<u64>> = seen
        .into_iter()
        .filter(|&(_, n)| n > 1)
        .map(|(id, _)| (id.to_string(), Vec::new()))
        .collect();
    if duplicated.is_empty() {
        rejected.sort_by_key(|r| r.line);
        return rows;
    }
    for row in &rows {
        if let Some(lines) = duplicated.get_mut(&row.appointment_id) {
            lines.push(row.line);
        }
    }
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        match duplicated.get(&row.appointment_id) {
            Some(lines) => {
                let all: Vec<String> = lines.iter().map(u64::to_string).collect();
                rejected.push(Rejection {
                    line: row.line,
                    field: "appointment_id".into(),
                    error: format!(
                        "appointment_id {:?} appears on lines {} of this file",
                        row.appointment_id,
                        all.join(", ")
                    ),
                });
            }
            None => kept.push(row),
        }
    }
    rejected.sort_by_key(|r| r.line);
    kept
}

fn appointment_record(
    row: &Row,
    id: String,
    patient_id: &str,
    zone: Tz,
    open: Option<String>,
) -> AppointmentRecord {
    AppointmentRecord {
        id,
        external_id: row.appointment_id.clone(),
        patient_id: patient_id.to_string(),
        phone: row.phone.to_string(),
        starts_at: row.starts_at,
        timezone: zone.name().to_string(),
        provider: row.provider.clone(),
        location: row.location.clone(),
        status: row.status.name().to_string(),
        open_outreach: open,
    }
}

/// The numbers each stored outreach has planned attempts to (one, unless its number changed).
fn planned_numbers(contacts: &HashMap<String, Vec<Contact>>) -> HashMap<String, Vec<String>> {
    let mut numbers: HashMap<String, Vec<String>> = HashMap::new();
    for (phone, contacts) in contacts {
        for c in contacts.iter().filter(|c| c.planned) {
            let phones = numbers.entry(c.outreach_id.clone()).or_default();
            if !phones.contains(phone) {
                phones.push(phone.clone());
            }
        }
    }
    numbers
}

#[cfg(test)]
mod tests;

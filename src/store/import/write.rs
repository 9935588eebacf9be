//! Writing an import's changes in one transaction: each table's new rows, then each kind of
//! change, as steps in order ([`steps`] runs one on each backend).

use chrono::{DateTime, Utc};

use crate::campaign::Campaign;
use crate::import::reconcile::{AppointmentRecord, NewAttempt, NewOutreach, PatientRecord};
use crate::import::{Changes, Progress};
use crate::store::imports::insert_import;
use crate::store::outreach::WITHDRAW_OUTREACH;
use crate::store::sqlite_bulk::Value::{Int, MaybeText, Text};
use crate::store::{Db, ImportRecord, StoreError, millis, sqlite_bulk};

mod steps;

use steps::{postgres_step, sqlite_step};

/// A table written in bulk: its name and its columns.
struct Bulk {
    table: &'static str,
    columns: &'static [&'static str],
}

const PATIENTS: Bulk = Bulk {
    table: "patients",
    columns: &[
        "id",
        "clinic",
        "external_id",
        "first_name",
        "last_name",
        "phone",
        "timezone",
        "language",
        "created_at",
        "updated_at",
    ],
};
const APPOINTMENTS: Bulk = Bulk {
    table: "appointments",
    columns: &[
        "id",
        "campaign",
        "external_id",
        "patient_id",
        "starts_at",
        "timezone",
        "provider",
        "location",
        "status",
        "created_at",
        "updated_at",
    ],
};
const OUTREACH: Bulk = Bulk {
    table: "outreach",
    columns: &[
        "id",
        "campaign",
        "kind",
        "patient_id",
        "appointment_id",
        "phone",
        "timezone",
        "language",
        "opens_at",
        "deadline",
        "state",
        "source",
        "created_at",
        "updated_at",
    ],
};
const ATTEMPTS: Bulk = Bulk {
    table: "attempts",
    columns: &[
        "id",
        "outreach_id",
        "seq",
        "channel",
        "phone",
        "status",
        "due_at",
        "daypart",
        "reason",
        "created_at",
        "updated_at",
    ],
};

impl Bulk {
    /// `COPY … FROM STDIN` in the text format, columns in order.
    fn copy_sql(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN",
            self.table,
            self.columns.join(", ")
        )
    }
}

/// The rows an import's write has done, told to whoever follows it.
struct Tally<'f> {
    done: usize,
    total: usize,
    on_progress: &'f mut (dyn FnMut(Progress) + Send),
}

impl Tally<'_> {
    /// A step has just written `n` more rows (every `PROGRESS_EVERY` rows, and at its end).
    fn rows(&mut self, n: usize) {
        if n > 0 {
            self.done += n;
            (self.on_progress)(Progress::Writing {
                done: self.done,
                total: self.total,
            });
        }
    }

    fn committing(&mut self) {
        (self.on_progress)(Progress::Committing);
    }
}

/// One value of a bulk row.
type Cell<'a> = sqlite_bulk::Value<'a>;

/// One kind of update: `UPDATE … SET … WHERE …` with numbered parameters of these PostgreSQL types.
struct Change {
    sql: &'static str,
    types: &'static [&'static str],
}

impl Change {
    /// The same update for a JSON array of rows, each an array of the parameters in order:
    /// `$n` becomes the row's element n − 1, and the rows join in as `r` before `WHERE`.
    fn postgres_sql(&self) -> String {
        let mut sql = self.sql.to_string();
        for (i, t) in self.types.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", i + 1), &format!("(r ->> {i})::{t}"));
        }
        sql.replacen(
            " WHERE ",
            " FROM json_array_elements($1::json) AS r WHERE ",
            1,
        )
    }
}

const UPDATE_PATIENT: Change = Change {
    sql: "UPDATE patients SET first_name = $1, last_name = $2, phone = $3, timezone = $4, language = $5, updated_at = $6 WHERE id = $7",
    types: &["text", "text", "text", "text", "text", "bigint", "text"],
};
const UPDATE_APPOINTMENT: Change = Change {
    sql: "UPDATE appointments SET patient_id = $1, starts_at = $2, timezone = $3, provider = $4, location = $5, status = $6, updated_at = $7 WHERE id = $8",
    types: &[
        "text", "bigint", "text", "text", "text", "text", "bigint", "text",
    ],
};
/// `$1` the outreach, `$2` now.
const WITHDRAW: Change = Change {
    sql: "UPDATE outreach SET state = 'finished', outcome = 'withdrawn', outcome_at = $2, updated_at = $2 WHERE id = $1 AND state = 'active'",
    types: &["text", "bigint"],
};
const WITHDRAW_ATTEMPTS: Change = Change {
    sql: WITHDRAW_OUTREACH,
    types: &["text", "bigint"],
};
/// A new outreach to a number on the opt-out ledger (`$1`, `$2` now): it ends as it is made.
const OPTED_OUT: Change = Change {
    sql: "UPDATE outreach SET state = 'finished', outcome = 'opted_out', outcome_at = $2, updated_at = $2 WHERE id = $1",
    types: &["text", "bigint"],
};
const RELABEL: Change = Change {
    sql: "UPDATE outreach SET language = $1, updated_at = $2 WHERE id = $3",
    types: &["text", "bigint", "text"],
};

/// The rows of one step, each made when it is written: a list of 100,000 would otherwise hold
/// some 70 MB of cells at once.
trait Rows<'a> {
    fn len(&self) -> usize;
    /// Row `i`'s values, in column order (inserts) or parameter order (updates).
    fn fill(&self, i: usize, cells: &mut Vec<Cell<'a>>);
}

/// Every item of a list, as one row each.
struct Each<'a, T> {
    items: &'a [T],
    campaign: &'a Campaign,
    now: i64,
    cells: Fill<'a, T>,
}

/// How one item becomes one row's cells, given the campaign and the time.
type Fill<'a, T> = fn(&'a T, &'a Campaign, i64, &mut Vec<Cell<'a>>);

impl<'a, T> Each<'a, T> {
    fn new(items: &'a [T], (campaign, now): (&'a Campaign, i64), cells: Fill<'a, T>) -> Self {
        Each {
            items,
            campaign,
            now,
            cells,
        }
    }
}

impl<'a, T> Rows<'a> for Each<'a, T> {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn fill(&self, i: usize, cells: &mut Vec<Cell<'a>>) {
        (self.cells)(&self.items[i], self.campaign, self.now, cells)
    }
}

/// One step of an import's transaction.
enum Step<'r, 'a> {
    Insert(&'static Bulk, &'r (dyn Rows<'a> + Sync)),
    Update(&'static Change, &'r (dyn Rows<'a> + Sync)),
}

impl<'r, 'a> Step<'r, 'a> {
    /// What the step is called in the import's timings.
    fn name(&self) -> &'static str {
        match self {
            Step::Insert(bulk, _) => bulk.table,
            Step::Update(..) => "updates",
        }
    }

    fn rows(&self) -> &'r (dyn Rows<'a> + Sync) {
        match self {
            Step::Insert(_, rows) | Step::Update(_, rows) => *rows,
        }
    }
}

/// Every new row of an import, in column order per table, and every update, in parameter order.
struct BulkRows<'a> {
    patients: Each<'a, PatientRecord>,
    changed_patients: Each<'a, PatientRecord>,
    appointments: Each<'a, AppointmentRecord>,
    changed_appointments: Each<'a, AppointmentRecord>,
    /// The outreach withdrawn, for WITHDRAW and for WITHDRAW_ATTEMPTS (the same two values).
    withdrawn: Each<'a, String>,
    relabelled_outreach: Each<'a, (String, String)>,
    outreach: Each<'a, NewOutreach>,
    opted_out: Each<'a, String>,
    attempts: Each<'a, NewAttempt>,
}

impl<'a> BulkRows<'a> {
    /// The writes in their order: a patient before its appointments, an outreach withdrawn
    /// before its appointment gets a new one (one open per appointment).
    fn steps(&self) -> [Step<'_, 'a>; 10] {
        [
            Step::Insert(&PATIENTS, &self.patients),
            Step::Update(&UPDATE_PATIENT, &self.changed_patients),
            Step::Insert(&APPOINTMENTS, &self.appointments),
            Step::Update(&UPDATE_APPOINTMENT, &self.changed_appointments),
            Step::Update(&WITHDRAW, &self.withdrawn),
            Step::Update(&WITHDRAW_ATTEMPTS, &self.withdrawn),
            Step::Update(&RELABEL, &self.relabelled_outreach),
            Step::Insert(&OUTREACH, &self.outreach),
            Step::Update(&OPTED_OUT, &self.opted_out),
            Step::Insert(&ATTEMPTS, &self.attempts),
        ]
    }

    fn new(campaign: &'a Campaign, changes: &'a Changes, now: i64) -> BulkRows<'a> {
        let at = (campaign, now);
        BulkRows {
            patients: Each::new(&changes.new_patients, at, patient_row),
            changed_patients: Each::new(&changes.changed_patients, at, patient_update),
            appointments: Each::new(&changes.new_appointments, at, appointment_row),
            changed_appointments: Each::new(&changes.changed_appointments, at, appointment_update),
            withdrawn: Each::new(&changes.withdrawn_outreach, at, id_and_now),
            relabelled_outreach: Each::new(&changes.relabelled_outreach, at, relabel),
            outreach: Each::new(&changes.new_outreach, at, outreach_row),
            opted_out: Each::new(&changes.opted_out_outreach, at, id_and_now),
            attempts: Each::new(&changes.new_attempts, at, attempt_row),
        }
    }
}

// Each row's cells, in the order of its table's columns ([`PATIENTS`] …) or of its update's
// parameters ([`UPDATE_PATIENT`] …).

fn patient_row<'a>(p: &'a PatientRecord, campaign: &'a Campaign, now: i64, c: &mut Vec<Cell<'a>>) {
    c.extend([
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
    ])
}

fn patient_update<'a>(p: &'a PatientRecord, _: &'a Campaign, now: i64, c: &mut Vec<Cell<'a>>) {
    c.extend([
        Text(&p.first_name),
        MaybeText(p.last_name.as_deref()),
        Text(&p.phone),
        MaybeText(p.timezone.as_deref()),
        MaybeText(p.language.as_deref()),
        Int(now),
        Text(&p.id),
    ])
}

fn appointment_row<'a>(
    a: &'a AppointmentRecord,
    campaign: &'a Campaign,
    now: i64,
    c: &mut Vec<Cell<'a>>,
) {
    c.extend([
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
    ])
}

fn appointment_update<'a>(
    a: &'a AppointmentRecord,
    _: &'a Campaign,
    now: i64,
    c: &mut Vec<Cell<'a>>,
) {
    c.extend([
        Text(&a.patient_id),
        Int(millis(a.starts_at)),
        Text(&a.timezone),
        MaybeText(a.provider.as_deref()),
        MaybeText(a.location.as_deref()),
        Text(&a.status),
        Int(now),
        Text(&a.id),
    ])
}

/// [`WITHDRAW`], [`WITHDRAW_ATTEMPTS`] and [`OPTED_OUT`]: an outreach and the time. (`&String`:
/// a [`Fill`] takes the list's own items.)
#[allow(clippy::ptr_arg)]
fn id_and_now<'a>(id: &'a String, _: &'a Campaign, now: i64, c: &mut Vec<Cell<'a>>) {
    c.extend([Text(id), Int(now)])
}

fn relabel<'a>(
    (id, language): &'a (String, String),
    _: &'a Campaign,
    now: i64,
    c: &mut Vec<Cell<'a>>,
) {
    c.extend([Text(language), Int(now), Text(id)])
}

fn outreach_row<'a>(o: &'a NewOutreach, campaign: &'a Campaign, now: i64, c: &mut Vec<Cell<'a>>) {
    c.extend([
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
    ])
}

fn attempt_row<'a>(a: &'a NewAttempt, _: &'a Campaign, now: i64, c: &mut Vec<Cell<'a>>) {
    c.extend([
        Text(&a.id),
        Text(&a.outreach_id),
        Int(1),
        Text(a.channel.name()),
        Text(&a.phone),
        Text("planned"),
        Int(millis(a.due_at)),
        Text(a.daypart),
        Text(&a.reason),
        Int(now),
        Int(now),
    ])
}

impl Db {
    /// Write an import's changes and its entry in the import log (`record`): all of them, or (on
    /// any error) none. `on_progress` hears how far the write has got.
    pub async fn apply_import(
        &self,
        campaign: &Campaign,
        changes: &Changes,
        now: DateTime<Utc>,
        record: &ImportRecord,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), StoreError> {
        let now = millis(now);
        let rows = BulkRows::new(campaign, changes, now);
        let total = rows.steps().iter().map(|step| step.rows().len()).sum();
        on_progress(Progress::Writing { done: 0, total });
        let mut tally = Tally {
            done: 0,
            total,
            on_progress,
        };
        let clock = std::time::Instant::now();
        let lap = |step: &str| {
            tracing::debug!(
                step,
                elapsed_ms = clock.elapsed().as_millis() as u64,
                "import write"
            )
        };
        match self {
            Db::Sqlite(pool) => {
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
                    for step in rows.steps() {
                        sqlite_step(&mut tx, &step, &mut tally).await?;
                        lap(step.name());
                    }
                    insert_import!(&mut *tx, record)?;
                    tally.committing();
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
                for step in rows.steps() {
                    postgres_step(&mut tx, &step, &mut tally).await?;
                    lap(step.name());
                }
                insert_import!(&mut *tx, record)?;
                tally.committing();
                tx.commit().await?;
                lap("commit");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_reads_its_parameters_from_each_row_on_postgres() {
        assert_eq!(
            WITHDRAW.postgres_sql(),
            "UPDATE outreach SET state = 'finished', outcome = 'withdrawn', outcome_at = (r ->> 1)::bigint, updated_at = (r ->> 1)::bigint \
             FROM json_array_elements($1::json) AS r WHERE id = (r ->> 0)::text AND state = 'active'"
        );
        for change in [
            &UPDATE_PATIENT,
            &UPDATE_APPOINTMENT,
            &WITHDRAW,
            &WITHDRAW_ATTEMPTS,
            &OPTED_OUT,
            &RELABEL,
        ] {
            let sql = change.postgres_sql();
            // Every parameter became an element: the only one left is the rows' array.
            assert_eq!(sql.matches('$').count(), 1, "{sql}");
            assert!(sql.contains("$1::json"), "{sql}");
        }
    }
}

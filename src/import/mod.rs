//! Appointment lists in: CSV, JSON or a FHIR Bundle → typed rows (with per-row, per-field
//! errors) → the changes to make, decided purely against what is stored → one transaction.

mod fhir;
pub mod reconcile;
pub mod row;
pub mod source;

use serde::Serialize;

use crate::campaign::Column;
use crate::phone::Numbering;

pub use reconcile::{Changes, reconcile};
pub use row::{Row, Status, parse_row, parse_row_with};
pub use source::{Format, RawRecord, read};

/// One rejected row's reason: the line of the file, the field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub line: u64,
    pub field: String,
    pub error: String,
}

/// What an import did (SPEC §5): the body of `ringback import` and of the HTTP import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub withdrawn: u64,
    pub unchanged: u64,
    pub skipped_too_late: u64,
    pub rejected: Vec<Rejection>,
    /// The lines of the rows whose number is on the opt-out ledger: their appointment is kept
    /// and its outreach ends `opted_out` at once, without a call. Not in the JSON summary, whose
    /// fields SPEC §5 fixes; the command line names them and the import log counts them.
    #[serde(skip)]
    pub on_ledger: Vec<u64>,
}

/// A problem with the file as a whole: nothing can be imported from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {error}")]
pub struct FileError {
    pub line: u64,
    pub field: String,
    pub error: String,
}

impl FileError {
    pub fn new(line: u64, field: impl Into<String>, error: impl Into<String>) -> FileError {
        FileError {
            line,
            field: field.into(),
            error: error.into(),
        }
    }
}

/// Why an import stopped before writing anything.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] FileError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The campaign takes no appointment lists (a callback campaign).
    #[error("{0}")]
    Campaign(String),
}

/// Appointment lists go to reminder campaigns only: a list imported into a callback campaign
/// would have its patients called back about nothing they asked for.
pub fn accepts_lists(campaign: &crate::campaign::Campaign) -> Result<(), ImportError> {
    match campaign.kind {
        crate::campaign::Kind::Reminder(_) => Ok(()),
        crate::campaign::Kind::Callback(_) => Err(ImportError::Campaign(format!(
            "campaign {:?} is a callback campaign: appointment lists are imported into a reminder campaign",
            campaign.id
        ))),
    }
}

/// Rows between two progress updates (and parsed together).
pub(crate) const PROGRESS_EVERY: usize = 4_096;

/// A list this long (some 3,000 rows of CSV) parses on two threads; a shorter one parses on the
/// caller's, without loading a second copy of the numbering plans (0.1 s) for it.
const TWO_THREADS_FROM_BYTES: usize = 256 * 1024;

/// How far an import has got, for a progress display: the phases in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Reading the list into rows.
    Reading,
    /// Rows of the list checked, of all.
    Checking { done: usize, total: usize },
    /// Rows compared with what is stored and, when new or moved, their first call planned.
    Planning { done: usize, total: usize },
    /// Rows written to the database (patients, appointments, outreach, attempts, updates).
    Writing { done: usize, total: usize },
    /// Every row is written and the transaction commits (on SQLite, the write-ahead log is
    /// copied into the database file: a large import's last few seconds).
    Committing,
}

/// One appointment list to import.
pub struct Input<'a> {
    /// What the import log calls the list: its file name, `-` for stdin, `api`.
    pub source: &'a str,
    pub bytes: &'a [u8],
    pub format: Format,
    pub now: chrono::DateTime<chrono::Utc>,
    /// Check and report only; write nothing.
    pub dry_run: bool,
}

/// Parse, reconcile and (unless `dry_run`) write one appointment list in one transaction.
/// `on_progress` hears each phase as it goes; `adjust` may change each good row before it is
/// reconciled (the demo moves dates to the future).
pub async fn run(
    db: &crate::store::Db,
    campaign: &crate::campaign::Campaign,
    input: Input<'_>,
    mut on_progress: impl FnMut(Progress) + Send,
    adjust: impl Fn(&mut Row),
) -> Result<Summary, ImportError> {
    accepts_lists(campaign)?;
    let clock = std::time::Instant::now();
    let lap = |phase: &str| {
        tracing::debug!(
            phase,
            elapsed_ms = clock.elapsed().as_millis() as u64,
            "import"
        )
    };
    // A long list parses on two threads, each with its own copy of the numbering plans: both
    // load while the list is read.
    let two_threads = input.bytes.len() >= TWO_THREADS_FROM_BYTES;
    if two_threads {
        Numbering::prepare();
    }
    on_progress(Progress::Reading);
    let records = read_list(db, campaign, &input).await?;
    lap("read");
    // The stored appointments and patients the list names are read while its rows parse.
    let stored = read_stored(db, campaign, &records);
    let (mut rows, rejected) = parse_rows(&records, campaign, two_threads, &mut on_progress);
    rows.iter_mut().for_each(adjust);
    // Their memory goes to what reconciling makes (fresh pages cost a fault each).
    drop(records);
    lap("parse");
    let mut existing = match stored.await {
        Ok(existing) => existing?,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => {
            let cancelled = "reading it was cancelled (the service is stopping)".to_string();
            return Err(crate::store::StoreError::Stored(cancelled).into());
        }
    };
    let mut phones: Vec<&str> = rows.iter().map(|r| r.phone.as_str()).collect();
    phones.sort_unstable();
    phones.dedup();
    existing.contacts = db.recent_contacts(&phones, input.now).await?;
    existing.opted_out = db.on_ledger(&phones).await?;
    lap("state");
    let changes = reconcile(
        campaign,
        rows,
        rejected,
        existing,
        input.now,
        |done, total| on_progress(Progress::Planning { done, total }),
    );
    lap("reconcile");
    if !input.dry_run {
        let entry = crate::store::ImportRecord::new(
            &campaign.id,
            input.source,
            input.now,
            &changes.summary,
        );
        db.apply_import(campaign, &changes, input.now, &entry, &mut on_progress)
            .await?;
        lap("write");
    }
    Ok(changes.summary)
}

/// The list's records, or why it is not a list at all; a refused list goes to the import log
/// (unless this is a dry run).
async fn read_list(
    db: &crate::store::Db,
    campaign: &crate::campaign::Campaign,
    input: &Input<'_>,
) -> Result<Vec<RawRecord>, ImportError> {
    // A workbook or a PDF is named as such before its bytes are decoded as text.
    let records = source::not_a_list(input.bytes).map_or_else(
        || {
            let bytes = campaign.import.encoding.to_utf8(input.bytes);
            read(&bytes, input.format, &campaign.import.columns)
        },
        Err,
    );
    let refused = match records {
        Ok(records) => return Ok(records),
        Err(refused) => refused,
    };
    if !input.dry_run {
        let entry = crate::store::ImportRecord::refused(
            &campaign.id,
            input.source,
            input.now,
            refused.to_string(),
        );
        if let Err(e) = db.record_refused_import(&entry).await {
            tracing::warn!(error = %e, "the import log did not take a refused list");
        }
    }
    Err(refused.into())
}

/// Start reading what is stored for the appointments and patients `records` name.
fn read_stored(
    db: &crate::store::Db,
    campaign: &crate::campaign::Campaign,
    records: &[RawRecord],
) -> tokio::task::JoinHandle<Result<reconcile::Existing, crate::store::StoreError>> {
    let ids = |column| -> Vec<String> {
        let mut ids: Vec<String> = records
            .iter()
            .filter_map(|r| r.get(column).clone().and_then(Result::ok))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let (appointment_ids, patient_ids) = (ids(Column::AppointmentId), ids(Column::PatientId));
    let (db, campaign) = (db.clone(), campaign.clone());
    tokio::spawn(async move {
        db.import_state(&campaign, &appointment_ids, &patient_ids)
            .await
    })
}

/// Type each record, or say what is wrong with it. Rows parse independently (phone numbers are
/// the costly part): with `two_threads`, both halves of each chunk at once, the second half with
/// the second copy of the numbering plans.
fn parse_rows(
    records: &[RawRecord],
    campaign: &crate::campaign::Campaign,
    two_threads: bool,
    on_progress: &mut impl FnMut(Progress),
) -> (Vec<Row>, Vec<Rejection>) {
    let total = records.len();
    let mut rows = Vec::with_capacity(total);
    let mut rejected = Vec::new();
    let parse = |numbering, part: &[RawRecord]| {
        part.iter()
            .map(|r| parse_row_with(numbering, r, campaign))
            .collect::<Vec<_>>()
    };
    for (index, chunk) in records.chunks(PROGRESS_EVERY).enumerate() {
        let parsed = if two_threads {
            let (first, second) = chunk.split_at(chunk.len().div_ceil(2));
            let (mut a, b) = std::thread::scope(|scope| {
                let other = scope.spawn(|| parse(Numbering::Second, second));
                (parse(Numbering::Shared, first), other.join())
            });
            a.extend(b.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            a
        } else {
            parse(Numbering::Shared, chunk)
        };
        for row in parsed {
            match row {
                Ok(row) => rows.push(row),
                Err(errors) => rejected.extend(errors),
            }
        }
        on_progress(Progress::Checking {
            done: index * PROGRESS_EVERY + chunk.len(),
            total,
        });
    }
    (rows, rejected)
}

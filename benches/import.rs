//! Import + plan of a generated 100,000-row CSV into SQLite, beside `sqlite3`'s `.import` of the
//! same file into a bare table as the reference.
//!
//! Then the two re-imports a clinic makes every day: the same list again (every row unchanged),
//! and a list in which every appointment moved an hour earlier (every outreach withdrawn and
//! planned anew).
//!
//! Last, two floors for the comparison: `sqlite3` alone copying the reference table into
//! ringback's four tables (a patient, an appointment, an outreach and a planned call per row),
//! with their indexes and without any.
//!
//! Run: `cargo bench --bench import` (ROWS=… to change the size).

use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{Days, Utc};
use ringback::campaign::load_dir;
use ringback::import::{self, Format};
use ringback::store::Db;

/// The same allocator as the `ringback` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ringback::runtime::small_pages();
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let csv_path = dir.path().join("appointments.csv");
    std::fs::write(&csv_path, generate(rows, 0)).expect("write csv");
    let bytes = std::fs::read(&csv_path).expect("read csv");
    let moved = generate(rows, 1).into_bytes();
    let catalog = load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/campaigns"
    )))
    .expect("campaigns");
    let campaign = catalog.require("reminders").expect("reminders campaign");

    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let now = Utc::now();
    let seconds = rt.block_on(async {
        let db = Db::connect(&url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let import = |bytes| {
            let db = &db;
            async move {
                settle();
                let start = Instant::now();
                let input = import::Input {
                    source: "bench",
                    bytes,
                    format: Format::Csv,
                    now,
                    dry_run: false,
                };
                let summary = import::run(db, campaign, input, |_| {}, |_| {})
                    .await
                    .expect("import");
                (start.elapsed().as_secs_f64(), summary)
            }
        };
        let (seconds, summary) = import(&bytes).await;
        assert_eq!(
            summary.created as usize,
            rows,
            "{:?}",
            summary.rejected.first()
        );
        let (again, summary) = import(&bytes).await;
        assert_eq!(summary.unchanged as usize, rows, "{summary:?}");
        println!(
            "re-import, every row unchanged: {rows} rows in {again:.3} s = {:.0} rows/s",
            rows as f64 / again
        );
        let (moving, summary) = import(&moved).await;
        assert_eq!(summary.updated as usize, rows, "{summary:?}");
        println!(
            "re-import, every appointment moved: {rows} rows in {moving:.3} s = {:.0} rows/s",
            rows as f64 / moving
        );
        db.close().await;

        // The same appointments as a JSON array, a FHIR Bundle and a FHIR Bulk Data export
        // (NDJSON), each into a fresh file.
        for (name, bytes) in [
            ("a JSON array", generate_json(rows)),
            ("a FHIR Bundle", generate_fhir(rows)),
            ("FHIR NDJSON", generate_ndjson(rows)),
        ] {
            let db = Db::connect(&format!("sqlite://{}", dir.path().join(format!("{name}.db")).display()))
                .await
                .expect("connect");
            db.migrate().await.expect("migrate");
            settle();
            let start = Instant::now();
            let input = import::Input {
                source: "bench",
                bytes: &bytes,
                format: Format::Json,
                now,
                dry_run: false,
            };
            let summary = import::run(&db, campaign, input, |_| {}, |_| {})
                .await
                .expect("import");
            let took = start.elapsed().as_secs_f64();
            assert_eq!(summary.created as usize, rows, "{:?}", summary.rejected.first());
            println!(
                "ringback import + plan of {name} ({:.1} MB): {rows} rows in {took:.3} s = {:.0} rows/s",
                bytes.len() as f64 / 1e6,
                rows as f64 / took
            );
            db.close().await;
        }
        seconds
    });
    println!(
        "ringback import + plan: {rows} rows in {seconds:.3} s = {:.0} rows/s",
        rows as f64 / seconds
    );

    let reference = dir.path().join("reference.db");
    settle();
    let start = Instant::now();
    let status = Command::new("sqlite3")
        .arg(&reference)
        .arg(".mode csv")
        .arg(format!(".import {} appointments", csv_path.display()))
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        println!("sqlite3 .import (reference): sqlite3 not installed (apt-get install sqlite3)");
        return;
    }
    let reference_s = start.elapsed().as_secs_f64();
    println!(
        "sqlite3 .import (reference): {rows} rows in {reference_s:.3} s = {:.0} rows/s",
        rows as f64 / reference_s
    );
    println!(
        "ringback speed / reference speed = {:.2}x",
        reference_s / seconds
    );

    // The floor for ringback's own tables: SQLite alone copying the reference table into them.
    let floor = dir.path().join("floor.db");
    rt.block_on(async {
        let db = Db::connect(&format!("sqlite://{}", floor.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        db.close().await;
    });
    let floor_s = copy_into(&floor, &reference);
    println!(
        "sqlite3 alone writing the same rows into ringback's tables: {rows} rows in {floor_s:.3} s = {:.0} rows/s \
         ({:.2}x the reference; ringback {:.2}x this)",
        rows as f64 / floor_s,
        reference_s / floor_s,
        floor_s / seconds
    );

    // Lower still: the same rows into the same four tables with no index at all, not even a
    // primary key (columns copied from ringback's tables by CREATE TABLE … AS).
    let bare = dir.path().join("bare.db");
    let status = Command::new("sqlite3")
        .arg(&bare)
        .arg(format!("ATTACH '{}' AS f", floor.display()))
        .arg(
            ["patients", "appointments", "outreach", "attempts"]
                .map(|t| format!("CREATE TABLE {t} AS SELECT * FROM f.{t} WHERE 0;"))
                .concat(),
        )
        .status();
    assert!(matches!(status, Ok(s) if s.success()), "{status:?}");
    let bare_s = copy_into(&bare, &reference);
    println!(
        "sqlite3 alone writing the same rows into the same tables without any index: {rows} rows in {bare_s:.3} s \
         = {:.0} rows/s ({:.2}x the reference)",
        rows as f64 / bare_s,
        reference_s / bare_s,
    );

    // What each writes: SQLite's time goes with the pages it writes, and the reference stores
    // each row once, in one table with no index.
    let mb = |db: &std::path::Path| std::fs::metadata(db).map_or(0.0, |m| m.len() as f64 / 1e6);
    let (stored, bare_mb, reference_mb) = (mb(&floor), mb(&bare), mb(&reference));
    println!(
        "bytes stored: ringback's tables {stored:.1} MB, without their indexes {bare_mb:.1} MB, \
         the reference table {reference_mb:.1} MB ({:.1}x and {:.1}x the reference)",
        stored / reference_mb,
        bare_mb / reference_mb,
    );
}

/// Seconds `sqlite3` alone takes to copy the reference table's rows into `db`'s four tables
/// ([`FLOOR_SQL`]), with ringback's connection settings.
fn copy_into(db: &std::path::Path, reference: &std::path::Path) -> f64 {
    settle();
    let start = Instant::now();
    let status = Command::new("sqlite3")
        .arg(db)
        .arg(FLOOR_SETTINGS)
        .arg(format!("ATTACH '{}' AS r", reference.display()))
        .arg(FLOOR_SQL)
        .stdout(Stdio::null())
        .status();
    assert!(matches!(status, Ok(s) if s.success()), "{status:?}");
    start.elapsed().as_secs_f64()
}

/// Write out what the runs before left dirty, so that no run pays for another's writeback.
fn settle() {
    let _ = Command::new("sync").status();
}

/// The connection settings ringback uses for an import.
const FLOOR_SETTINGS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;";
/// One patient, appointment, outreach and planned call per row of the reference table, inside
/// SQLite: no parsing, no planning, no round trips; ids of a ULID's length, ascending as
/// ringback's are.
const FLOOR_SQL: &str = "
BEGIN IMMEDIATE;
INSERT INTO patients (id, clinic, external_id, first_name, last_name, phone, timezone, language, created_at, updated_at)
  SELECT printf('01JP%022d', rowid), 'clinic', patient_id, first_name, last_name,
         printf('+34%d', 600000000 + rowid), NULL, language, 1764000000000, 1764000000000
  FROM r.appointments;
INSERT INTO appointments (id, campaign, external_id, patient_id, starts_at, timezone, provider, location, status, created_at, updated_at)
  SELECT printf('01JA%022d', rowid), 'reminders', appointment_id, printf('01JP%022d', rowid),
         1764000000000 + rowid * 60000, 'Europe/Madrid', provider, location, 'booked', 1764000000000, 1764000000000
  FROM r.appointments;
INSERT INTO outreach (id, campaign, kind, patient_id, appointment_id, phone, timezone, language, opens_at, deadline, state, source, created_at, updated_at)
  SELECT printf('01JO%022d', rowid), 'reminders', 'reminder', printf('01JP%022d', rowid),
         printf('01JA%022d', rowid), printf('+34%d', 600000000 + rowid), 'Europe/Madrid', language,
         1764000000000, 1764100000000, 'active', 'import', 1764000000000, 1764000000000
  FROM r.appointments;
INSERT INTO attempts (id, outreach_id, seq, channel, phone, status, due_at, daypart, reason, created_at, updated_at)
  SELECT printf('01JT%022d', rowid), printf('01JO%022d', rowid), 1, 'voice', printf('+34%d', 600000000 + rowid),
         'planned', 1764000000000 + (rowid % 20) * 86400000, 'morning', 'first', 1764000000000, 1764000000000
  FROM r.appointments;
COMMIT;
";

/// The rows of [`generate`] as a JSON array of objects, one per line as exporters write them.
fn generate_json(rows: usize) -> Vec<u8> {
    let csv = generate(rows, 0);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let items: Vec<String> = lines
        .map(|line| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(line.split(','))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
            serde_json::Value::Object(object).to_string()
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n")).into_bytes()
}

/// The rows of [`generate`] as a FHIR searchset: each Appointment, then each Patient, pretty
/// printed as FHIR servers answer.
fn generate_fhir(rows: usize) -> Vec<u8> {
    use serde_json::json;
    let csv = generate(rows, 0);
    let zone: chrono_tz::Tz = "Europe/Madrid".parse().expect("zone");
    let mut appointments = Vec::with_capacity(rows);
    let mut patients = Vec::with_capacity(rows);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let local = chrono::NaiveDateTime::parse_from_str(f[5], "%Y-%m-%d %H:%M").expect("time");
        let start = local.and_local_timezone(zone).earliest().expect("instant");
        appointments.push(json!({
            "fullUrl": format!("https://ehr.example/fhir/Appointment/{}", f[0]),
            "resource": {
                "resourceType": "Appointment", "id": f[0], "status": "booked",
                "start": start.to_rfc3339(),
                "participant": [
                    {"actor": {"reference": format!("Patient/{}", f[1])}},
                    {"actor": {"reference": "Practitioner/D1", "display": f[8]}},
                    {"actor": {"reference": "Location/L1", "display": f[9]}}
                ]
            }
        }));
        patients.push(json!({
            "fullUrl": format!("https://ehr.example/fhir/Patient/{}", f[1]),
            "search": {"mode": "include"},
            "resource": {
                "resourceType": "Patient", "id": f[1],
                "name": [{"use": "official", "family": f[3], "given": [f[2]]}],
                "telecom": [{"system": "phone", "use": "mobile", "value": f[4]}],
                "communication": [{"language": {"coding": [{"code": f[7]}]}, "preferred": true}]
            }
        }));
    }
    appointments.extend(patients);
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": appointments});
    serde_json::to_vec_pretty(&bundle).expect("bundle")
}

/// The resources of [`generate_fhir`] as a Bulk Data export gives them, one per line: its
/// `Patient.ndjson`, then its `Appointment.ndjson`.
fn generate_ndjson(rows: usize) -> Vec<u8> {
    let bundle: serde_json::Value = serde_json::from_slice(&generate_fhir(rows)).expect("bundle");
    let entries = bundle["entry"].as_array().expect("entries");
    let (appointments, patients) = entries.split_at(rows);
    let mut out = Vec::new();
    for entry in patients.iter().chain(appointments) {
        out.extend_from_slice(entry["resource"].to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Rows in the default column layout: distinct patients, mixed phone spellings, weekdays ahead;
/// `earlier` hours before the usual times.
fn generate(rows: usize, earlier: usize) -> String {
    let mut out = String::from(
        "appointment_id,patient_id,first_name,last_name,phone,starts_at,timezone,language,provider,location,status\n",
    );
    let today = Utc::now().date_naive();
    for i in 0..rows {
        let day = today
            .checked_add_days(Days::new(3 + (i % 20) as u64))
            .unwrap_or(today);
        let hour = 10 + i % 8 - earlier;
        let n = 600_000_000 + i;
        let phone = match i % 3 {
            0 => format!("{n}"),
            1 => format!(
                "+34 {} {} {}",
                &n.to_string()[..3],
                &n.to_string()[3..6],
                &n.to_string()[6..]
            ),
            _ => format!("0034{n}"),
        };
        let lang = ["ca", "es", "en"][i % 3];
        out.push_str(&format!(
            "A{i},P{i},Anna,Puig,{phone},{day} {hour:02}:{:02},,{lang},Dra. Font,Consulta 1,booked\n",
            (i % 4) * 15
        ));
    }
    out
}

//! `ringback optout import FILE.csv|-` (a do-not-call list) and `ringback optout list`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::{Failure, Outcome, catalog, connect, read_input};
use crate::config::Config;
use crate::phone::Phone;
use crate::store::Remover;

/// Header names taken for the number column.
const PHONE_HEADERS: [&str; 6] = [
    "phone",
    "number",
    "mobile",
    "telephone",
    "telefono",
    "telefon",
];

/// A do-not-call list: one number per row, under a `phone` header or alone on each line.
/// Bad rows are reported (`FILE:LINE: phone: reason`, exit 1); the good ones go in, in one
/// transaction, and every planned attempt to them is withdrawn at once.
pub async fn import(config: &Config, file: &Path, source: &str, country: Option<&str>) -> Outcome {
    if source.is_empty()
        || source.len() > 32
        || !source.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(Failure::user(format!(
            "--source {source:?}: a short lower-case word (e.g. list)"
        )));
    }
    let (name, bytes) = read_input(file)?;
    let (phones, rejected) = read(&name, &bytes, region(config, country)?)?;
    let db = connect(config).await?;
    let (added, withdrawn) = db
        .opt_out_many(&phones, source, chrono::Utc::now())
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    let summary = json!({
        "added": added,
        "already": phones.len() as u64 - added,
        "withdrawn_attempts": withdrawn,
        "rejected": rejected.iter().map(|(line, error)| json!({"line": line, "field": "phone", "error": error})).collect::<Vec<_>>(),
    });
    out!("{summary}");
    for (line, error) in &rejected {
        eprintln!("{name}:{line}: phone: {error}");
    }
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The country of numbers written without +CC: `--country`, else the campaigns' shared one.
fn region(
    config: &Config,
    country: Option<&str>,
) -> Result<Option<phonenumber::country::Id>, Failure> {
    match country {
        Some(c) => c
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .map(Some)
            .map_err(|_| Failure::user(format!("--country {c}: not a two-letter country code"))),
        None => Ok(catalog(config)?.shared_country()),
    }
}

/// `ringback optout remove PHONE --by NAME [--note TEXT]`: staff take a number off the ledger
/// at the patient's request. Prints the removal as JSON; exit 1 when the number is not on it.
pub async fn remove(
    config: &Config,
    raw: &str,
    by: &str,
    note: Option<&str>,
    country: Option<&str>,
) -> Outcome {
    let phone = Phone::parse(raw, region(config, country)?)
        .map_err(|e| Failure::user(format!("phone: {e}: {:?}", crate::phone::mask(raw))))?;
    let (by, note) = crate::store::signed_by(by, note)
        .map_err(|(_, message)| Failure::user(format!("--{message}")))?;
    let remover = Remover::Staff { by, note };
    let db = connect(config).await?;
    let removed = db
        .remove_optout(phone.as_str(), remover, chrono::Utc::now())
        .await
        .map_err(|e| Failure::runtime(e.to_string()));
    db.close().await;
    match removed? {
        Some(removal) => {
            out!("{}", json!(removal));
            eprintln!(
                "{} is off the opt-out ledger (on it since {}, by {}). New appointments and callbacks \
                 will call and text it again; the outreach its opt-out ended stay ended.",
                removal.phone,
                removal.opted_out_at.to_rfc3339(),
                removal.source
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Err(Failure::user(format!(
            "{} is not on the opt-out ledger",
            phone.as_str()
        ))),
    }
}

/// `ringback optout removals`: every number taken off the ledger, as CSV, newest first.
pub async fn removals(config: &Config) -> Outcome {
    let db = connect(config).await?;
    let list = db
        .optout_removals()
        .await
        .map_err(|e| Failure::runtime(e.to_string()));
    db.close().await;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut write = |fields: [&str; 6]| {
        csv.write_record(fields)
            .map_err(|e| Failure::runtime(format!("output: {e}")))
    };
    write([
        "phone",
        "source",
        "opted_out_at",
        "removed_at",
        "removed_by",
        "note",
    ])?;
    for r in list? {
        write([
            &r.phone,
            &r.source,
            &r.opted_out_at.to_rfc3339(),
            &r.removed_at.to_rfc3339(),
            &r.removed_by,
            r.note.as_deref().unwrap_or(""),
        ])?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| Failure::runtime(format!("output: {e}")))?;
    out!("{}", String::from_utf8_lossy(&bytes).trim_end());
    Ok(ExitCode::SUCCESS)
}

/// A bad row: its line and why.
type Rejected = (u64, String);

/// The numbers of a list (deduplicated, in order) and each bad row's line and reason.
fn read(
    name: &str,
    bytes: &[u8],
    region: Option<phonenumber::country::Id>,
) -> Result<(Vec<String>, Vec<Rejected>), Failure> {
    if let Some(refused) = crate::import::source::not_a_list(bytes) {
        let line = refused.line;
        return Err(Failure::user(format!("{name}:{line}: {}", refused.error)));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let Some(first) = records.next() else {
        return Err(Failure::user(format!("{name}: empty file")));
    };
    let first = first.map_err(|e| Failure::user(format!("{name}:1: {e}")))?;
    let cell = |r: &csv::ByteRecord, i: usize| {
        r.get(i)
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
    };
    // A header row names the number column; a list without one starts with a number.
    let (column, mut pending) = match (0..first.len()).find(|&i| {
        cell(&first, i).is_some_and(|h| PHONE_HEADERS.contains(&h.to_ascii_lowercase().as_str()))
    }) {
        Some(i) => (i, None),
        None if cell(&first, 0).is_some_and(|c| Phone::parse(&c, region).is_ok()) => {
            (0, Some(first))
        }
        None => {
            return Err(Failure::user(format!(
                "{name}:1: header: no phone column (name it \"phone\", or list one number per line)"
            )));
        }
    };
    let (mut phones, mut rejected) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    let mut line = if pending.is_some() { 0 } else { 1 };
    loop {
        let record = match pending.take() {
            Some(r) => Ok(r),
            None => match records.next() {
                Some(r) => r,
                None => break,
            },
        };
        line += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rejected.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let Some(raw) = record.get(column) else {
            rejected.push((line, "missing".to_string()));
            continue;
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            rejected.push((line, "not UTF-8 text".to_string()));
            continue;
        };
        match Phone::parse(text, region) {
            Ok(p) => {
                if seen.insert(p.as_str().to_string()) {
                    phones.push(p.as_str().to_string());
                }
            }
            Err(e) => rejected.push((line, format!("{e}: {:?}", crate::phone::mask(text)))),
        }
    }
    Ok((phones, rejected))
}

/// `ringback optout list`: the ledger as CSV.
pub async fn list(config: &Config) -> Outcome {
    let db = connect(config).await?;
    let list = db
        .optouts()
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    db.close().await;
    out!("phone,source,created_at");
    for o in list {
        out!("{},{},{}", o.phone, o.source, o.created_at.to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_with_or_without_a_header_and_its_bad_rows() {
        let es = Some(phonenumber::country::Id::ES);
        let (phones, rejected) = read(
            "l.csv",
            b"name,Phone\nAnna,612 34 56 78\nJoan,12\nPere,+34612345678\n",
            es,
        )
        .unwrap();
        assert_eq!(phones, vec!["+34612345678"]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].0, 3);
        let (phones, rejected) = read("l.csv", b"+34612345678\n+34699111222\nnope\n", es).unwrap();
        assert_eq!(phones.len(), 2);
        assert_eq!(rejected[0].0, 3);
        assert!(read("l.csv", b"", es).is_err());
        assert!(read("l.csv", b"name,city\nAnna,Girona\n", es).is_err());
    }
}

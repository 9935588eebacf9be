//! Reading CSV and JSON appointment lists (our own array, a FHIR Bundle or FHIR NDJSON) into
//! raw records, one per row, keyed by column.

use serde_json::Value;
use serde_json::value::RawValue;

use super::FileError;
use crate::campaign::{Column, ColumnMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// From a file name; `-` (stdin) and unknown extensions are sniffed from the content.
    pub fn guess(name: &str, bytes: &[u8]) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") || lower.ends_with(".ndjson") {
            return Format::Json;
        }
        if lower.ends_with(".csv") {
            return Format::Csv;
        }
        match strip_bom(bytes).iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[' | b'{') => Format::Json,
            _ => Format::Csv,
        }
    }
}

/// A field as read: absent or blank (`None`), text, or bytes that are not UTF-8.
pub type Field = Option<Result<String, ()>>;

/// One row of the file before any field is interpreted.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub line: u64,
    pub fields: [Field; Column::ALL.len()],
    /// A problem with the row as a whole (wrong number of fields, not an object …): the field
    /// it is reported against, and what is wrong.
    pub malformed: Option<(&'static str, String)>,
    /// Fields read elsewhere in the file than the row's own line (a FHIR Appointment's patient).
    pub elsewhere: Option<Box<Elsewhere>>,
}

/// Where some of a row's fields were read: a problem with one of them says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elsewhere {
    pub columns: &'static [Column],
    /// What and where, as a rejection says it: `Patient/p2, line 40`.
    pub at: String,
}

impl RawRecord {
    pub fn get(&self, column: Column) -> &Field {
        &self.fields[column as usize]
    }
}

/// Read every record of an appointment list.
pub fn read(
    bytes: &[u8],
    format: Format,
    columns: &ColumnMap,
) -> Result<Vec<RawRecord>, FileError> {
    let bytes = strip_bom(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FileError::new(
            1,
            "file",
            "the file is empty: expected a header row and appointments",
        ));
    }
    match format {
        Format::Csv => read_csv(bytes, columns),
        Format::Json => read_json(bytes, columns),
    }
}

/// A file that is not a list of rows at all, named as what it is: an Excel workbook or a PDF
/// would otherwise be read as text and refused for its bytes, with advice about encodings that
/// cannot help. Looked at before any decoding.
pub fn not_a_list(bytes: &[u8]) -> Option<FileError> {
    let what = if bytes.starts_with(b"PK\x03\x04") {
        "a ZIP archive, as an Excel workbook (.xlsx) or an OpenDocument spreadsheet (.ods) is"
    } else if bytes.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        "an Excel 97-2003 workbook (.xls)"
    } else if bytes.starts_with(b"%PDF-") {
        "a PDF document"
    } else {
        return None;
    };
    Some(FileError::new(
        1,
        "file",
        format!(
            "the file is {what}, not a list: save the sheet as CSV (in Excel: Save As, \"CSV UTF-8\"), or export the list as CSV or JSON"
        ),
    ))
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Spreadsheet exports in much of Europe separate with `;`; tab-separated exports exist too.
fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |d: u8| header.iter().filter(|b| **b == d).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| count(*d))
        .unwrap_or(b',')
}

fn normalise(header: &str) -> String {
    header.trim().to_lowercase()
}

/// Where each column is in a header: the campaign's mapped name, else our own.
struct Located {
    at: [Option<usize>; Column::ALL.len()],
    /// The time column that completes `starts_at`'s date, when the export writes them apart.
    starts_at_time: Option<usize>,
}

impl Located {
    /// The row's fields by column, `starts_at` joined from its date and time columns.
    fn fields(&self, mut field: impl FnMut(usize) -> Field) -> [Field; Column::ALL.len()] {
        let mut fields: [Field; Column::ALL.len()] = Default::default();
        for column in Column::ALL {
            fields[column as usize] = self.at[column as usize].and_then(&mut field);
        }
        if let Some(time) = self.starts_at_time.and_then(&mut field) {
            let date = &mut fields[Column::StartsAt as usize];
            *date = match (date.take(), time) {
                (Some(Ok(date)), Ok(time)) => Some(Ok(format!("{date} {time}"))),
                (None, _) => None,
                _ => Some(Err(())),
            };
        }
        fields
    }
}

fn locate(headers: &[String], columns: &ColumnMap, require: bool) -> Result<Located, FileError> {
    let wanted: Vec<String> = headers.iter().map(|h| normalise(h)).collect();
    let find = |name: &str| wanted.iter().position(|h| *h == normalise(name));
    let mut at = [None; Column::ALL.len()];
    let mut missing = Vec::new();
    for column in Column::ALL {
        at[column as usize] = find(columns.header(column)).or_else(|| find(column.name()));
        if require && at[column as usize].is_none() && column.required() {
            missing.push((column, columns.header(column)));
        }
    }
    let starts_at_time = columns.starts_at_time.as_deref().and_then(|name| {
        let found = find(name);
        if require && found.is_none() {
            missing.push((Column::StartsAt, name));
        }
        found
    });
    if require {
        twice(headers, &wanted, &at, starts_at_time)?;
    }
    if let Some((first, _)) = missing.first() {
        let names: Vec<String> = missing.iter().map(|(_, h)| format!("{h:?}")).collect();
        return Err(FileError::new(
            1,
            first.name(),
            format!(
                "missing column {} (the header has: {})",
                names.join(", "),
                headers.join(", ")
            ),
        ));
    }
    Ok(Located { at, starts_at_time })
}

/// A column ringback reads that the header names twice (a home and a mobile "Phone", say): which
/// one is meant cannot be guessed, and the wrong one would be called.
fn twice(
    headers: &[String],
    wanted: &[String],
    at: &[Option<usize>],
    starts_at_time: Option<usize>,
) -> Result<(), FileError> {
    let read = Column::ALL
        .into_iter()
        .filter_map(|column| Some((column, at[column as usize]?)))
        .chain(starts_at_time.map(|i| (Column::StartsAt, i)));
    for (column, first) in read {
        if let Some(again) = (first + 1..wanted.len()).find(|&i| wanted[i] == wanted[first]) {
            return Err(FileError::new(
                1,
                column.name(),
                format!(
                    "the header has two columns {:?} and {:?} (columns {} and {}): rename or drop one in the export, so that it is clear which to read",
                    headers[first].trim(),
                    headers[again].trim(),
                    first + 1,
                    again + 1
                ),
            ));
        }
    }
    Ok(())
}

fn read_csv(bytes: &[u8], columns: &ColumnMap) -> Result<Vec<RawRecord>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(bytes))
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let header_bytes = reader
        .byte_headers()
        .map_err(|e| FileError::new(1, "header", format!("unreadable header: {e}")))?
        .clone();
    let headers = header_bytes
        .iter()
        .map(|h| String::from_utf8(h.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            FileError::new(
                1,
                "header",
                "the header is not UTF-8 text (save the export as UTF-8, or name its encoding in the campaign: [import] encoding = \"windows-1252\")",
            )
        })?;
    let at = locate(&headers, columns, true)?;
    let mut records = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                records.push(RawRecord {
                    line: e.position().map_or(line, |p| p.line()),
                    fields: Default::default(),
                    malformed: Some(("row", format!("unreadable row: {e}"))),
                    elsewhere: None,
                });
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let malformed = (record.len() != headers.len()).then(|| {
            let problem = format!(
                "the row has {} fields, the header has {}",
                record.len(),
                headers.len()
            );
            ("row", problem)
        });
        let fields = at.fields(|i| {
            record
                .get(i)
                .map(|raw| {
                    std::str::from_utf8(raw)
                        .map(|s| s.trim().to_string())
                        .map_err(|_| ())
                })
                .filter(|f| !matches!(f, Ok(s) if s.is_empty()))
        });
        records.push(RawRecord {
            line,
            fields,
            malformed,
            elsewhere: None,
        });
    }
    Ok(records)
}

fn read_json(bytes: &[u8], columns: &ColumnMap) -> Result<Vec<RawRecord>, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        FileError::new(line, "file", "the file is not UTF-8 text")
    })?;
    if text.trim_start().starts_with('{') {
        return super::fhir::read(text);
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        FileError::new(
            e.line() as u64,
            "file",
            format!("not a JSON array of appointments: {e}"),
        )
    })?;
    let mut lines = Lines::new(text);
    let mut headers: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for item in items {
        let line = lines.of(item.get());
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(item.get()) else {
            records.push(RawRecord {
                line,
                fields: Default::default(),
                malformed: Some(("row", "not a JSON object".into())),
                elsewhere: None,
            });
            continue;
        };
        headers.clear();
        headers.extend(object.keys().cloned());
        // A key an object lacks is a blank field, reported by the row's own checks.
        let at = locate(&headers, columns, false)?;
        let fields = at.fields(|i| {
            object
                .get(&headers[i])
                .and_then(|v| match v {
                    Value::String(s) => Some(s.trim().to_string()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .filter(|s| !s.is_empty())
                .map(Ok)
        });
        records.push(RawRecord {
            line,
            fields,
            malformed: None,
            elsewhere: None,
        });
    }
    Ok(records)
}

/// The line each part of a text starts on, for parts asked about in the order they appear: each
/// count goes on from the last, so a list of 100,000 items is read once, not once per item.
pub(super) struct Lines<'t> {
    text: &'t str,
    offset: usize,
    line: u64,
}

impl<'t> Lines<'t> {
    pub fn new(text: &'t str) -> Lines<'t> {
        Lines {
            text,
            offset: 0,
            line: 1,
        }
    }

    /// The line `part` (a slice of the text) starts on.
    pub fn of(&mut self, part: &str) -> u64 {
        let at = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        let at = at.min(self.text.len());
        if at < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        let newlines = self.text.as_bytes()[self.offset..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.line += newlines as u64;
        self.offset = at;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_on_from_the_last_part_asked_about() {
        let text = "[\n {\"a\": 1},\n\n {\"b\": 2}\n]";
        let (a, b) = (text.find("{\"a").unwrap(), text.find("{\"b").unwrap());
        let mut lines = Lines::new(text);
        assert_eq!(lines.of(&text[a..a + 8]), 2);
        assert_eq!(lines.of(&text[b..b + 8]), 4);
        // Asked out of order: counted again from the start.
        assert_eq!(lines.of(&text[a..]), 2);
        assert_eq!(lines.of(text), 1);
    }
}

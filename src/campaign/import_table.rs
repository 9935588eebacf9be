//! The `[import]` table of a campaign file: how the clinic's exports are written.

use toml::de::DeValue;

use super::reader::{Errors, Section};
use super::{Column, ColumnMap, Encoding, ImportRules, TimeFormat};

/// `[import]`: the export's own column names, how it writes `starts_at`, its character set.
pub(super) fn import_rules(top: &Section, errors: &mut Errors) -> Option<ImportRules> {
    let Some(import) = top.table("import", errors) else {
        return Some(ImportRules::default());
    };
    import.deny_unknown(&["columns", "starts_at_format", "encoding"], errors);
    let before = errors.0.len();
    let starts_at_format = import.str("starts_at_format", errors).and_then(|f| {
        TimeFormat::new(f.get_ref())
            .map_err(|e| {
                errors.push(
                    f.span(),
                    format!("[import] `starts_at_format` {:?}: {e}", f.get_ref()),
                )
            })
            .ok()
    });
    let encoding = import.str("encoding", errors).map(|label| {
        Encoding::from_label(label.get_ref()).unwrap_or_else(|| {
            errors.push(
                label.span(),
                format!(
                    "[import] `encoding` {:?}: use \"utf-8\" or \"windows-1252\" (also called latin1)",
                    label.get_ref()
                ),
            );
            Encoding::default()
        })
    });
    let columns = import_columns(&import, errors);
    (errors.0.len() == before).then(|| ImportRules {
        columns: columns.unwrap_or_default(),
        starts_at_format,
        encoding: encoding.unwrap_or_default(),
    })
}

fn import_columns(import: &Section, errors: &mut Errors) -> Option<ColumnMap> {
    let mut map = ColumnMap::default();
    let Some(columns) = import.table("columns", errors) else {
        return Some(map);
    };
    let before = errors.0.len();
    for (key, value) in columns.table.iter() {
        let Some(column) = Column::from_name(key.get_ref()) else {
            let known: Vec<_> = Column::ALL.iter().map(|c| c.name()).collect();
            errors.push(
                key.span(),
                format!(
                    "[import.columns] unknown column `{}` (known: {})",
                    key.get_ref(),
                    known.join(", ")
                ),
            );
            continue;
        };
        let header = |v: &DeValue| match v {
            DeValue::String(h) if !h.trim().is_empty() => Some(h.trim().to_string()),
            _ => None,
        };
        match value.get_ref() {
            DeValue::Array(pair) if column == Column::StartsAt => {
                match pair.iter().map(|v| header(v.get_ref())).collect::<Vec<_>>()[..] {
                    [Some(ref date), Some(ref time)] => {
                        map.headers.insert(column, date.clone());
                        map.starts_at_time = Some(time.clone());
                    }
                    _ => errors.push(
                        value.span(),
                        "[import.columns] `starts_at` must name a header, or two: [\"date header\", \"time header\"]",
                    ),
                }
            }
            v => match header(v) {
                Some(h) => {
                    map.headers.insert(column, h);
                }
                None => errors.push(
                    value.span(),
                    format!("[import.columns] `{}` must name a header", key.get_ref()),
                ),
            },
        }
    }
    (errors.0.len() == before).then_some(map)
}

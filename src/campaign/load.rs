//! Loading campaign files from a directory, with `file:line:col: message` diagnostics.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::Campaign;
use super::parse;

/// One problem in a campaign file, at a line and column (both from 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// What parsing one file gave: the campaign, or its errors; warnings either way.
pub struct Outcome {
    pub campaign: Result<Campaign, Vec<Diagnostic>>,
    pub warnings: Vec<Diagnostic>,
}

/// Parse one campaign file's text. `id` is its file stem.
pub fn parse_campaign(id: &str, file: &Path, src: &str) -> Outcome {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, col) = line_col(src, span.start);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message,
        }
    };
    let (table, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .map(|e| {
                at(
                    e.span().unwrap_or_default(),
                    format!("TOML syntax: {}", e.message()),
                )
            })
            .collect();
        return Outcome {
            campaign: Err(errors),
            warnings: vec![],
        };
    }
    let parsed = parse::campaign(id, src, table.get_ref());
    let mut errors: Vec<_> = parsed.errors.into_iter().map(|(s, m)| at(s, m)).collect();
    errors.sort();
    let warnings = parsed.warnings.into_iter().map(|(s, m)| at(s, m)).collect();
    let campaign = match parsed.campaign {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    };
    Outcome { campaign, warnings }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..src.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Every campaign of a directory, and what is wrong with the rest.
#[derive(Default)]
pub struct Catalog {
    pub campaigns: BTreeMap<String, Campaign>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Catalog {
    /// The country every campaign shares, for numbers written without a country code.
    pub fn shared_country(&self) -> Option<phonenumber::country::Id> {
        let mut countries = self.campaigns.values().map(|c| c.country);
        let first = countries.next()?;
        countries.all(|c| c == first).then_some(first)
    }

    /// The zone a date written without one is read in: `campaign`'s (an error, as
    /// [`Catalog::require`] says it, if there is no such campaign), else the one every campaign
    /// shares, else UTC.
    pub fn zone_for(&self, campaign: Option<&str>) -> Result<chrono_tz::Tz, String> {
        if let Some(id) = campaign {
            return Ok(self.require(id)?.timezone);
        }
        let mut zones = self.campaigns.values().map(|c| c.timezone);
        let shared = zones.next().filter(|first| zones.all(|z| z == *first));
        Ok(shared.unwrap_or(chrono_tz::Tz::UTC))
    }

    pub fn get(&self, id: &str) -> Option<&Campaign> {
        self.campaigns.get(id)
    }

    /// The campaign `id`, or an error that says which exist and why `id` may not have loaded.
    pub fn require(&self, id: &str) -> Result<&Campaign, String> {
        if let Some(c) = self.campaigns.get(id) {
            return Ok(c);
        }
        let broken: Vec<_> = self
            .errors
            .iter()
            .filter(|d| d.file.file_stem().is_some_and(|s| s == id))
            .map(|d| format!("\n  {d}"))
            .collect();
        if broken.is_empty() {
            let known: Vec<_> = self.campaigns.keys().map(String::as_str).collect();
            Err(format!("no campaign {id:?} (known: {})", known.join(", ")))
        } else {
            Err(format!("campaign {id:?} has errors:{}", broken.concat()))
        }
    }
}

impl Catalog {
    /// How many files have errors (each may have several).
    pub fn files_with_errors(&self) -> usize {
        let files: std::collections::BTreeSet<_> = self.errors.iter().map(|e| &e.file).collect();
        files.len()
    }

    /// `fresh`, the directory read again, to run instead of `self`: a campaign whose file now has
    /// errors keeps running as it was (a typo must not stop its calls), its errors still listed;
    /// a campaign whose file is gone is gone. Also returns the ids kept as they were.
    pub fn reloaded(&self, mut fresh: Catalog) -> (Catalog, Vec<String>) {
        let broken: std::collections::BTreeSet<String> = fresh
            .errors
            .iter()
            .filter_map(|d| Some(d.file.file_stem()?.to_str()?.to_string()))
            .collect();
        let mut kept = Vec::new();
        for id in broken {
            if let Some(running) = self.campaigns.get(&id)
                && !fresh.campaigns.contains_key(&id)
            {
                fresh.campaigns.insert(id.clone(), running.clone());
                kept.push(id);
            }
        }
        (fresh, kept)
    }
}

/// Load every `*.toml` of `dir` (not its subdirectories).
pub fn load_dir(dir: &Path) -> std::io::Result<Catalog> {
    let mut catalog = Catalog::default();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&path)?;
        let Ok(src) = String::from_utf8(bytes) else {
            catalog.errors.push(Diagnostic {
                file: path.clone(),
                line: 1,
                col: 1,
                message: "the file is not UTF-8 text".into(),
            });
            continue;
        };
        let outcome = parse_campaign(&id, &path, &src);
        catalog.warnings.extend(outcome.warnings);
        match outcome.campaign {
            Ok(c) => {
                catalog.campaigns.insert(id, c);
            }
            Err(errors) => catalog.errors.extend(errors),
        }
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMINDERS: &str = include_str!("../../campaigns/reminders.toml");
    const CALLBACKS: &str = include_str!("../../campaigns/callbacks.toml");

    #[test]
    fn a_reload_keeps_a_campaign_whose_file_broke_and_drops_one_whose_file_went() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("reminders.toml", REMINDERS);
        write("callbacks.toml", CALLBACKS);
        let running = load_dir(dir.path()).unwrap();
        assert_eq!(running.campaigns.len(), 2);

        // reminders.toml gets a typo, callbacks.toml goes, dental.toml comes.
        write(
            "reminders.toml",
            &REMINDERS.replacen("timezone = \"", "timezone = \"Mars/", 1),
        );
        std::fs::remove_file(dir.path().join("callbacks.toml")).unwrap();
        write(
            "dental.toml",
            &REMINDERS.replacen("name = \"", "name = \"Dental ", 1),
        );
        let fresh = load_dir(dir.path()).unwrap();
        assert!(!fresh.campaigns.contains_key("reminders"));
        let (now, kept) = running.reloaded(fresh);

        assert_eq!(kept, ["reminders"]);
        assert_eq!(
            now.campaigns.keys().collect::<Vec<_>>(),
            ["dental", "reminders"]
        );
        assert_eq!(
            now.campaigns["reminders"].timezone, running.campaigns["reminders"].timezone,
            "the version running before"
        );
        assert!(now.campaigns["dental"].name.starts_with("Dental "));
        assert!(
            now.errors
                .iter()
                .any(|e| e.file.ends_with("reminders.toml") && e.message.contains("Mars/")),
            "{:?}",
            now.errors
        );
    }
}

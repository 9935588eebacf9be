//! Typed access to a parsed TOML tree that keeps every value's position, so each error in a
//! campaign file can name its line and column.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(crate) type Span = Range<usize>;

/// The errors found so far, each at a byte span of the file.
#[derive(Default)]
pub(crate) struct Errors(pub Vec<(Span, String)>);

impl Errors {
    pub fn push(&mut self, span: Span, message: impl Into<String>) {
        self.0.push((span, message.into()));
    }
}

/// One TOML table and the name it goes by in messages (`[retry]`).
pub(crate) struct Section<'t, 'i> {
    pub name: String,
    pub table: &'t DeTable<'i>,
    pub span: Span,
}

impl<'t, 'i> Section<'t, 'i> {
    pub fn new(name: impl Into<String>, table: &'t DeTable<'i>, span: Span) -> Self {
        Section {
            name: name.into(),
            table,
            span,
        }
    }

    pub fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }

    fn typed<T>(
        &self,
        key: &str,
        errors: &mut Errors,
        expected: &str,
        convert: impl Fn(&'t DeValue<'i>) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let value = self.get(key)?;
        match convert(value.get_ref()) {
            Some(v) => Some(Spanned::new(value.span(), v)),
            None => {
                errors.push(value.span(), format!("`{key}` must be {expected}"));
                None
            }
        }
    }

    pub fn str(&self, key: &str, errors: &mut Errors) -> Option<Spanned<&'t str>> {
        self.typed(key, errors, "a string", |v| match v {
            DeValue::String(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    pub fn int(&self, key: &str, errors: &mut Errors) -> Option<Spanned<i64>> {
        self.typed(key, errors, "a whole number", |v| match v {
            DeValue::Integer(i) => {
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        })
    }

    /// A whole number in `range`, reported at its position when it is not.
    pub fn int_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        errors: &mut Errors,
    ) -> Option<u32> {
        let value = self.int(key, errors)?;
        if range.contains(value.get_ref()) {
            Some(*value.get_ref() as u32)
        } else {
            errors.push(
                value.span(),
                format!(
                    "`{key}` must be between {} and {}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    pub fn float(&self, key: &str, errors: &mut Errors) -> Option<Spanned<f64>> {
        self.typed(key, errors, "a number", |v| match v {
            DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
            DeValue::Integer(i) => i.as_str().replace('_', "").parse().ok(),
            _ => None,
        })
    }

    pub fn bool(&self, key: &str, errors: &mut Errors) -> Option<Spanned<bool>> {
        self.typed(key, errors, "true or false", |v| match v {
            DeValue::Boolean(b) => Some(*b),
            _ => None,
        })
    }

    pub fn strings(&self, key: &str, errors: &mut Errors) -> Option<Vec<Spanned<&'t str>>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            errors.push(value.span(), format!("`{key}` must be a list of strings"));
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.as_ref())),
                _ => errors.push(item.span(), format!("`{key}` must hold only strings")),
            }
        }
        Some(out)
    }

    pub fn table(&self, key: &str, errors: &mut Errors) -> Option<Section<'t, 'i>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(Section::new(format!("[{key}]"), t, value.span())),
            _ => {
                errors.push(value.span(), format!("`{key}` must be a table ([{key}])"));
                None
            }
        }
    }

    /// Report a key every campaign must have.
    pub fn missing(&self, key: &str, errors: &mut Errors) {
        let place = if self.name.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.name)
        };
        errors.push(
            self.span.start..self.span.start,
            format!("missing `{key}`{place}"),
        );
    }

    pub fn required_str(&self, key: &str, errors: &mut Errors) -> Option<Spanned<&'t str>> {
        if self.get(key).is_none() {
            self.missing(key, errors);
        }
        self.str(key, errors)
    }

    /// Report every key not in `known`, where a typo would otherwise be silently ignored.
    pub fn deny_unknown(&self, known: &[&str], errors: &mut Errors) {
        for (key, _) in self.table.iter() {
            if !known.contains(&key.get_ref().as_ref()) {
                let place = if self.name.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", self.name)
                };
                errors.push(
                    key.span(),
                    format!(
                        "unknown key `{}`{place} (known: {})",
                        key.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

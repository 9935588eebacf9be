//! Message templates: placeholders in braces, checked when the campaign is loaded.

use std::fmt;

/// The placeholders a message may use (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placeholder {
    FirstName,
    LastName,
    Clinic,
    ClinicPhone,
    Date,
    Time,
    Weekday,
    Provider,
    Location,
}

impl Placeholder {
    pub const ALL: [Placeholder; 9] = [
        Placeholder::FirstName,
        Placeholder::LastName,
        Placeholder::Clinic,
        Placeholder::ClinicPhone,
        Placeholder::Date,
        Placeholder::Time,
        Placeholder::Weekday,
        Placeholder::Provider,
        Placeholder::Location,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::FirstName => "first_name",
            Placeholder::LastName => "last_name",
            Placeholder::Clinic => "clinic",
            Placeholder::ClinicPhone => "clinic_phone",
            Placeholder::Date => "date",
            Placeholder::Time => "time",
            Placeholder::Weekday => "weekday",
            Placeholder::Provider => "provider",
            Placeholder::Location => "location",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the placeholder may appear where others can hear or read it (voicemail, SMS):
    /// name, clinic, date (and its weekday), time and the clinic's phone, nothing more.
    pub fn is_public(self) -> bool {
        !matches!(self, Placeholder::Provider | Placeholder::Location)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Placeholder),
}

/// A parsed message: text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// A template error and its byte offset inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parse `Hola {first_name}`; `{{` and `}}` stand for literal braces.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|(_, c)| *c) == Some('{') => {
                    rest.next();
                    literal.push('{');
                }
                '}' if rest.peek().map(|(_, c)| *c) == Some('}') => {
                    rest.next();
                    literal.push('}');
                }
                '{' => {
                    let close = text[at..].find('}').ok_or_else(|| TemplateError {
                        offset: at,
                        message: "unclosed `{` in message".into(),
                    })?;
                    let name = &text[at + 1..at + close];
                    let field =
                        Placeholder::from_name(name.trim()).ok_or_else(|| TemplateError {
                            offset: at,
                            message: format!(
                                "unknown placeholder {{{name}}} (known: {})",
                                Placeholder::ALL.map(|p| p.to_string()).join(" ")
                            ),
                        })?;
                    if !literal.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Field(field));
                    while rest.peek().is_some_and(|(i, _)| *i <= at + close) {
                        rest.next();
                    }
                }
                '}' => {
                    return Err(TemplateError {
                        offset: at,
                        message: "stray `}` in message (write `}}` for a brace)".into(),
                    });
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field(p) => Some(*p),
            Segment::Text(_) => None,
        })
    }

    /// Fill the placeholders; `value` answers each one.
    pub fn render(&self, value: impl Fn(Placeholder) -> String) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(p) => out.push_str(&value(*p)),
            }
        }
        out
    }
}

/// One language's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    /// What a person who answers hears (reminder, or the patient-first callback greeting).
    pub voice: Template,
    /// What an answering machine records.
    pub voicemail: Template,
    /// The SMS fallback.
    pub sms: Option<Template>,
    /// What staff hear before an agent-first callback is bridged to the patient.
    pub agent: Option<Template>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_rendered() {
        let t = Template::parse("Hola {first_name}, {clinic} {{ok}}").unwrap();
        assert_eq!(
            t.placeholders().collect::<Vec<_>>(),
            [Placeholder::FirstName, Placeholder::Clinic]
        );
        let text = t.render(|p| match p {
            Placeholder::FirstName => "Anna".into(),
            _ => "CAP".into(),
        });
        assert_eq!(text, "Hola Anna, CAP {ok}");
    }

    #[test]
    fn unknown_and_unclosed_placeholders_are_errors_with_their_offset() {
        let err = Template::parse("Hi {diagnosis}").unwrap_err();
        assert_eq!(err.offset, 3);
        assert!(err.message.contains("unknown placeholder {diagnosis}"));
        assert!(Template::parse("Hi {first_name").is_err());
        assert!(Template::parse("Hi }").is_err());
    }

    #[test]
    fn provider_and_location_are_not_public() {
        assert!(!Placeholder::Provider.is_public());
        assert!(!Placeholder::Location.is_public());
        assert!(Placeholder::ClinicPhone.is_public());
    }
}

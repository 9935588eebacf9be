//! FHIR R4 in: a Bundle of Appointment resources and the Patients they name, as an EHR's FHIR
//! API answers `GET /Appointment?date=ge2026-12-01&_include=Appointment:patient` (a searchset),
//! or as a collection or a transaction; or the same resources one per line (NDJSON), as a FHIR
//! Bulk Data `$export` writes them. Each Appointment becomes one row, checked and
//! re-imported exactly as a CSV row is; its problems are reported at the line its resource
//! starts on.
//!
//! What is read, and from where:
//! - `appointment_id`: `Appointment.id`, else its first identifier's value;
//! - `starts_at`: `Appointment.start` (an instant with its offset);
//! - `status`: `booked` is reminded; every other status (proposed, pending, waitlist,
//!   cancelled, noshow, arrived, checked-in, fulfilled, entered-in-error) is imported as not to
//!   be reminded, and withdraws what was planned for it;
//! - the patient: the first participant whose actor is a Patient, found in the Bundle by its
//!   `fullUrl` or `Patient/id`, or among the Appointment's contained resources:
//!   `patient_id` its id, else its first identifier; `first_name`/`last_name` its usual name,
//!   else its official one; `phone` its mobile number, else its best-ranked phone;
//!   `language` its preferred communication language; `timezone` the FHIR time-zone extension
//!   (on the Patient, else on the Appointment);
//! - `provider` and `location`: the Practitioner (or PractitionerRole) and Location taking
//!   part, by their display text, else by the resource's own name.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::FileError;
use super::source::{Elsewhere, Field, Lines, RawRecord};
use crate::campaign::Column;

/// The columns read from an Appointment's Patient.
const PATIENT_COLUMNS: [Column; 6] = [
    Column::PatientId,
    Column::FirstName,
    Column::LastName,
    Column::Phone,
    Column::Language,
    Column::Timezone,
];

/// The FHIR extension that carries an IANA time zone.
const TIMEZONE: &str = "http://hl7.org/fhir/StructureDefinition/timezone";

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
    #[serde(default)]
    link: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    relation: Option<String>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(rename = "fullUrl")]
    full_url: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// Read a JSON object: a FHIR Bundle, or FHIR resources one per line (NDJSON, as a FHIR Bulk
/// Data `$export` writes them), or an error that says what the object is instead.
pub(super) fn read(text: &str) -> Result<Vec<RawRecord>, FileError> {
    if is_ndjson(text) {
        return read_ndjson(text);
    }
    let bundle: Bundle = serde_json::from_str(text)
        .map_err(|e| FileError::new(e.line() as u64, "file", format!("not a FHIR Bundle: {e}")))?;
    match bundle.resource_type.as_deref() {
        Some("Bundle") => {}
        Some(other) => {
            return Err(FileError::new(
                1,
                "resourceType",
                format!(
                    "a FHIR {other} resource: ringback imports a Bundle of Appointment resources with their patients"
                ),
            ));
        }
        None => {
            return Err(FileError::new(
                1,
                "file",
                "not a JSON array of appointments, nor a FHIR Bundle (it has no resourceType)",
            ));
        }
    }
    if bundle
        .link
        .iter()
        .any(|l| l.relation.as_deref() == Some("next"))
    {
        // Safe to import as it is (an appointment is withdrawn only when cancelled, never
        // for being absent), but the rest of the search is not in it.
        tracing::warn!(
            "the Bundle is one page of a search (it links to a next page): import each page, or search with a larger _count"
        );
    }
    let mut lines = Lines::new(text);
    let mut resources = Resources::default();
    for entry in &bundle.entry {
        let Some(raw) = entry.resource else { continue };
        resources.add(entry.full_url.as_deref(), lines.of(raw.get()), raw);
    }
    resources.appointments("entry", "the Bundle holds no Appointment resource")
}

/// Whether `text` is NDJSON: its first line a whole JSON object, and not a Bundle. (A Bundle
/// is one object, most often over many lines; written on one line, it is still a Bundle.)
fn is_ndjson(text: &str) -> bool {
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    matches!(
        serde_json::from_str::<Head>(first.trim()),
        Ok(Head { resource_type: Some(kind), .. }) if kind != "Bundle"
    )
}

/// Resources one per line, in any order (an export's `Appointment.ndjson` and `Patient.ndjson`
/// put together: `cat Patient.ndjson Appointment.ndjson`). A line that is not JSON refuses the
/// file, at that line, as a Bundle that is not JSON is.
fn read_ndjson(text: &str) -> Result<Vec<RawRecord>, FileError> {
    let mut resources = Resources {
        ndjson: true,
        ..Resources::default()
    };
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let raw: &RawValue = serde_json::from_str(line).map_err(|e| {
            FileError::new(
                line_no,
                "file",
                format!("not a FHIR resource (NDJSON holds one JSON object per line): {e}"),
            )
        })?;
        resources.add(None, line_no, raw);
    }
    resources.appointments(
        "resourceType",
        "no line is an Appointment resource: export Appointment with Patient (e.g. $export?_type=Appointment,Patient) and import both files together",
    )
}

/// A resource as it stands in the file: parsed only when an Appointment needs it, so a Bundle
/// of 100,000 appointments and their patients is not held twice over in memory.
struct Resource<'t> {
    line: u64,
    kind: Option<String>,
    raw: &'t RawValue,
}

/// A resource a reference found: an entry of the Bundle, parsed only when its content is
/// needed, or one contained in the Appointment.
enum Found<'a, 't> {
    Entry(&'a Resource<'t>),
    Contained(&'a Value),
}

impl<'a> Found<'a, '_> {
    fn kind(&self) -> Option<&'a str> {
        match self {
            Found::Entry(resource) => resource.kind.as_deref(),
            Found::Contained(value) => kind(value),
        }
    }

    /// The line it starts on; a contained resource is on its container's lines.
    fn line(&self) -> Option<u64> {
        match self {
            Found::Entry(resource) => Some(resource.line),
            Found::Contained(_) => None,
        }
    }

    fn value(&self) -> std::borrow::Cow<'a, Value> {
        match self {
            Found::Entry(resource) => std::borrow::Cow::Owned(parse(resource.raw)),
            Found::Contained(value) => std::borrow::Cow::Borrowed(value),
        }
    }
}

/// The kinds of participant a row takes something from.
const ACTORS: [&str; 4] = ["Patient", "Practitioner", "PractitionerRole", "Location"];

/// What a resource is, read without the rest of it.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<Value>,
}

/// Valid JSON already (the Bundle parsed): `Null` cannot happen.
fn parse(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The Bundle's resources, each with the line it starts on, found by `fullUrl` or `Type/id`.
#[derive(Default)]
struct Resources<'t> {
    list: Vec<Resource<'t>>,
    by_reference: HashMap<String, usize>,
    /// One resource per line rather than a Bundle (how to say a patient is missing).
    ndjson: bool,
}

impl<'t> Resources<'t> {
    fn add(&mut self, full_url: Option<&str>, line: u64, raw: &'t RawValue) {
        let at = self.list.len();
        if let Some(url) = full_url {
            self.by_reference.insert(url.to_string(), at);
        }
        // Only an object is a resource (serde would read a struct from an array too).
        let head: Option<Head> = raw
            .get()
            .starts_with('{')
            .then(|| serde_json::from_str(raw.get()).ok())
            .flatten();
        let (kind, id) = head.map_or((None, None), |h| {
            (h.resource_type, h.id.as_ref().and_then(text))
        });
        if let (Some(kind), Some(id)) = (&kind, id) {
            self.by_reference.insert(format!("{kind}/{id}"), at);
        }
        self.list.push(Resource { line, kind, raw });
    }

    /// The resource a reference names: `Patient/1`, a `fullUrl` (`urn:uuid:…`, or absolute),
    /// an absolute URL ending in `Patient/1`, or `#id` among `container`'s contained resources.
    fn resolve<'a>(&'a self, reference: &str, container: &'a Value) -> Option<Found<'a, 't>> {
        if let Some(id) = reference.strip_prefix('#') {
            return each(&container["contained"])
                .find(|r| r["id"].as_str() == Some(id))
                .map(Found::Contained);
        }
        let found = |key: &str| self.by_reference.get(key).map(|&at| &self.list[at]);
        found(reference)
            .or_else(|| found(&relative(reference)?))
            .map(Found::Entry)
    }

    /// Each Appointment as a row, in the order they came; `none` (reported against `field`)
    /// if there were resources but no Appointment among them.
    fn appointments(&self, field: &'static str, none: &str) -> Result<Vec<RawRecord>, FileError> {
        let records: Vec<RawRecord> = self
            .list
            .iter()
            .filter(|r| r.kind.as_deref() == Some("Appointment"))
            .map(|r| self.row(r.line, &parse(r.raw)))
            .collect();
        if records.is_empty() && !self.list.is_empty() {
            return Err(FileError::new(1, field, none));
        }
        Ok(records)
    }

    /// One Appointment as a row.
    fn row(&self, line: u64, appointment: &Value) -> RawRecord {
        let mut fields: [Field; Column::ALL.len()] = Default::default();
        let mut set = |column: Column, value: Option<String>| {
            fields[column as usize] = value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(Ok);
        };
        set(
            Column::AppointmentId,
            text(&appointment["id"]).or_else(|| identifier(appointment)),
        );
        set(Column::StartsAt, text(&appointment["start"]));
        set(
            Column::Status,
            text(&appointment["status"]).map(|s| status(&s).to_string()),
        );
        let participants = self.participants(appointment);
        set(Column::Provider, participants.provider);
        set(Column::Location, participants.location);
        let (malformed, elsewhere) = match participants.patient {
            None => {
                let problem = "no participant of the Appointment is a Patient".to_string();
                (Some(("participant", problem)), None)
            }
            Some((reference, None)) => {
                let problem = format!(
                    "the patient {} is {}",
                    reference.as_deref().unwrap_or("(no reference)"),
                    match self.ndjson {
                        false =>
                            "not in the Bundle: export the appointments with their patients (_include=Appointment:patient)",
                        true =>
                            "on no line: import the export's Patient resources with its Appointments (cat Patient.ndjson Appointment.ndjson)",
                    }
                );
                (Some(("participant", problem)), None)
            }
            Some((reference, Some(found))) => {
                let elsewhere = patient_fields(appointment, reference.as_deref(), &found, set);
                (None, elsewhere)
            }
        };
        RawRecord {
            line,
            fields,
            malformed,
            elsewhere,
        }
    }

    /// The Appointment's first Patient (its reference, and the resource if the file has it),
    /// and what its first practitioner and location are called.
    fn participants<'a>(&'a self, appointment: &'a Value) -> Participants<'a, 't> {
        let mut found = Participants::default();
        for actor in each(&appointment["participant"]).map(|p| &p["actor"]) {
            let reference = text(&actor["reference"]);
            let resolved = reference
                .as_deref()
                .and_then(|r| self.resolve(r, appointment));
            // A reference to a resource the Bundle lacks still says what it is.
            let actor_kind = match &resolved {
                Some(found) => found.kind(),
                None => reference.as_deref().and_then(relative).and_then(|r| {
                    let kind = r.split('/').next()?;
                    ACTORS.into_iter().find(|actor| *actor == kind)
                }),
            };
            // Only parsed when the participant has no display text of its own.
            let shown = || {
                text(&actor["display"])
                    .or_else(|| resolved.as_ref().and_then(|r| display_name(&r.value())))
            };
            match actor_kind {
                Some("Patient") if found.patient.is_none() => {
                    found.patient = Some((reference, resolved))
                }
                Some("Practitioner" | "PractitionerRole") if found.provider.is_none() => {
                    found.provider = shown()
                }
                Some("Location") if found.location.is_none() => found.location = shown(),
                _ => {}
            }
        }
        found
    }
}

/// What an Appointment's participants give its row.
#[derive(Default)]
struct Participants<'a, 't> {
    /// The reference, and the resource it names when the file has it.
    patient: Option<(Option<String>, Option<Found<'a, 't>>)>,
    provider: Option<String>,
    location: Option<String>,
}

/// Set the row's patient fields from the Patient `found` by `reference`; where they were read,
/// when that is not the Appointment's own line.
fn patient_fields(
    appointment: &Value,
    reference: Option<&str>,
    found: &Found<'_, '_>,
    mut set: impl FnMut(Column, Option<String>),
) -> Option<Box<Elsewhere>> {
    let patient = &*found.value();
    let elsewhere = found.line().map(|at| {
        Box::new(Elsewhere {
            // The zone is the Appointment's when the Patient gives none.
            columns: match timezone(patient) {
                Some(_) => &PATIENT_COLUMNS,
                None => &PATIENT_COLUMNS[..5],
            },
            at: format!("{}, line {at}", reference.unwrap_or("the patient")),
        })
    });
    set(
        Column::PatientId,
        text(&patient["id"])
            .or_else(|| identifier(patient))
            .or_else(|| {
                reference
                    .and_then(relative)
                    .and_then(|r| r.split('/').nth(1).map(String::from))
            }),
    );
    let (given, family) = person_name(patient);
    set(Column::FirstName, given);
    set(Column::LastName, family);
    set(Column::Phone, phone(patient));
    set(Column::Language, language(patient));
    set(
        Column::Timezone,
        timezone(patient).or_else(|| timezone(appointment)),
    );
    elsewhere
}

fn kind(resource: &Value) -> Option<&str> {
    resource["resourceType"].as_str()
}

/// A string element; numbers are read as text too (some servers write ids as numbers).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An array element's items (none when it is absent or not an array).
fn each(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn identifier(resource: &Value) -> Option<String> {
    each(&resource["identifier"]).find_map(|i| text(&i["value"]))
}

/// `Type/id` from a reference written absolute or with a version: `https://ehr/fhir/Patient/7`,
/// `Patient/7/_history/2`.
fn relative(reference: &str) -> Option<String> {
    let path = reference
        .split_once("/_history/")
        .map_or(reference, |(path, _)| path);
    let mut parts = path.rsplit('/');
    let id = parts.next()?;
    let kind = parts.next()?;
    (!id.is_empty() && kind.starts_with(|c: char| c.is_ascii_uppercase()))
        .then(|| format!("{kind}/{id}"))
}

/// FHIR's appointment statuses: only a booked one is reminded.
fn status(fhir: &str) -> &str {
    match fhir {
        "booked" => "booked",
        "proposed" | "pending" | "waitlist" | "cancelled" | "noshow" | "arrived" | "checked-in"
        | "fulfilled" | "entered-in-error" => "cancelled",
        other => other,
    }
}

/// The name a person goes by: the usual one, else the official one, else any current one.
fn person_name(person: &Value) -> (Option<String>, Option<String>) {
    let preference = |name: &Value| match name["use"].as_str() {
        Some("usual") => 0,
        Some("official") => 1,
        None => 2,
        Some("nickname") => 3,
        Some("temp") => 4,
        _ => 5, // anonymous, old, maiden
    };
    let Some(name) = each(&person["name"])
        .filter(|n| !matches!(n["use"].as_str(), Some("old" | "maiden")))
        .min_by_key(|n| preference(n))
    else {
        return (None, None);
    };
    let given = each(&name["given"]).find_map(text);
    let family = text(&name["family"]);
    match (given, family) {
        (None, None) => (text(&name["text"]), None),
        (given, family) => (given, family),
    }
}

/// How a practitioner or a location is named in a message.
fn display_name(resource: &Value) -> Option<String> {
    if let Some(name) = text(&resource["name"]) {
        return Some(name); // a Location
    }
    let name = each(&resource["name"]).next()?;
    text(&name["text"]).or_else(|| {
        let words: Vec<String> = each(&name["prefix"])
            .chain(each(&name["given"]))
            .filter_map(text)
            .chain(text(&name["family"]))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    })
}

/// The number to call: a current mobile first, then by the record's own rank.
fn phone(patient: &Value) -> Option<String> {
    each(&patient["telecom"])
        .filter(|t| matches!(t["system"].as_str(), Some("phone" | "sms")))
        .filter(|t| t["use"].as_str() != Some("old"))
        .filter(|t| text(&t["value"]).is_some_and(|v| !v.trim().is_empty()))
        .min_by_key(|t| {
            (
                t["use"].as_str() != Some("mobile"),
                t["rank"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .and_then(|t| text(&t["value"]))
}

/// The preferred communication language's code (BCP 47: `ca`, `es-ES`).
fn language(patient: &Value) -> Option<String> {
    each(&patient["communication"])
        .min_by_key(|c| c["preferred"].as_bool() != Some(true))
        .and_then(|c| each(&c["language"]["coding"]).find_map(|coding| text(&coding["code"])))
}

fn timezone(resource: &Value) -> Option<String> {
    each(&resource["extension"])
        .find(|e| e["url"].as_str() == Some(TIMEZONE))
        .and_then(|e| text(&e["valueCode"]))
}

#[cfg(test)]
mod tests;

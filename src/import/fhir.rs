//! FHIR R4 in: a Bundle of Appointment resources and the Patients they name, as an EHR's FHIR
//! API answers `GET /Appointment?date=ge2026-12-01&_include=Appointment:patient` (a searchset),
//! or as a collection or a transaction. Each Appointment becomes one row, checked and
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

/// Read a JSON object: a FHIR Bundle, or an error that says what the object is instead.
pub(super) fn read(text: &str) -> Result<Vec<RawRecord>, FileError> {
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
    let records: Vec<RawRecord> = resources
        .list
        .iter()
        .filter(|r| r.kind.as_deref() == Some("Appointment"))
        .map(|r| resources.row(r.line, &parse(r.raw)))
        .collect();
    if records.is_empty() && !resources.list.is_empty() {
        return Err(FileError::new(
            1,
            "entry",
            "the Bundle holds no Appointment resource",
        ));
    }
    Ok(records)
}

/// A resource as it stands in the file: parsed only when an Appointment needs it, so a Bundle
/// of 100,000 appointments and their patients is not held twice over in memory.
struct Resource<'t> {
    line: u64,
    kind: Option<String>,
    raw: &'t RawValue,
}

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
}

impl<'t> Resources<'t> {
    fn add(&mut self, full_url: Option<&str>, line: u64, raw: &'t RawValue) {
        let at = self.list.len();
        if let Some(url) = full_url {
            self.by_reference.insert(url.to_string(), at);
        }
        let head: Option<Head> = serde_json::from_str(raw.get()).ok();
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
    /// With it, the line it starts on, unless it is contained (on the container's lines).
    fn resolve(&self, reference: &str, container: &Value) -> Option<(Option<u64>, Value)> {
        if let Some(id) = reference.strip_prefix('#') {
            return each(&container["contained"])
                .find(|r| r["id"].as_str() == Some(id))
                .map(|r| (None, r.clone()));
        }
        let found = |key: &str| self.by_reference.get(key).map(|&at| &self.list[at]);
        found(reference)
            .or_else(|| found(&relative(reference)?))
            .map(|r| (Some(r.line), parse(r.raw)))
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

        let mut patient = None;
        let (mut provider, mut location) = (None, None);
        for actor in each(&appointment["participant"]).map(|p| &p["actor"]) {
            let reference = text(&actor["reference"]);
            let resolved = reference
                .as_deref()
                .and_then(|r| self.resolve(r, appointment));
            let actor_kind = resolved.as_ref().and_then(|(_, r)| kind(r)).or_else(|| {
                let reference = reference.as_deref()?;
                let relative = relative(reference)?;
                Some(match relative.split('/').next()? {
                    "Patient" => "Patient",
                    "Practitioner" => "Practitioner",
                    "PractitionerRole" => "PractitionerRole",
                    "Location" => "Location",
                    _ => return None,
                })
            });
            let shown = || {
                text(&actor["display"])
                    .or_else(|| resolved.as_ref().and_then(|(_, r)| display_name(r)))
            };
            match actor_kind {
                Some("Patient") if patient.is_none() => patient = Some((reference, resolved)),
                Some("Practitioner" | "PractitionerRole") if provider.is_none() => {
                    provider = shown()
                }
                Some("Location") if location.is_none() => location = shown(),
                _ => {}
            }
        }
        set(Column::Provider, provider);
        set(Column::Location, location);

        let mut elsewhere = None;
        let malformed = match patient {
            None => Some((
                "participant",
                "no participant of the Appointment is a Patient".to_string(),
            )),
            Some((reference, None)) => Some((
                "participant",
                format!(
                    "the patient {} is not in the Bundle: export the appointments with their patients (_include=Appointment:patient)",
                    reference.as_deref().unwrap_or("(no reference)")
                ),
            )),
            Some((reference, Some((at, ref patient)))) => {
                elsewhere = at.map(|at| {
                    let named = reference.as_deref().unwrap_or("the patient");
                    Box::new(Elsewhere {
                        // The zone is the Appointment's when the Patient gives none.
                        columns: match timezone(patient) {
                            Some(_) => &PATIENT_COLUMNS,
                            None => &PATIENT_COLUMNS[..5],
                        },
                        at: format!("{named}, line {at}"),
                    })
                });
                set(
                    Column::PatientId,
                    text(&patient["id"])
                        .or_else(|| identifier(patient))
                        .or_else(|| {
                            reference
                                .as_deref()
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
                None
            }
        };
        RawRecord {
            line,
            fields,
            malformed,
            elsewhere,
        }
    }
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
mod tests {
    use super::*;

    fn field(record: &RawRecord, column: Column) -> Option<&str> {
        match record.get(column) {
            Some(Ok(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    const BUNDLE: &str = r##"{
  "resourceType": "Bundle",
  "type": "searchset",
  "entry": [
    {
      "fullUrl": "https://ehr.example/fhir/Appointment/a1",
      "resource": {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "start": "2027-03-02T10:30:00+01:00",
        "participant": [
          {"actor": {"reference": "Practitioner/d1", "display": "Dra. Font"}},
          {"actor": {"reference": "https://ehr.example/fhir/Patient/p1/_history/3"}},
          {"actor": {"reference": "Location/l1"}}
        ]
      }
    },
    {
      "fullUrl": "urn:uuid:0b1",
      "resource": {
        "resourceType": "Appointment",
        "identifier": [{"system": "urn:ehr", "value": "A-2"}],
        "status": "noshow",
        "start": "2027-03-03T09:00:00Z",
        "participant": [{"actor": {"reference": "urn:uuid:0p2"}}]
      }
    },
    {
      "resource": {
        "resourceType": "Appointment",
        "id": "a3",
        "status": "booked",
        "start": "2027-03-04T09:00:00Z",
        "contained": [
          {"resourceType": "Patient", "id": "p", "name": [{"text": "Pau"}],
           "telecom": [{"system": "phone", "value": "612 000 003"}]}
        ],
        "participant": [{"actor": {"reference": "#p"}}]
      }
    },
    {
      "resource": {
        "resourceType": "Appointment",
        "id": "a4",
        "status": "booked",
        "start": "2027-03-05T09:00:00Z",
        "participant": [{"actor": {"reference": "Patient/nowhere"}}]
      }
    },
    {
      "fullUrl": "https://ehr.example/fhir/Patient/p1",
      "resource": {
        "resourceType": "Patient",
        "id": "p1",
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "Atlantic/Canary"}],
        "name": [
          {"use": "official", "family": "Puig i Vidal", "given": ["Maria", "Anna"]},
          {"use": "usual", "family": "Puig", "given": ["Mariona"]},
          {"use": "old", "family": "Vidal", "given": ["Maria"]}
        ],
        "telecom": [
          {"system": "email", "value": "maria@example.org"},
          {"system": "phone", "use": "home", "rank": 1, "value": "932 000 001"},
          {"system": "phone", "use": "old", "value": "600 000 000"},
          {"system": "phone", "use": "mobile", "rank": 2, "value": "612 000 001"}
        ],
        "communication": [
          {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
          {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-ES"}]}, "preferred": true}
        ]
      }
    },
    {
      "fullUrl": "urn:uuid:0p2",
      "resource": {
        "resourceType": "Patient",
        "identifier": [{"value": "P-2"}],
        "name": [{"family": "Soler", "given": ["Jordi"]}],
        "telecom": [{"system": "phone", "value": "+34 612 000 002"}]
      }
    },
    {
      "resource": {"resourceType": "Location", "id": "l1", "name": "Consulta 3"}
    }
  ]
}"##;

    #[test]
    fn each_appointment_is_a_row_with_its_patient_found_wherever_the_bundle_keeps_it() {
        let records = read(BUNDLE).unwrap();
        assert_eq!(records.len(), 4);
        let [a1, a2, a3, a4] = &records[..] else {
            unreachable!()
        };

        // Found through an absolute, versioned reference.
        assert_eq!(a1.line, 7);
        assert_eq!(a1.malformed, None);
        let a1_fields: Vec<_> = Column::ALL.iter().map(|c| field(a1, *c)).collect();
        assert_eq!(
            a1_fields,
            [
                Some("a1"),
                Some("p1"),
                Some("Mariona"),
                Some("Puig"),
                Some("612 000 001"),
                Some("2027-03-02T10:30:00+01:00"),
                Some("Atlantic/Canary"),
                Some("es-ES"),
                Some("Dra. Font"),
                Some("Consulta 3"),
                Some("booked"),
            ]
        );

        // Found by its fullUrl; ids from identifiers; a no-show is not reminded.
        assert_eq!(field(a2, Column::AppointmentId), Some("A-2"));
        assert_eq!(field(a2, Column::PatientId), Some("P-2"));
        assert_eq!(field(a2, Column::FirstName), Some("Jordi"));
        assert_eq!(field(a2, Column::Status), Some("cancelled"));

        // Contained in the appointment; a name given only as text.
        assert_eq!(field(a3, Column::PatientId), Some("p"));
        assert_eq!(field(a3, Column::FirstName), Some("Pau"));
        assert_eq!(field(a3, Column::Phone), Some("612 000 003"));

        // Not in the Bundle: the row says how to export it.
        let (field_name, problem) = a4.malformed.as_ref().unwrap();
        assert_eq!(*field_name, "participant");
        assert!(problem.contains("Patient/nowhere"), "{problem}");
        assert!(
            problem.contains("_include=Appointment:patient"),
            "{problem}"
        );
    }

    #[test]
    fn every_status_but_booked_is_not_reminded() {
        assert_eq!(status("booked"), "booked");
        for other in [
            "proposed",
            "pending",
            "waitlist",
            "cancelled",
            "noshow",
            "arrived",
            "checked-in",
            "fulfilled",
            "entered-in-error",
        ] {
            assert_eq!(status(other), "cancelled", "{other}");
        }
        // Anything else is left for the row's own check to name.
        assert_eq!(status("maybe"), "maybe");
    }

    #[test]
    fn what_is_not_a_bundle_of_appointments_is_refused_whole() {
        let patient = read(r#"{"resourceType": "Patient", "id": "p1"}"#).unwrap_err();
        assert_eq!(patient.field, "resourceType");
        assert!(
            patient.error.contains("a FHIR Patient resource"),
            "{patient}"
        );

        let untyped = read(r#"{"appointment_id": "A1"}"#).unwrap_err();
        assert!(untyped.error.contains("no resourceType"), "{untyped}");

        let no_appointments = read(
            r#"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}"#,
        )
        .unwrap_err();
        assert!(
            no_appointments.error.contains("no Appointment"),
            "{no_appointments}"
        );

        let broken = read("{\"resourceType\": \"Bundle\",\n \"entry\": [}").unwrap_err();
        assert_eq!(broken.line, 2);

        // A search that found nothing is an empty list, not an error.
        let empty = read(r#"{"resourceType": "Bundle", "type": "searchset", "total": 0}"#);
        assert_eq!(empty.unwrap().len(), 0);
    }

    #[test]
    fn an_appointment_without_a_patient_says_so() {
        let records = read(
            r#"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Appointment",
                "id": "a1", "participant": [{"actor": {"reference": "Practitioner/d1"}}]}}]}"#,
        )
        .unwrap();
        let (field, problem) = records[0].malformed.as_ref().unwrap();
        assert_eq!(*field, "participant");
        assert!(problem.contains("no participant"), "{problem}");
    }

    /// Any JSON, weighted towards the names and shapes this reader looks at.
    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        const WORDS: [&str; 18] = [
            "Appointment",
            "Patient",
            "Practitioner",
            "Location",
            "booked",
            "cancelled",
            "phone",
            "mobile",
            "old",
            "usual",
            "#p",
            "p",
            "Patient/p",
            "urn:uuid:1",
            "612000001",
            TIMEZONE,
            "Europe/Madrid",
            "2027-03-02T10:30:00+01:00",
        ];
        const KEYS: [&str; 28] = [
            "resourceType",
            "id",
            "reference",
            "actor",
            "participant",
            "contained",
            "name",
            "given",
            "family",
            "text",
            "telecom",
            "system",
            "use",
            "rank",
            "value",
            "communication",
            "language",
            "coding",
            "code",
            "extension",
            "url",
            "valueCode",
            "start",
            "status",
            "display",
            "identifier",
            "preferred",
            "prefix",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z#/:0-9 ._-]{0,12}".prop_map(Value::from),
            proptest::sample::select(&WORDS[..]).prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(
                    proptest::sample::select(&KEYS[..]).prop_map(String::from),
                    inner,
                    0..7,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a Bundle holds, reading it does not panic, and each Appointment in it is
        /// one row: good, or saying what is wrong.
        #[test]
        fn any_bundle_reads_to_one_row_per_appointment(
            resources in proptest::collection::vec(
                (json(), proptest::sample::select(vec!["Appointment", "Patient", "Location", ""])),
                0..8,
            ),
            urls in proptest::collection::vec(proptest::option::of("(urn:uuid:1|Patient/p|#p|x)"), 8),
        ) {
            let entry: Vec<Value> = resources
                .into_iter()
                .zip(urls)
                .map(|((mut resource, kind), url)| {
                    if let (Value::Object(fields), false) = (&mut resource, kind.is_empty()) {
                        fields.insert("resourceType".into(), kind.into());
                    }
                    let mut entry = serde_json::json!({ "resource": resource });
                    if let Some(url) = url {
                        entry["fullUrl"] = url.into();
                    }
                    entry
                })
                .collect();
            let appointments = entry
                .iter()
                .filter(|e| e["resource"]["resourceType"] == "Appointment")
                .count();
            let text = serde_json::to_string_pretty(
                &serde_json::json!({ "resourceType": "Bundle", "entry": entry }),
            )
            .unwrap();
            match read(&text) {
                Ok(records) => {
                    proptest::prop_assert_eq!(records.len(), appointments);
                    // And each row is typed, or rejected for what it lacks, without a panic.
                    let campaign = crate::campaign::parse_campaign(
                        "reminders",
                        "reminders.toml".as_ref(),
                        include_str!("../../campaigns/reminders.toml"),
                    )
                    .campaign
                    .unwrap();
                    for record in &records {
                        if let Err(rejections) = super::super::parse_row(record, &campaign) {
                            proptest::prop_assert!(!rejections.is_empty());
                        }
                    }
                }
                Err(e) => proptest::prop_assert!(
                    appointments == 0 && e.error.contains("no Appointment"),
                    "{e}"
                ),
            }
        }
    }

    #[test]
    fn references_are_read_relative_whatever_their_form() {
        assert_eq!(relative("Patient/7").as_deref(), Some("Patient/7"));
        assert_eq!(
            relative("https://ehr.example/fhir/Patient/7/_history/2").as_deref(),
            Some("Patient/7")
        );
        assert_eq!(relative("urn:uuid:0b1"), None);
        assert_eq!(relative("7"), None);
    }
}

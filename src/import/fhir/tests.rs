//! The FHIR reader on Bundles as EHRs write them, and on any JSON at all.

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
    let patient = read("{\n  \"resourceType\": \"Patient\",\n  \"id\": \"p1\"\n}").unwrap_err();
    assert_eq!(patient.field, "resourceType");
    assert!(
        patient.error.contains("a FHIR Patient resource"),
        "{patient}"
    );
    // On one line, it is an export's Patient.ndjson without the appointments.
    let patients = read(r#"{"resourceType": "Patient", "id": "p1"}"#).unwrap_err();
    assert_eq!(patients.field, "resourceType");
    assert!(
        patients.error.contains("no line is an Appointment"),
        "{patients}"
    );

    let untyped = read(r#"{"appointment_id": "A1"}"#).unwrap_err();
    assert!(untyped.error.contains("no resourceType"), "{untyped}");

    let no_appointments =
        read(r#"{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}"#)
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

/// A Bulk Data export's two files put together: patients first or last, blank lines between.
const NDJSON: &str = concat!(
    r#"{"resourceType":"Appointment","id":"a1","status":"booked","start":"2027-03-02T10:30:00+01:00","participant":[{"actor":{"reference":"Patient/p1"}},{"actor":{"reference":"Location/l1","display":"Box 3"}}]}"#,
    "\n",
    r#"{"resourceType":"Appointment","id":"a2","status":"cancelled","start":"2027-03-03T09:00:00Z","participant":[{"actor":{"reference":"Patient/p2"}}]}"#,
    "\r\n\n",
    r#"{"resourceType":"Patient","id":"p1","name":[{"use":"usual","given":["Núria"],"family":"Vidal"}],"telecom":[{"system":"phone","use":"mobile","value":"612 34 56 78"}],"communication":[{"language":{"coding":[{"code":"ca"}]},"preferred":true}]}"#,
    "\n",
    r#"{"resourceType":"Appointment","id":"a3","status":"booked","start":"2027-03-04T09:00:00Z","participant":[{"actor":{"reference":"Patient/p9"}}]}"#,
    "\n",
    r#"{"resourceType":"Patient","id":"p2","name":[{"given":["Joan"]}],"telecom":[{"system":"phone","value":"+34 612 000 002"}]}"#,
    "\n",
);

#[test]
fn an_export_in_ndjson_is_read_line_by_line_whatever_the_order() {
    let records = read(NDJSON).unwrap();
    assert_eq!(records.len(), 3, "one row per Appointment");
    let [a1, a2, a3] = [&records[0], &records[1], &records[2]];
    assert_eq!(a1.line, 1);
    assert_eq!(field(a1, Column::AppointmentId), Some("a1"));
    assert_eq!(field(a1, Column::PatientId), Some("p1"));
    assert_eq!(field(a1, Column::FirstName), Some("Núria"));
    assert_eq!(field(a1, Column::LastName), Some("Vidal"));
    assert_eq!(field(a1, Column::Phone), Some("612 34 56 78"));
    assert_eq!(field(a1, Column::Language), Some("ca"));
    assert_eq!(field(a1, Column::Location), Some("Box 3"));
    let elsewhere = a1.elsewhere.as_ref().unwrap();
    assert_eq!(elsewhere.at, "Patient/p1, line 4");
    // A patient found on a later line, after a blank one and a CRLF.
    assert_eq!(a2.line, 2);
    assert_eq!(field(a2, Column::Phone), Some("+34 612 000 002"));
    assert_eq!(a2.elsewhere.as_ref().unwrap().at, "Patient/p2, line 6");
    // A patient on no line: the row is rejected, saying how to export it.
    assert_eq!(a3.line, 5);
    let (field_name, problem) = a3.malformed.as_ref().unwrap();
    assert_eq!(*field_name, "participant");
    assert!(problem.contains("Patient/p9 is on no line"), "{problem}");

    // A line that is not JSON refuses the file at that line.
    let broken = read(&NDJSON.replacen(
        "\n{\"resourceType\":\"Patient\"",
        "\n{\"resourceType\":\"Patient\",,",
        1,
    ))
    .unwrap_err();
    assert_eq!(broken.line, 4, "{broken}");
    assert!(
        broken.error.contains("one JSON object per line"),
        "{broken}"
    );
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
                    include_str!("../../../campaigns/reminders.toml"),
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

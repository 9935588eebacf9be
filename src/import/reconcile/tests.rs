use super::*;
use crate::phone::Phone;

fn reminders() -> Campaign {
    let src = include_str!("../../../campaigns/reminders.toml");
    match crate::campaign::parse_campaign("reminders", "reminders.toml".as_ref(), src).campaign {
        Ok(c) => c,
        Err(e) => panic!("reminders.toml: {e:?}"),
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn row(id: &str, starts_at: DateTime<Utc>) -> Row {
    Row {
        line: 2,
        appointment_id: id.into(),
        patient_id: "P1".into(),
        first_name: "Anna".into(),
        last_name: None,
        phone: Phone::parse("+34600000001", None).unwrap(),
        starts_at,
        timezone: None,
        language: None,
        provider: None,
        location: None,
        status: Status::Booked,
    }
}

#[test]
fn a_stored_patient_differs_from_a_row_by_any_field_the_row_gives() {
    let row = row("A1", at("2027-03-10T10:00:00+01:00"));
    let stored = PatientRecord {
        id: "01P".into(),
        external_id: "P1".into(),
        first_name: "Anna".into(),
        last_name: None,
        phone: "+34600000001".into(),
        timezone: None,
        language: None,
    };
    assert!(stored.says_as(&row));
    let changes: [fn(&mut PatientRecord); 5] = [
        |p| p.first_name = "Ana".into(),
        |p| p.last_name = Some("Puig".into()),
        |p| p.phone = "+34600000002".into(),
        |p| p.timezone = Some("Europe/Madrid".into()),
        |p| p.language = Some("ca".into()),
    ];
    for change in changes {
        let mut other = stored.clone();
        change(&mut other);
        assert!(!other.says_as(&row), "{other:?}");
    }
}

/// The appointment `A1` stored with an open outreach `O1` and a call planned at `planned`,
/// beside another outreach's planned call to the same number an hour later.
fn stored(starts_at: DateTime<Utc>, planned: DateTime<Utc>) -> Existing {
    let mut existing = Existing::default();
    existing.patients.insert(
        "P1".into(),
        PatientRecord {
            id: "p1".into(),
            external_id: "P1".into(),
            first_name: "Anna".into(),
            last_name: None,
            phone: "+34600000001".into(),
            timezone: None,
            language: None,
        },
    );
    existing.appointments.insert(
        "A1".into(),
        AppointmentRecord {
            id: "a1".into(),
            external_id: "A1".into(),
            patient_id: "p1".into(),
            phone: "+34600000001".into(),
            starts_at,
            timezone: "Europe/Madrid".into(),
            provider: None,
            location: None,
            status: "booked".into(),
            open_outreach: Some("O1".into()),
        },
    );
    let contact = |outreach: &str, at| Contact {
        attempt_id: format!("{outreach}-1"),
        outreach_id: outreach.into(),
        at,
        planned: true,
    };
    existing.contacts.insert(
        "+34600000001".into(),
        vec![
            contact("O1", planned),
            contact("O2", planned + chrono::TimeDelta::days(7)),
        ],
    );
    existing
}

#[test]
fn a_moved_appointments_old_call_no_longer_counts_against_the_daily_cap() {
    let campaign = reminders();
    // Monday 2027-03-01; the appointment was on Wednesday at 10:00, its call planned for
    // Monday at 10:00 Madrid; it moves to Wednesday 12:00, so its first call is due on
    // Monday again, which the old call (one a day) would otherwise forbid.
    let now = at("2027-03-01T08:00:00Z");
    let existing = stored(at("2027-03-03T09:00:00Z"), at("2027-03-01T09:00:00Z"));
    let rows = vec![row("A1", at("2027-03-03T11:00:00Z"))];
    let changes = reconcile(&campaign, rows, Vec::new(), existing, now, |_, _| {});
    assert_eq!(changes.withdrawn_outreach, vec!["O1".to_string()]);
    assert_eq!(changes.summary.updated, 1);
    let attempt = &changes.new_attempts[0];
    assert_eq!(
        attempt.due_at.date_naive(),
        at("2027-03-01T11:00:00Z").date_naive(),
        "{}",
        attempt.reason
    );
}

#[test]
fn a_number_on_the_ledger_gets_its_outreach_ended_and_no_attempt() {
    let campaign = reminders();
    let now = at("2027-03-01T08:00:00Z");
    let mut existing = Existing::default();
    existing.opted_out.insert("+34600000001".into());
    let rows = vec![row("A1", at("2027-03-03T11:00:00Z"))];
    let changes = reconcile(&campaign, rows, Vec::new(), existing, now, |_, _| {});
    assert_eq!(changes.summary.created, 1);
    assert_eq!(changes.summary.on_ledger, vec![2]);
    assert_eq!(changes.new_appointments.len(), 1);
    assert_eq!(changes.new_outreach.len(), 1);
    assert_eq!(
        changes.opted_out_outreach,
        vec![changes.new_outreach[0].id.clone()]
    );
    assert!(changes.new_attempts.is_empty());
}

#[test]
fn a_number_on_the_ledger_is_ended_even_when_too_late_for_a_call() {
    let campaign = reminders();
    // The visit is an hour away: no call could go out, and none would anyway.
    let now = at("2027-03-03T10:00:00Z");
    let mut existing = Existing::default();
    existing.opted_out.insert("+34600000001".into());
    let rows = vec![row("A1", at("2027-03-03T11:00:00Z"))];
    let changes = reconcile(&campaign, rows, Vec::new(), existing, now, |_, _| {});
    assert_eq!(
        (changes.summary.created, changes.summary.skipped_too_late),
        (1, 0)
    );
    assert_eq!(changes.opted_out_outreach.len(), 1);
}

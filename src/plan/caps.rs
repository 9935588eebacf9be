//! The per-patient caps: calls (and messages) a day and a week, across every campaign.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::calendar::{local_date, next_day_start};

const WEEK: TimeDelta = TimeDelta::days(7);

/// The patient's contacts, sorted, and the caps to keep.
pub struct Caps {
    zone: Tz,
    per_day: u32,
    per_week: u32,
    contacts: Vec<DateTime<Utc>>,
}

/// Why a moment is over a cap, and the earliest moment worth trying next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Day { retry_at: DateTime<Utc> },
    Week { retry_at: DateTime<Utc> },
}

impl Caps {
    pub fn new(zone: Tz, per_day: u32, per_week: u32, mut contacts: Vec<DateTime<Utc>>) -> Caps {
        contacts.sort();
        Caps {
            zone,
            per_day,
            per_week,
            contacts,
        }
    }

    /// Whether one more contact at `t` keeps both caps: at most `per_day` on its local date, and
    /// at most `per_week` in any 7 × 24 h that contains it.
    pub fn check(&self, t: DateTime<Utc>) -> Result<(), Blocked> {
        let day = local_date(self.zone, t);
        let same_day = self
            .contacts
            .iter()
            .filter(|c| local_date(self.zone, **c) == day)
            .count();
        if same_day >= self.per_day as usize {
            return Err(Blocked::Day {
                retry_at: next_day_start(self.zone, t),
            });
        }
        let cap = self.per_week as usize;
        let pos = self.contacts.partition_point(|c| *c <= t);
        let mut all = self.contacts.clone();
        all.insert(pos, t);
        // Any 7-day span holding cap + 1 contacts, one of them `t`, is a breach.
        for first in pos.saturating_sub(cap)..=pos {
            let Some(last) = all.get(first + cap) else {
                break;
            };
            if *last - all[first] < WEEK {
                let retry_at = if first < pos {
                    all[first] + WEEK
                } else {
                    t + TimeDelta::hours(1)
                };
                return Err(Blocked::Week { retry_at });
            }
        }
        Ok(())
    }

    pub fn per_day(&self) -> u32 {
        self.per_day
    }

    pub fn per_week(&self) -> u32 {
        self.per_week
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Madrid;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_daily_cap_counts_the_local_date() {
        // 23:30Z on the 1st is 00:30 on the 2nd in Madrid.
        let caps = Caps::new(Madrid, 1, 3, vec![utc("2027-02-01T23:30:00Z")]);
        assert!(matches!(
            caps.check(utc("2027-02-02T09:00:00Z")),
            Err(Blocked::Day { .. })
        ));
        assert!(caps.check(utc("2027-02-01T09:00:00Z")).is_ok());
    }

    #[test]
    fn the_weekly_cap_is_a_rolling_seven_days_and_says_when_it_frees() {
        let contacts = vec![
            utc("2027-02-01T09:00:00Z"),
            utc("2027-02-02T09:00:00Z"),
            utc("2027-02-03T09:00:00Z"),
        ];
        let caps = Caps::new(Madrid, 1, 3, contacts);
        assert_eq!(
            caps.check(utc("2027-02-05T09:00:00Z")),
            Err(Blocked::Week {
                retry_at: utc("2027-02-08T09:00:00Z")
            })
        );
        assert!(caps.check(utc("2027-02-08T09:00:00Z")).is_ok());
    }

    #[test]
    fn future_contacts_of_other_campaigns_count_too() {
        let contacts = vec![
            utc("2027-02-03T09:00:00Z"),
            utc("2027-02-04T09:00:00Z"),
            utc("2027-02-05T09:00:00Z"),
        ];
        let caps = Caps::new(Madrid, 1, 3, contacts);
        assert!(matches!(
            caps.check(utc("2027-02-01T09:00:00Z")),
            Err(Blocked::Week { .. })
        ));
    }
}

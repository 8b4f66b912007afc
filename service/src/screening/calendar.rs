//! US business days (weekdays that are not observed federal holidays), for counting FCRA waiting
//! periods such as the days between a pre-adverse action notice and the final adverse action.
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday,
};

/// The observed dates of the US federal holidays (5 U.S.C. 6103) that fall in `year`, sorted.
///
/// Fixed-date holidays (New Year's Day, Juneteenth, Independence Day, Veterans Day, Christmas)
/// that fall on a Saturday are observed on the Friday before, and on a Sunday on the Monday after
/// (the OPM rule). Every date returned lies in `year`: when New Year's Day of `year + 1` falls on a
/// Saturday its observed date, December 31 of `year`, is included here, and New Year's Day of
/// `year` is then absent from `year`'s list (it belongs to `year - 1`'s).
///
/// Juneteenth is included from 2021, the year it became a federal holiday; older changes to the
/// holiday calendar (the Monday holidays of 1971, Martin Luther King Jr. Day from 1986) are not
/// modelled, so the answer is only meaningful from 1986 on.
pub fn us_federal_holidays(year: i32) -> Vec<NaiveDate> {
    let mut days = Vec::with_capacity(12);
    let mut fixed = |y: i32, month: u32, day: u32| {
        if let Some(d) = NaiveDate::from_ymd_opt(y, month, day).map(observed)
            && d.year() == year
        {
            days.push(d);
        }
    };
    // New Year's Day of this year (unless observed on Dec 31 of the year before) and of the next
    // (only when observed on Dec 31 of this year).
    fixed(year, 1, 1);
    fixed(year + 1, 1, 1);
    if year >= 2021 {
        fixed(year, 6, 19); // Juneteenth National Independence Day
    }
    fixed(year, 7, 4); // Independence Day
    fixed(year, 11, 11); // Veterans Day
    fixed(year, 12, 25); // Christmas Day
    let floating = [
        nth_weekday(year, 1, Weekday::Mon, 3), // Birthday of Martin Luther King, Jr.
        nth_weekday(year, 2, Weekday::Mon, 3), // Washington's Birthday
        last_weekday(year, 5, Weekday::Mon),   // Memorial Day
        nth_weekday(year, 9, Weekday::Mon, 1), // Labor Day
        nth_weekday(year, 10, Weekday::Mon, 2), // Columbus Day
        nth_weekday(year, 11, Weekday::Thu, 4), // Thanksgiving Day
    ];
    days.extend(floating.into_iter().flatten());
    days.sort_unstable();
    days
}

/// Whether `d` is a US business day: Monday to Friday and not an observed federal holiday.
pub fn is_business_day(d: NaiveDate) -> bool {
    Holidays::default().is_business_day(d)
}

/// The clock dates are printed and recheck dates kept on: UTC−11 all year (Samoa time, no
/// daylight saving), the westernmost zone of any place under US law. A date there has begun
/// only once it has begun everywhere in the US, so "not before <date>" on its date is true in
/// every US time zone.
pub fn zone() -> FixedOffset {
    FixedOffset::west_opt(11 * 3600).expect("a valid offset")
}

/// The UTC offsets, in hours, of every US time zone people live in, standard and daylight time:
/// American Samoa, Hawaii, Alaska, Pacific, Mountain, Central, Eastern, Atlantic (Puerto Rico,
/// the Virgin Islands), and Chamorro (Guam, the Northern Marianas).
const US_OFFSETS: [i32; 9] = [-11, -10, -9, -8, -7, -6, -5, -4, 10];

/// `n` business days of business time after `from`, wherever in the US the candidate is: the
/// latest of the periods counted on each US clock ([`US_OFFSETS`]). On one clock, a period ends
/// at the same time of day on the `n`-th business day after `from`'s date; a `from` outside
/// business days (a weekend, a holiday) counts from the start of the next business day, so its
/// period is not shortened by the hours left of the first day. Counted on one clock alone, a
/// period would end early elsewhere: on UTC−11, a notice sent at 03:00 on a Friday in New York
/// (still Thursday there) would count from the Thursday and end a business day early in New York;
/// on UTC, a Friday evening notice in California would count from the Saturday. `n = 0` returns
/// `from` unchanged. Saturates at chrono's last representable date.
pub fn add_business_days(from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    if n == 0 {
        return from;
    }
    let mut holidays = Holidays::default();
    US_OFFSETS
        .iter()
        .filter_map(|h| FixedOffset::east_opt(h * 3600))
        .map(|clock| add_on_clock(&mut holidays, clock, from, n))
        .max()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// [`add_business_days`] on one clock.
fn add_on_clock(
    holidays: &mut Holidays,
    clock: FixedOffset,
    from: DateTime<Utc>,
    n: u32,
) -> DateTime<Utc> {
    let local = from.with_timezone(&clock).naive_local();
    let mut day = local.date();
    let mut time = local.time();
    if !holidays.is_business_day(day) {
        while !holidays.is_business_day(day) {
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        time = NaiveTime::MIN;
    }
    let mut left = n;
    while left > 0 {
        let Some(next) = day.succ_opt() else { break };
        day = next;
        if holidays.is_business_day(day) {
            left -= 1;
        }
    }
    NaiveDateTime::new(day, time)
        .and_local_timezone(clock)
        .single()
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
}

/// The business days a period ending at `due` still has at `now`, rounded up: the fewest `n`
/// with `add_business_days(now, n) >= due` (0 once `due` has passed). A period paused now and
/// resumed later with `n` business days is never shorter than what it had left.
pub fn business_days_left(now: DateTime<Utc>, due: DateTime<Utc>) -> u32 {
    // `add_business_days(now, n)` grows with `n`: double `n` until it reaches `due`, then halve
    // the interval. The bound only stops a far-future `due` from looping.
    const MOST: u32 = 4096;
    if add_business_days(now, 0) >= due {
        return 0;
    }
    let mut hi = 1;
    while hi < MOST && add_business_days(now, hi) < due {
        hi *= 2;
    }
    // `add(lo) < due <= add(hi)`, or `hi` is the bound.
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if add_business_days(now, mid) < due {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The date `t` falls on by [`zone`]'s clock: the date to print for a deadline counted by it.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&zone()).date_naive()
}

/// The holiday list of the year last asked about, so walking day by day computes each year once.
#[derive(Default)]
struct Holidays {
    year: Option<i32>,
    days: Vec<NaiveDate>,
}

impl Holidays {
    fn is_business_day(&mut self, d: NaiveDate) -> bool {
        if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            return false;
        }
        if self.year != Some(d.year()) {
            self.days = us_federal_holidays(d.year());
            self.year = Some(d.year());
        }
        self.days.binary_search(&d).is_err()
    }
}

/// The OPM observance of a fixed-date holiday: Saturday to the Friday before, Sunday to the
/// Monday after.
fn observed(d: NaiveDate) -> NaiveDate {
    let shifted = match d.weekday() {
        Weekday::Sat => d.checked_sub_signed(Duration::days(1)),
        Weekday::Sun => d.checked_add_signed(Duration::days(1)),
        _ => Some(d),
    };
    shifted.unwrap_or(d)
}

/// The `n`-th (1-based) `weekday` of `month` in `year`.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month` in `year`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// A time on the business-day clock ([`zone`]).
    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        zone()
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid time")
            .with_timezone(&Utc)
    }

    fn dates(list: &[(i32, u32, u32)]) -> Vec<NaiveDate> {
        list.iter().map(|&(y, m, d)| date(y, m, d)).collect()
    }

    #[test]
    fn holidays_2026() {
        assert_eq!(
            us_federal_holidays(2026),
            dates(&[
                (2026, 1, 1),
                (2026, 1, 19),
                (2026, 2, 16),
                (2026, 5, 25),
                (2026, 6, 19),
                (2026, 7, 3), // July 4 is a Saturday
                (2026, 9, 7),
                (2026, 10, 12),
                (2026, 11, 11),
                (2026, 11, 26),
                (2026, 12, 25),
            ])
        );
    }

    #[test]
    fn holidays_2027() {
        assert_eq!(
            us_federal_holidays(2027),
            dates(&[
                (2027, 1, 1),
                (2027, 1, 18),
                (2027, 2, 15),
                (2027, 5, 31),
                (2027, 6, 18), // June 19 is a Saturday
                (2027, 7, 5),  // July 4 is a Sunday
                (2027, 9, 6),
                (2027, 10, 11),
                (2027, 11, 11),
                (2027, 11, 25),
                (2027, 12, 24), // December 25 is a Saturday
                (2027, 12, 31), // New Year's Day 2028 is a Saturday
            ])
        );
        // ...so 2028 has no New Year's Day of its own.
        assert!(
            !us_federal_holidays(2028)
                .iter()
                .any(|d| d.month() == 1 && d.day() < 3)
        );
    }

    #[test]
    fn holidays_2021() {
        assert_eq!(
            us_federal_holidays(2021),
            dates(&[
                (2021, 1, 1),
                (2021, 1, 18),
                (2021, 2, 15),
                (2021, 5, 31),
                (2021, 6, 18),
                (2021, 7, 5),
                (2021, 9, 6),
                (2021, 10, 11),
                (2021, 11, 11),
                (2021, 11, 25),
                (2021, 12, 24),
                (2021, 12, 31), // New Year's Day 2022 is a Saturday
            ])
        );
        assert_eq!(us_federal_holidays(2022).first(), Some(&date(2022, 1, 17)));
        // No Juneteenth before 2021.
        assert_eq!(us_federal_holidays(2019).len(), 10);
    }

    #[test]
    fn holidays_are_weekdays_in_their_year() {
        for year in 1990..=2100 {
            let list = us_federal_holidays(year);
            assert!((9..=12).contains(&list.len()), "{year}: {list:?}");
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{year}: {list:?}");
            for d in &list {
                assert_eq!(d.year(), year);
                assert!(!matches!(d.weekday(), Weekday::Sat | Weekday::Sun), "{d}");
                assert!(!is_business_day(*d), "{d}");
            }
        }
    }

    #[test]
    fn business_day_basics() {
        assert!(is_business_day(date(2026, 11, 18))); // Wednesday
        assert!(!is_business_day(date(2026, 11, 21))); // Saturday
        assert!(!is_business_day(date(2026, 11, 22))); // Sunday
        assert!(!is_business_day(date(2026, 11, 26))); // Thanksgiving
        assert!(!is_business_day(date(2026, 7, 3))); // Independence Day observed
        assert!(is_business_day(date(2026, 11, 27))); // Friday after Thanksgiving
        assert!(!is_business_day(date(2021, 12, 31))); // New Year's Day 2022 observed
    }

    #[test]
    fn seven_business_days_over_thanksgiving() {
        // Wed 18 Nov 2026: Thu 19 (1), Fri 20 (2), Mon 23 (3), Tue 24 (4), Wed 25 (5),
        // Thu 26 Thanksgiving, Fri 27 (6), Mon 30 (7).
        // 01:30 in Samoa is 22:30 the same day in Guam: the same date on every US clock.
        let from = at(2026, 11, 18, 1, 30);
        let to = add_business_days(from, 7);
        assert_eq!(to, at(2026, 11, 30, 1, 30));
        assert_eq!(business_days_left(from, to), 7);
        assert_eq!(add_business_days(from, 5), at(2026, 11, 25, 1, 30));
        assert_eq!(add_business_days(from, 6), at(2026, 11, 27, 1, 30));
    }

    #[test]
    fn friday_plus_one_is_monday() {
        let friday = at(2026, 3, 6, 23, 59);
        assert_eq!(add_business_days(friday, 1), at(2026, 3, 9, 23, 59));
        assert_eq!(business_days_left(friday, friday), 0);
        // Part of a business day left counts as a whole one.
        assert_eq!(business_days_left(friday, at(2026, 3, 9, 0, 0)), 1);
        assert_eq!(business_days_left(friday, at(2026, 3, 10, 0, 0)), 2);
    }

    #[test]
    fn christmas_weeks() {
        // At 01:00 in Samoa, the same date on every US clock. 2026: Christmas on a Friday.
        let wed = at(2026, 12, 23, 1, 0);
        assert_eq!(add_business_days(wed, 1), at(2026, 12, 24, 1, 0));
        assert_eq!(add_business_days(wed, 2), at(2026, 12, 28, 1, 0));
        // 2027: Christmas observed Fri 24 Dec, New Year's Day 2028 observed Fri 31 Dec.
        let thu = at(2027, 12, 23, 1, 0);
        assert_eq!(add_business_days(thu, 1), at(2027, 12, 27, 1, 0));
        assert_eq!(add_business_days(thu, 4), at(2027, 12, 30, 1, 0));
        assert_eq!(add_business_days(thu, 5), at(2028, 1, 3, 1, 0));
        assert_eq!(business_days_left(thu, at(2028, 1, 3, 1, 0)), 5);
        // 2021 into 2022: Dec 24 and Dec 31 both off.
        assert_eq!(
            add_business_days(at(2021, 12, 23, 1, 0), 1),
            at(2021, 12, 27, 1, 0)
        );
        assert_eq!(
            add_business_days(at(2021, 12, 30, 1, 0), 1),
            at(2022, 1, 3, 1, 0)
        );
    }

    #[test]
    fn a_start_outside_business_days_counts_from_the_next_one() {
        let saturday = at(2026, 3, 7, 10, 0);
        assert_eq!(add_business_days(saturday, 0), saturday);
        // Monday is the first whole business day: one business day ends as Tuesday begins.
        assert_eq!(add_business_days(saturday, 1), at(2026, 3, 10, 0, 0));
        assert_eq!(add_business_days(saturday, 5), at(2026, 3, 16, 0, 0));
        let sunday = at(2026, 3, 8, 23, 0);
        assert_eq!(add_business_days(sunday, 1), at(2026, 3, 10, 0, 0));
        // Thanksgiving: Friday is the first business day.
        assert_eq!(
            add_business_days(at(2026, 11, 26, 10, 0), 1),
            at(2026, 11, 30, 0, 0)
        );
    }

    #[test]
    fn us_evenings_count_on_their_own_date() {
        // A notice at 17:00 in California on Friday 6 March 2026 is Saturday 01:00 UTC; it
        // still counts from the Friday: seven business days end on Tuesday 17 March, Samoa time
        // (Wednesday 01:00 UTC), not on Monday 16 March in California.
        let friday_evening_pst = Utc.with_ymd_and_hms(2026, 3, 7, 1, 0, 0).unwrap();
        let due = add_business_days(friday_evening_pst, 7);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 3, 18, 1, 0, 0).unwrap());
        assert_eq!(local_date(due), date(2026, 3, 17));
        // Thursday 30 December 2027, 17:00 in California (Friday 01:00 UTC, the observed New
        // Year's Day): counted from the Thursday, to Tuesday 11 January 2028.
        let thursday_evening_pst = Utc.with_ymd_and_hms(2027, 12, 31, 1, 0, 0).unwrap();
        assert_eq!(
            add_business_days(thursday_evening_pst, 7),
            Utc.with_ymd_and_hms(2028, 1, 12, 1, 0, 0).unwrap()
        );
    }

    /// Every US clock.
    fn clocks() -> impl Iterator<Item = FixedOffset> {
        US_OFFSETS
            .iter()
            .map(|h| FixedOffset::east_opt(h * 3600).expect("offset"))
    }

    #[test]
    fn us_mornings_and_guam_count_on_their_own_date() {
        // 03:00 on Friday 16 January 2026 in New York (08:00 UTC) is still Thursday in Samoa.
        // Five business days (Monday 19 is Martin Luther King Jr. Day) end on Monday 26 at
        // 03:00 in New York, not on Saturday 24 (Friday 23 on Samoa's clock).
        let friday_morning_est = Utc.with_ymd_and_hms(2026, 1, 16, 8, 0, 0).unwrap();
        assert_eq!(
            add_business_days(friday_morning_est, 5),
            Utc.with_ymd_and_hms(2026, 1, 26, 8, 0, 0).unwrap()
        );
        // 20:00 on the same Friday in Guam (10:00 UTC): Monday 26 at 20:00 in Guam.
        let friday_evening_guam = Utc.with_ymd_and_hms(2026, 1, 16, 10, 0, 0).unwrap();
        let due = add_business_days(friday_evening_guam, 5);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 1, 26, 10, 0, 0).unwrap());
        // The date printed ("not before") is Samoa's, true on every clock.
        assert_eq!(local_date(due), date(2026, 1, 25));
        assert_eq!(business_days_left(friday_evening_guam, due), 5);
    }

    #[test]
    fn sunday_holidays_move_to_monday() {
        for (sunday, monday) in [
            (date(2023, 1, 1), date(2023, 1, 2)),
            (date(2022, 6, 19), date(2022, 6, 20)),
            (date(2022, 12, 25), date(2022, 12, 26)),
            (date(2029, 11, 11), date(2029, 11, 12)),
        ] {
            assert_eq!(sunday.weekday(), Weekday::Sun);
            assert!(!is_business_day(monday), "{monday}");
            assert!(us_federal_holidays(monday.year()).contains(&monday));
        }
        // Veterans Day 2023 is a Saturday: observed on Friday 10 November.
        assert!(!is_business_day(date(2023, 11, 10)));
        // Friday 30 December 2022 + 1: Monday 2 January 2023 is New Year's Day observed.
        assert_eq!(
            add_business_days(at(2022, 12, 30, 1, 0), 1),
            at(2023, 1, 3, 1, 0)
        );
    }

    #[test]
    fn what_is_left_rounds_up() {
        // Notice Monday 2 March 2026 noon, due Wednesday 11 March noon; disputed 90 minutes in:
        // seven business days are still owed, not six.
        let notice = at(2026, 3, 2, 12, 0);
        let due = add_business_days(notice, 7);
        assert_eq!(due, at(2026, 3, 11, 12, 0));
        assert_eq!(business_days_left(at(2026, 3, 2, 13, 30), due), 7);
        assert_eq!(business_days_left(at(2026, 3, 10, 13, 30), due), 1);
        assert_eq!(business_days_left(due, due), 0);
        assert_eq!(business_days_left(due + Duration::hours(1), due), 0);
    }

    #[test]
    fn add_and_left_agree() {
        let mut start = at(2020, 11, 1, 0, 0);
        let end = at(2028, 1, 31, 0, 0);
        let mut hour = 0;
        while start < end {
            let t = start + Duration::hours(hour % 24) + Duration::minutes(hour * 7 % 60);
            let mut previous = t;
            // Periods as partners set them (a week or two), and a long one.
            for n in (0..=12).chain([20, 30]) {
                let later = add_business_days(t, n);
                assert_eq!(business_days_left(t, later), n, "{t} + {n} = {later}");
                if n > 0 {
                    assert!(later > previous, "{t} + {n} = {later}");
                    assert!(
                        clocks().any(|c| is_business_day(later.with_timezone(&c).date_naive())),
                        "{t} + {n} = {later}"
                    );
                    assert_eq!(
                        business_days_left(t, later - Duration::seconds(1)),
                        n,
                        "{t} + {n}"
                    );
                }
                if clocks().all(|c| is_business_day(t.with_timezone(&c).date_naive())) {
                    assert_eq!(later.time(), t.time(), "{t} + {n} = {later}");
                }
                previous = later;
            }
            hour += 5;
            // Every day through the year-end holidays, every third day otherwise.
            let dense = matches!(start.month(), 11 | 12 | 1);
            start += Duration::days(if dense { 1 } else { 3 });
        }
    }
}

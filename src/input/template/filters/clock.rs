//! A calendar time broken down into its parts, and Python's `strftime` of it: the
//! directives of the C library Python calls on Linux (glibc, in the C locale, as Ansible
//! runs), with the flags `-` (no padding), `_` (spaces), `0` (zeros) and `^` (upper case).
//! A directive lbctl does not know is an error naming it, where the C library would copy it
//! through unchanged.

use minijinja::{Error, ErrorKind};

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A date and time of day, as C's `struct tm` or a Python `datetime` holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Clock {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micro: u32,
    /// The offset from UTC in seconds and the zone's name, for a time read from the clock
    /// (`time.localtime`, `time.gmtime`); `None` for a `datetime` without a zone.
    pub zone: Option<(i64, String)>,
    /// C's `tm_isdst`: whether summer time is in force, -1 for not known (a `datetime`).
    pub dst: i32,
}

/// Days from 1970-01-01 to the date (negative before it), in the proleptic Gregorian
/// calendar.
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: year, month, day.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub(super) fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Clock {
    /// The time `seconds` after the epoch, in the local time zone (`time.localtime`) or in
    /// UTC (`time.gmtime`), as the C library breaks it down.
    pub(super) fn at(seconds: i64, utc: bool) -> Option<Clock> {
        let t = libc::time_t::try_from(seconds).ok()?;
        // SAFETY: localtime_r and gmtime_r write only the tm given (and read the time zone);
        // tm_zone then points at static text of the C library, read before any other call.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let broken = unsafe {
            if utc {
                libc::gmtime_r(&t, &mut tm)
            } else {
                libc::localtime_r(&t, &mut tm)
            }
        };
        if broken.is_null() {
            return None;
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        Some(Clock {
            year: i64::from(tm.tm_year) + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            micro: 0,
            zone: Some((tm.tm_gmtoff, zone)),
            dst: tm.tm_isdst,
        })
    }

    fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// 0 for Sunday.
    fn weekday(&self) -> u32 {
        (self.days() + 4).rem_euclid(7) as u32
    }

    /// 0 for Monday, as Python's `datetime.weekday()`.
    pub(super) fn monday_weekday(&self) -> u32 {
        (self.weekday() + 6) % 7
    }

    /// 0 for January 1st.
    fn day_of_year(&self) -> i64 {
        self.days() - days_from_civil(self.year, 1, 1)
    }

    /// ISO 8601's year and week.
    fn iso_week(&self) -> (i64, i64) {
        let thursday = self.days() - i64::from(self.monday_weekday()) + 3;
        let (year, _, _) = civil_from_days(thursday);
        (year, (thursday - days_from_civil(year, 1, 1)) / 7 + 1)
    }

    /// Seconds since the epoch with these parts read as local time (C's `mktime`, which
    /// `%s` and a naive `datetime`'s `timestamp()` use); `None` out of its range.
    pub(super) fn local_seconds(&self) -> Option<i64> {
        // SAFETY: mktime reads and normalises the tm given, and reads the time zone.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_year = i32::try_from(self.year - 1900).ok()?;
        tm.tm_mon = self.month as i32 - 1;
        tm.tm_mday = self.day as i32;
        tm.tm_hour = self.hour as i32;
        tm.tm_min = self.minute as i32;
        tm.tm_sec = self.second as i32;
        tm.tm_isdst = self.dst;
        Some(unsafe { libc::mktime(&mut tm) })
    }

    /// `strftime(format)` of this time; one without a zone (a `datetime`) also has `%f`, and
    /// empty `%z` and `%Z`, as `datetime.strftime` gives them. Refused where it could
    /// make more than `room` bytes.
    pub(super) fn strftime(&self, format: &str, filter: &str, room: u64) -> Result<String, Error> {
        let unsupported = |what: String| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("{filter}: {what} is not supported by lbctl (in format '{format}')"),
            )
        };
        // Counted before anything is made: no directive writes more than 64 bytes.
        let most = format.len() as u64 + 64 * format.matches('%').count() as u64;
        if most > room {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "{filter}: the format could make {most} bytes of text, more than this template may still make ({room} bytes)"
                ),
            ));
        }
        let mut out = String::new();
        let mut rest = format.chars();
        while let Some(c) = rest.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let mut directive = rest.next();
            let flag = match directive {
                Some(f @ ('-' | '_' | '0' | '^')) => {
                    directive = rest.next();
                    Some(f)
                }
                _ => None,
            };
            let Some(d) = directive else {
                return Err(unsupported("a `%` at the end of the format".into()));
            };
            let (number, width, pad): (i64, usize, char) = match d {
                'Y' => (self.year, 1, '0'),
                'C' => (self.year.div_euclid(100), 1, '0'),
                'y' => (self.year.rem_euclid(100), 2, '0'),
                'G' => (self.iso_week().0, 1, '0'),
                'g' => (self.iso_week().0.rem_euclid(100), 2, '0'),
                'm' => (self.month.into(), 2, '0'),
                'd' => (self.day.into(), 2, '0'),
                'e' => (self.day.into(), 2, ' '),
                'H' => (self.hour.into(), 2, '0'),
                'k' => (self.hour.into(), 2, ' '),
                'I' => (twelve(self.hour), 2, '0'),
                'l' => (twelve(self.hour), 2, ' '),
                'M' => (self.minute.into(), 2, '0'),
                'S' => (self.second.into(), 2, '0'),
                'j' => (self.day_of_year() + 1, 3, '0'),
                'u' => (i64::from(self.monday_weekday()) + 1, 1, '0'),
                'w' => (self.weekday().into(), 1, '0'),
                'U' => (
                    (self.day_of_year() + 7 - i64::from(self.weekday())) / 7,
                    2,
                    '0',
                ),
                'W' => (
                    (self.day_of_year() + 7 - i64::from(self.monday_weekday())) / 7,
                    2,
                    '0',
                ),
                'V' => (self.iso_week().1, 2, '0'),
                's' => match self.local_seconds() {
                    Some(s) => (s, 1, '0'),
                    None => return Err(unsupported("%s of a time this far off".into())),
                },
                _ => {
                    let text = match d {
                        '%' => "%".to_string(),
                        'n' => "\n".into(),
                        't' => "\t".into(),
                        'a' => DAYS[self.weekday() as usize][..3].into(),
                        'A' => DAYS[self.weekday() as usize].into(),
                        'b' | 'h' => MONTHS[self.month as usize - 1][..3].into(),
                        'B' => MONTHS[self.month as usize - 1].into(),
                        'p' => if self.hour < 12 { "AM" } else { "PM" }.into(),
                        'P' => if self.hour < 12 { "am" } else { "pm" }.into(),
                        'c' => self.strftime("%a %b %e %H:%M:%S %Y", filter, room)?,
                        'D' | 'x' => self.strftime("%m/%d/%y", filter, room)?,
                        'F' => self.strftime("%Y-%m-%d", filter, room)?,
                        'T' | 'X' => self.strftime("%H:%M:%S", filter, room)?,
                        'R' => self.strftime("%H:%M", filter, room)?,
                        'r' => self.strftime("%I:%M:%S %p", filter, room)?,
                        'z' => match &self.zone {
                            Some((offset, _)) => {
                                let (sign, abs) = if *offset < 0 {
                                    ('-', -offset)
                                } else {
                                    ('+', *offset)
                                };
                                format!("{sign}{:02}{:02}", abs / 3600, abs % 3600 / 60)
                            }
                            None => String::new(),
                        },
                        'Z' => self
                            .zone
                            .as_ref()
                            .map(|(_, n)| n.clone())
                            .unwrap_or_default(),
                        'f' if self.zone.is_none() => format!("{:06}", self.micro),
                        other => return Err(unsupported(format!("the directive %{other}"))),
                    };
                    if flag == Some('^') {
                        out.push_str(&text.to_uppercase());
                    } else {
                        out.push_str(&text);
                    }
                    continue;
                }
            };
            let digits = number.to_string();
            let padding = width.saturating_sub(digits.len());
            match flag {
                Some('-') => {}
                Some('_') => out.extend(std::iter::repeat_n(' ', padding)),
                Some('0') => out.extend(std::iter::repeat_n('0', padding)),
                _ => out.extend(std::iter::repeat_n(pad, padding)),
            }
            out.push_str(&digits);
        }
        Ok(out)
    }
}

/// An hour on a twelve-hour clock.
fn twelve(hour: u32) -> i64 {
    match hour % 12 {
        0 => 12,
        h => h.into(),
    }
}

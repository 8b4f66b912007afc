//! Validated input values in the style of "parse, don't validate": once constructed, the rest of
//! the code trusts them. Every parser names the field it failed on.
use chrono::{Datelike, NaiveDate, Utc};

use crate::{ServiceError, ServiceResult};

fn invalid<T>(field: &str, message: impl Into<String>) -> ServiceResult<T> {
    Err(ServiceError::invalid(field, message))
}

/// A trimmed, non-empty line of bounded length: a name, an address, an id. No line breaks
/// or other control characters, and none of the invisible characters that make two values
/// look alike or a text display reversed (zero-width space, bidirectional overrides).
pub fn text(field: &str, value: &str, max: usize) -> ServiceResult<String> {
    checked(field, value, max, false)
}

/// Like [`text`], with empty meaning "absent".
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> ServiceResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}

/// Like [`text`], for free text that may run over several lines (a reason, a description).
pub fn prose(field: &str, value: &str, max: usize) -> ServiceResult<String> {
    checked(field, value, max, true)
}

/// Like [`prose`], with empty meaning "absent".
pub fn opt_prose(field: &str, value: Option<&str>, max: usize) -> ServiceResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => prose(field, v, max).map(Some),
    }
}

fn checked(field: &str, value: &str, max: usize, lines: bool) -> ServiceResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return invalid(field, "must not be empty");
    }
    if v.chars().count() > max {
        return invalid(field, format!("must be at most {max} characters"));
    }
    if v.chars().any(|c| c.is_control() && !(lines && c == '\n')) {
        return invalid(
            field,
            if lines {
                "must not contain control characters"
            } else {
                "must be one line, without control characters"
            },
        );
    }
    // Zero-width space and no-break, word joiner, bidirectional embeddings, overrides and
    // isolates (joiners, which some scripts' words need, are kept).
    let invisible = |c: char| matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if v.chars().any(invisible) {
        return invalid(field, "must not contain invisible formatting characters");
    }
    Ok(v.to_string())
}

/// A lower-cased email address with one `@`, a local part and a dotted domain.
pub fn email(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim().to_lowercase();
    let Some((local, domain)) = v.split_once('@') else {
        return invalid(field, "must be an email address like name@example.com");
    };
    let ok_local = !local.is_empty()
        && local.len() <= 64
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let ok_domain = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if ok_local && ok_domain {
        Ok(v)
    } else {
        invalid(field, "must be an email address like name@example.com")
    }
}

/// A US phone number, normalised to E.164 (`+1XXXXXXXXXX`).
pub fn us_phone(field: &str, value: &str) -> ServiceResult<String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let national = match digits.len() {
        10 => digits.as_str(),
        11 if digits.starts_with('1') => &digits[1..],
        _ => return invalid(field, "must be a 10-digit US phone number"),
    };
    // NANP: area code and exchange start with 2-9.
    let b = national.as_bytes();
    if !allowed || b[0] < b'2' || b[3] < b'2' {
        return invalid(field, "must be a valid US phone number");
    }
    Ok(format!("+1{national}"))
}

/// A 5-digit US ZIP code.
pub fn zip(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim();
    if v.len() != 5 || !v.bytes().all(|b| b.is_ascii_digit()) {
        invalid(field, "must be a 5-digit ZIP code")
    } else if !crate::screening::zipstate::is_assigned(v) {
        invalid(
            field,
            format!(
                "{v} is not a ZIP code in use (no US state or territory has its first three digits)"
            ),
        )
    } else {
        Ok(v.to_string())
    }
}

const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

/// A two-letter US state or territory code, upper-cased.
pub fn us_state(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim().to_uppercase();
    if US_STATES.contains(&v.as_str()) {
        Ok(v)
    } else {
        invalid(field, "must be a two-letter US state code such as CA")
    }
}

/// A date of birth `YYYY-MM-DD` for a person aged 14 to 120.
pub fn date_of_birth(field: &str, value: &str) -> ServiceResult<NaiveDate> {
    let Ok(d) = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") else {
        return invalid(field, "must be a date in the form YYYY-MM-DD");
    };
    let today = Utc::now().date_naive();
    let mut age = today.year() - d.year();
    if (today.month(), today.day()) < (d.month(), d.day()) {
        age -= 1;
    }
    if d > today {
        return invalid(field, "must not be in the future");
    }
    if !(14..=120).contains(&age) {
        return invalid(
            field,
            "must be the date of birth of a person aged 14 to 120",
        );
    }
    Ok(d)
}

/// A US Social Security number: nine digits (dashes allowed), not a number the SSA never issues.
pub fn ssn(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim();
    if !v.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return invalid(field, "must be 9 digits, optionally as XXX-XX-XXXX");
    }
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 9 {
        return invalid(field, "must be 9 digits, optionally as XXX-XX-XXXX");
    }
    let (area, group, serial) = (&digits[0..3], &digits[3..5], &digits[5..9]);
    if area == "000" || area == "666" || area.starts_with('9') || group == "00" || serial == "0000"
    {
        return invalid(field, "is not a valid SSN");
    }
    Ok(digits)
}

/// A driver's licence number: 1 to 20 letters and digits (states use many formats), upper-cased.
pub fn drivers_license(field: &str, value: &str) -> ServiceResult<String> {
    let v: String = value
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect::<String>()
        .to_uppercase();
    if (1..=20).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(v)
    } else {
        invalid(field, "must be 1 to 20 letters and digits")
    }
}

/// An absolute `http`/`https` URL with a host.
pub fn http_url(field: &str, value: &str) -> ServiceResult<String> {
    let v = value.trim();
    match url::Url::parse(v) {
        Ok(u)
            if (u.scheme() == "https" || u.scheme() == "http")
                && u.host_str().is_some_and(|h| !h.is_empty()) =>
        {
            // Measured as stored: escaping and punycode can make a URL longer than it was typed.
            if v.len() > 2048 || u.as_str().len() > 2048 {
                return invalid(field, "must be at most 2048 characters");
            }
            // Credentials in a URL would be stored and shown in the clear wherever the URL is
            // (delivery logs, events); a receiver authenticates our requests by their signature.
            if !u.username().is_empty() || u.password().is_some() {
                return invalid(field, "must not hold a user name or password");
            }
            Ok(u.to_string())
        }
        _ => invalid(field, "must be an absolute http(s) URL"),
    }
}

/// The prefix of a signature image, as Turn's `consent_document` requires it.
pub const PNG_DATA_URL_PREFIX: &str = "data:image/png;base64,";

/// The largest signature image accepted, as a data URL (Turn recommends under 8 MB; a drawn
/// signature is a few kilobytes).
pub const PNG_DATA_URL_MAX: usize = 2_000_000;

/// A signature image: a `data:image/png;base64,` URL whose bytes are a whole PNG (the PNG
/// signature, an `IHDR` chunk first with a width and height between 1 and 10,000, and `IEND`
/// last). The pixels are not decoded. Returns the URL as given, trimmed.
pub fn png_data_url(field: &str, value: &str) -> ServiceResult<String> {
    use base64::Engine as _;
    const MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];
    let v = value.trim();
    if v.len() > PNG_DATA_URL_MAX {
        return invalid(field, "must be at most 2 MB");
    }
    let Some(data) = v.strip_prefix(PNG_DATA_URL_PREFIX) else {
        return invalid(
            field,
            format!("must be a PNG image as a data URL ({PNG_DATA_URL_PREFIX}…)"),
        );
    };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
        return invalid(field, "is not valid base64");
    };
    let dimension =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let whole = bytes.len() >= MAGIC.len() + 25 + IEND.len()
        && bytes.starts_with(&MAGIC)
        && bytes[8..16] == [0, 0, 0, 13, b'I', b'H', b'D', b'R']
        && bytes.ends_with(&IEND);
    if !whole {
        return invalid(field, "is not a whole PNG image");
    }
    if !(1..=10_000).contains(&dimension(16)) || !(1..=10_000).contains(&dimension(20)) {
        return invalid(field, "must be between 1 and 10,000 pixels wide and high");
    }
    Ok(v.to_string())
}

pub fn mask_ssn(last4: &str) -> String {
    format!("***-**-{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_data_urls() {
        // Turn's own example of a consent_document: a 1×1 PNG.
        let turn = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVQYV2NgYAAAAAMAAWgmWQ0AAAAASUVORK5CYII=";
        assert_eq!(
            png_data_url("s", &format!(" {turn} ")).ok().as_deref(),
            Some(turn)
        );
        let truncated = &turn[..turn.len() - 16];
        for bad in [
            "Alec Holland",
            "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            "data:image/png;base64,not base64!",
            // PNG signature alone, then a cut-off image.
            "data:image/png;base64,iVBORw0KGgo=",
            truncated,
            // A GIF under a PNG prefix.
            "data:image/png;base64,R0lGODlhAQABAAAAACw=",
        ] {
            assert!(png_data_url("s", bad).is_err(), "{bad}");
        }
        let too_big = format!("{PNG_DATA_URL_PREFIX}{}", "A".repeat(PNG_DATA_URL_MAX));
        assert!(png_data_url("s", &too_big).is_err());
    }

    #[test]
    fn lines_and_prose() {
        assert_eq!(text("n", " Frodo ", 10).ok().as_deref(), Some("Frodo"));
        assert!(
            text("n", "Frodo\nBaggins", 100).is_err(),
            "a name is one line"
        );
        assert!(
            text("n", "ext-42\u{200B}", 100).is_err(),
            "zero-width space"
        );
        assert!(text("n", "abc\u{202E}cba", 100).is_err(), "bidi override");
        // Joiners stay: some scripts' names need them (a Persian name with ZWNJ).
        assert!(text("n", "\u{0645}\u{06CC}\u{200C}\u{0631}", 100).is_ok());
        assert_eq!(
            prose("r", "first line\nsecond", 100).ok().as_deref(),
            Some("first line\nsecond")
        );
        assert!(prose("r", "bell\u{7}", 100).is_err());
        assert!(prose("r", "abc\u{202E}cba", 100).is_err());
        assert_eq!(opt_prose("r", Some("  "), 10).ok(), Some(None));
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("e", " Alec@SadTech.ca ").ok().as_deref(),
            Some("alec@sadtech.ca")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@.com",
            "a b@c.com",
            "a@b.c0m",
            "a@-b.com",
            "a..b@c.com",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            us_phone("p", "(415) 555-0134").ok().as_deref(),
            Some("+14155550134")
        );
        assert_eq!(
            us_phone("p", "+1 415 555 0134").ok().as_deref(),
            Some("+14155550134")
        );
        for bad in [
            "555-0134",
            "0155550134",
            "4150550134",
            "+44 20 7946 0958",
            "415x5550134",
        ] {
            assert!(us_phone("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssns() {
        assert_eq!(ssn("s", "123-45-6789").ok().as_deref(), Some("123456789"));
        for bad in [
            "12345678",
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
            "12a456789",
        ] {
            assert!(ssn("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zips_states_dobs_urls() {
        assert!(zip("z", "94107").is_ok());
        assert!(zip("z", "9410").is_err() && zip("z", "94107-1234").is_err());
        assert!(zip("z", "00000").is_err() && zip("z", "96201").is_ok());
        assert_eq!(us_state("s", "ca").ok().as_deref(), Some("CA"));
        assert!(us_state("s", "XX").is_err());
        assert!(date_of_birth("d", "1990-02-28").is_ok());
        assert!(date_of_birth("d", "1990-02-30").is_err());
        assert!(date_of_birth("d", "1800-01-01").is_err());
        assert!(date_of_birth("d", "2099-01-01").is_err());
        assert!(http_url("u", "https://example.com/hook").is_ok());
        assert!(http_url("u", "ftp://example.com").is_err());
        assert!(http_url("u", "not a url").is_err());
        assert!(http_url("u", "https://user:pass@example.com/hook").is_err());
        assert!(http_url("u", "https://token@example.com/hook").is_err());
        // 2,000 typed characters that escape to 6,000 stored are too long.
        let typed = format!("https://example.com/{}", "é".repeat(990));
        assert!(typed.len() <= 2048);
        assert!(http_url("u", &typed).is_err());
        assert!(http_url("u", &format!("https://example.com/{}", "a".repeat(2000))).is_ok());
    }
}

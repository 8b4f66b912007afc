//! The state of a US ZIP code from its first three digits (USPS prefix ranges; the whole code
//! where territories share a prefix), so a hosted form given only a zip code shows the right
//! state disclosures.

/// (first prefix, last prefix, state), inclusive, in order.
const RANGES: &[(u16, u16, &str)] = &[
    (5, 5, "NY"),
    (6, 7, "PR"),
    (8, 8, "VI"),
    (9, 9, "PR"),
    (10, 27, "MA"),
    (28, 29, "RI"),
    (30, 38, "NH"),
    (39, 49, "ME"),
    (50, 54, "VT"),
    // Andover, Massachusetts (IRS).
    (55, 55, "MA"),
    (56, 59, "VT"),
    (60, 69, "CT"),
    (70, 89, "NJ"),
    (90, 99, "AE"),
    (100, 149, "NY"),
    (150, 196, "PA"),
    (197, 199, "DE"),
    (200, 200, "DC"),
    // Dulles, Virginia (Herndon, Reston, Leesburg, Sterling).
    (201, 201, "VA"),
    (202, 205, "DC"),
    (206, 219, "MD"),
    (220, 246, "VA"),
    (247, 268, "WV"),
    (270, 289, "NC"),
    (290, 299, "SC"),
    (300, 319, "GA"),
    (320, 339, "FL"),
    // Military mail, the Americas.
    (340, 340, "AA"),
    (341, 349, "FL"),
    (350, 369, "AL"),
    (370, 385, "TN"),
    (386, 397, "MS"),
    (398, 399, "GA"),
    (400, 427, "KY"),
    (430, 459, "OH"),
    (460, 479, "IN"),
    (480, 499, "MI"),
    (500, 528, "IA"),
    (530, 549, "WI"),
    (550, 567, "MN"),
    (569, 569, "DC"),
    (570, 577, "SD"),
    (580, 588, "ND"),
    (590, 599, "MT"),
    (600, 629, "IL"),
    (630, 658, "MO"),
    (660, 679, "KS"),
    (680, 693, "NE"),
    (700, 715, "LA"),
    (716, 729, "AR"),
    (730, 732, "OK"),
    (733, 733, "TX"),
    (734, 749, "OK"),
    (750, 799, "TX"),
    (800, 816, "CO"),
    (820, 831, "WY"),
    (832, 838, "ID"),
    (840, 847, "UT"),
    (850, 865, "AZ"),
    (870, 884, "NM"),
    (885, 885, "TX"),
    (889, 898, "NV"),
    (900, 961, "CA"),
    (962, 966, "AP"),
    // 96799 is American Samoa's (see `region_of`).
    (967, 968, "HI"),
    // Guam, the Northern Mariana Islands, and the freely associated states (Palau, Micronesia,
    // the Marshall Islands) by their full codes (see `region_of`).
    (969, 969, "969"),
    (970, 979, "OR"),
    (980, 994, "WA"),
    (995, 999, "AK"),
];

/// Where a candidate lives, for the law that follows them (a state's summary of rights, fresh
/// consent to a recheck): the state they gave, else the one their ZIP code is in. The one rule
/// every such decision reads.
pub fn home_state<'a>(state: Option<&'a str>, zip: Option<&str>) -> Option<&'a str> {
    state
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| zip.and_then(state_for_zip))
}

/// The two-letter state or territory of a 5-digit ZIP code, if it has one.
pub fn state_for_zip(zip: &str) -> Option<&'static str> {
    region_of(zip)
        // Military mail (AA/AE/AP) and the freely associated states (FM/MH/PW) have no state
        // disclosures of their own, nor a US state code a candidate's address takes.
        .filter(|s| !matches!(*s, "AA" | "AE" | "AP" | "FM" | "MH" | "PW" | "969"))
}

/// Whether a ZIP code's first three digits are assigned at all (to a state, a territory or
/// military mail): `00000` or `00312` is no one's address.
pub fn is_assigned(zip: &str) -> bool {
    region_of(zip).is_some()
}

fn region_of(zip: &str) -> Option<&'static str> {
    let prefix: u16 = zip.get(0..3)?.parse().ok()?;
    let region = RANGES
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&prefix))
        .map(|(_, _, s)| *s)?;
    // Prefixes shared by several territories: told apart by the whole code.
    let code: u32 = zip.get(0..5)?.parse().ok()?;
    Some(match (region, code) {
        ("HI", 96799) => "AS",
        ("969", 96910..=96932) => "GU",
        ("969", 96939..=96940) => "PW",
        ("969", 96941..=96944) => "FM",
        ("969", 96950..=96952) => "MP",
        ("969", 96960 | 96970) => "MH",
        // Another island code: assigned, with no state we know.
        (region, _) => region,
    })
}

#[cfg(test)]
mod tests {
    use super::{is_assigned, state_for_zip};

    #[test]
    fn known_zip_codes() {
        for (zip, state) in [
            ("95476", Some("CA")),
            ("10001", Some("NY")),
            ("94107", Some("CA")),
            ("60601", Some("IL")),
            ("98101", Some("WA")),
            ("02108", Some("MA")),
            ("73301", Some("TX")),
            ("20500", Some("DC")),
            ("20171", Some("VA")),
            ("20001", Some("DC")),
            ("05501", Some("MA")),
            ("05401", Some("VT")),
            ("99501", Some("AK")),
            ("09001", None),
            ("00000", None),
            ("00601", Some("PR")),
            ("00802", Some("VI")),
            ("00901", Some("PR")),
            ("96799", Some("AS")),
            ("96701", Some("HI")),
            ("96910", Some("GU")),
            ("96950", Some("MP")),
            ("96940", None),
            ("96960", None),
            ("96999", None),
            ("34002", None),
            ("33101", Some("FL")),
            ("34102", Some("FL")),
        ] {
            assert_eq!(state_for_zip(zip), state, "{zip}");
        }
    }

    #[test]
    fn unassigned_prefixes_are_no_ones_address() {
        for zip in [
            "00000", "00312", "00401", "26901", "42801", "69401", "81701", "88601",
        ] {
            assert!(!is_assigned(zip), "{zip}");
        }
        // Military mail and the freely associated states are assigned, though they have no
        // state.
        for zip in [
            "09001", "96201", "34002", "96940", "96941", "96970", "00501", "94107", "99950",
        ] {
            assert!(is_assigned(zip), "{zip}");
        }
    }
}

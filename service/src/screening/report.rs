//! The background-check report of seed 003 ("b) Background Check Results") as typed structs.
//! The serialized shape is a contract with partners: every key of the seed is present, spelled
//! as the seed spells it (including its quirks: `offense_description_1` on criminal records but
//! `offense_description1` on sex-offender records, `constituancy`, `a_k_as`), and a missing value
//! is `null` rather than an absent key. Fields the seed leaves `null` everywhere and whose type
//! it does not reveal are `serde_json::Value`, so whatever a provider sends round-trips.
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Criminal-record dates (`offense_date`, `disposition_date`, ...) are `MM-DD-YYYY` in the seed.
pub const RECORD_DATE_FORMAT: &str = "%m-%d-%Y";
/// Every other date of the report (MVR, identity, addresses) is ISO `YYYY-MM-DD`.
pub const ISO_DATE_FORMAT: &str = "%Y-%m-%d";

/// Identity statuses (`ssn_status`, `name_status`, `dob_status`, `public_name_status`).
pub const MATCHED: &str = "matched";
pub const NOT_MATCHED: &str = "not_matched";
/// An SSN status some providers give for an SSN that belongs to someone else; the sandbox
/// gives `not_matched`, as the seed's other identity statuses do, and both are read alike.
pub const MISMATCH: &str = "mismatch";
/// The seed's `ssn_status` when no SSN was traced.
pub const NONE: &str = "none";
/// The seed's `public_record_date_of_birth` when public records hold no date of birth.
pub const NO_RECORD_DATE_OF_BIRTH: &str = "1000-01-01";
/// A criminal record's `*_match` fields.
pub const EXACT_MATCH: &str = "ExactMatch";
/// The `county` of criminal results not tied to the candidate's county (national databases).
pub const OTHER_COUNTIES: &str = "Other Counties";
/// A county search's `status` once its results are in.
pub const READY: &str = "ready";

/// A county as reports name it ("Alameda County"): "Alameda", "Alameda County" and "alameda
/// county" are one.
pub fn county_name(county: &str) -> String {
    let c = county.trim();
    let base = c
        .len()
        .checked_sub(" county".len())
        .filter(|&i| {
            c.get(i..)
                .is_some_and(|end| end.eq_ignore_ascii_case(" county"))
        })
        .map_or(c, |i| c[..i].trim_end());
    format!("{base} County")
}

pub fn record_date(d: NaiveDate) -> String {
    d.format(RECORD_DATE_FORMAT).to_string()
}

pub fn parse_record_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), RECORD_DATE_FORMAT).ok()
}

pub fn iso_date(d: NaiveDate) -> String {
    d.format(ISO_DATE_FORMAT).to_string()
}

/// The part of the results webhook that the screening provider produces. The webhook layer adds
/// the candidate and check fields (`name`, `email`, `turn_id`, `dashboard_url`, ...).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub checks: Checks,
    pub current_address: Option<CurrentAddress>,
    pub license_number: Option<String>,
    pub license_state: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> Value {
        // Only string-keyed structs and plain values below, so serialization cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The seed's `checks` object. A search the package did not run is `null`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Checks {
    pub location: Option<Value>,
    pub addresses: Option<Vec<Address>>,
    pub aliases: Option<Value>,
    /// One entry per searched county; `null` when not run, never `[]`.
    pub criminal: Option<Vec<CountyCriminal>>,
    pub mvr: Option<Mvr>,
    pub sex_offender: Option<Vec<SexOffenderRecord>>,
    pub watchlist: Option<Vec<WatchlistRecord>>,
    /// Turn's SSN details (`number`, `status`, `is_deceased`, ...); the seed shows it `null`.
    pub ssn: Option<Value>,
    pub candidate_provided_ssn: Option<String>,
    pub partner_provided_name: Option<String>,
    pub dob_status: Option<String>,
    pub public_name_status: Option<String>,
    pub name_status: Option<String>,
    /// `YYYY-MM-DD`; the seed uses `1000-01-01` when public records hold no date of birth.
    pub public_record_date_of_birth: Option<String>,
    pub candidate_provided_name: Option<String>,
    pub partner_provided_ssn: Option<String>,
    pub public_provided_name: Option<String>,
    pub ssn_status: Option<String>,
    pub candidate_provided_date_of_birth: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Address {
    pub address1: Option<String>,
    pub county: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub city: Option<String>,
    pub zip4: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct CurrentAddress {
    pub address1: Option<String>,
    pub last_seen: Option<String>,
    pub first_seen: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
}

/// One county's criminal search.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct CountyCriminal {
    pub county: String,
    pub value: Vec<CriminalRecord>,
    pub status: String,
    pub clear_eta: Option<String>,
    pub hit_eta: Option<String>,
}

/// A criminal record. Dates are `MM-DD-YYYY` strings ([`record_date`]); `*_match` fields hold
/// values like [`EXACT_MATCH`]; `crime_type` is `Felony`, `Misdemeanor` or `Infraction`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct CriminalRecord {
    pub ssn: Option<String>,
    pub first_name_match: Option<String>,
    pub suspect_middle_name: Option<String>,
    pub gender: Option<String>,
    pub disposition_date: Option<String>,
    pub height: Option<String>,
    pub date_of_birth_match: Option<String>,
    pub charges_filed_date: Option<String>,
    pub case_number: Option<String>,
    pub county: Option<String>,
    pub other_addresses: Option<Value>,
    pub hair: Option<String>,
    pub weight: Option<String>,
    pub last_name_match: Option<String>,
    pub eyes: Option<String>,
    pub id: String,
    pub address_match: Option<String>,
    pub crime_type: Option<String>,
    pub suspect_state: Option<String>,
    pub drivers_license_number: Option<String>,
    pub middle_name_match: Option<String>,
    pub birth_address: Option<String>,
    pub offense_description_1: Option<String>,
    pub offense_date: Option<String>,
    pub other_dates_of_birth: Option<Value>,
    pub sentence: Option<String>,
    pub suspect_county: Option<String>,
    pub suspect_first_name: Option<String>,
    pub arrest_date: Option<String>,
    pub suspect_last_name: Option<String>,
    pub disposition: Option<String>,
    pub violation_date: Option<String>,
    pub conviction_date: Option<String>,
    pub a_k_as: Option<Value>,
}

/// The motor vehicle record. Its dates are `YYYY-MM-DD`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct Mvr {
    pub accidents: Vec<MvrAccident>,
    pub actions: Vec<MvrAction>,
    pub driver: Option<MvrDriver>,
    pub id: i64,
    pub additional_messages: Vec<Value>,
    pub licenses: Vec<MvrLicense>,
    /// `clear` or `consider`.
    pub status: String,
    pub violations: Vec<MvrViolation>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrAccident {
    /// Whether the driver was at fault; the seed does not show its type, so any JSON value.
    pub fault: Option<Value>,
    pub num_vehicles: Option<Value>,
    pub commercial: Option<Value>,
    pub locations: Vec<Value>,
    pub plate_number: Option<String>,
    pub mvr_record: Option<i64>,
    pub hazmat: Option<Value>,
    pub accident_death: Option<Value>,
    pub acd_code: Option<String>,
    pub state_points: Option<Value>,
    pub fr_report: Option<Value>,
    pub property_damage: Option<Value>,
    pub descriptions: Vec<MvrDescription>,
    pub property_damage_desc: Option<String>,
    pub id: i64,
    pub state: Option<String>,
    pub accident_details: Option<String>,
    pub incident_date: Option<String>,
    pub state_code: Option<String>,
    pub accident_injury: Option<Value>,
    pub accident_injury_num: Option<Value>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrDescription {
    pub state_description: Option<String>,
    pub long_description: Option<String>,
    pub mvr_action: Option<i64>,
    pub id: i64,
    pub mvr_sub_violations: Option<i64>,
    pub mvr_accident: Option<i64>,
    pub short_description: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrAction {
    pub mail_date: Option<String>,
    pub action_code: Option<String>,
    pub actual_end_date: Option<String>,
    pub additional_messages: Vec<Value>,
    pub commercial: Option<Value>,
    pub locations: Vec<Value>,
    pub mvr_record: Option<i64>,
    pub hazmat: Option<Value>,
    pub sub_violations: Vec<MvrSubViolation>,
    pub thru_date: Option<String>,
    pub ordered_date: Option<String>,
    pub acd_code: Option<String>,
    pub state_points: Option<Value>,
    pub start_date: Option<String>,
    pub action_type: Option<String>,
    pub descriptions: Vec<MvrDescription>,
    pub end_date: Option<String>,
    pub id: i64,
    pub action_term: Option<Value>,
    pub incident_date: Option<String>,
    pub state_code: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrDriver {
    pub middle_name: Option<String>,
    pub name_suffix: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub hair_color: Option<String>,
    pub first_name: Option<String>,
    pub gender: Option<String>,
    pub eye_color: Option<String>,
    pub addresses: Vec<Value>,
    pub id: i64,
    pub deceased: Option<Value>,
    pub weight: Option<Value>,
    pub height: Option<Value>,
    pub full_name: Option<String>,
    pub total_state_points: i64,
    pub age: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrLicense {
    pub type_description: Option<String>,
    pub classes: Vec<Value>,
    pub exp_date: Option<String>,
    pub issue_date: Option<String>,
    pub is_valid: bool,
    pub endorsements: Vec<Value>,
    pub has_valid_status: bool,
    pub surrender_date: Option<String>,
    pub has_no_surrender_date: bool,
    pub id: i64,
    pub state: Option<String>,
    #[serde(rename = "type")]
    pub license_type: Option<String>,
    pub additional_messages: Vec<Value>,
    pub license_number: Option<String>,
    pub mvr_record: Option<i64>,
    pub statuses: Vec<Value>,
    pub has_valid_exp_date: bool,
    pub original_issue: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrViolation {
    pub adjudications: Vec<Value>,
    pub viol_type: Option<String>,
    pub fine_amt: Option<String>,
    pub suspension: Option<Value>,
    pub plate_number: Option<String>,
    pub fine_date: Option<String>,
    pub mvr_record: Option<i64>,
    pub id: i64,
    pub accident: Option<Value>,
    pub fine_state: Option<String>,
    pub commercial: Option<Value>,
    pub suspension_date: Option<String>,
    pub locations: Vec<Value>,
    pub conviction_date: Option<String>,
    pub hazmat: Option<Value>,
    pub incident_date: Option<String>,
    pub sub_violations: Vec<MvrSubViolation>,
}

/// ACD codes starting with `A` are the major violations (DUI, reckless driving, ...).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct MvrSubViolation {
    pub key: Option<String>,
    pub acd_code: Option<String>,
    pub state_points: Option<String>,
    pub descriptions: Vec<MvrDescription>,
    pub code_source: Option<String>,
    pub posted_speed: Option<String>,
    pub mvr_action: Option<i64>,
    pub id: i64,
    pub actual_speed: Option<String>,
    pub acd_code_description: Option<String>,
    pub state_code: Option<String>,
    pub incident_num: Option<String>,
    pub mvr_violation: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct SexOffenderRecord {
    pub id: String,
    pub state: Option<String>,
    pub dispute_status: Option<String>,
    pub offense_description1: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct WatchlistRecord {
    pub fax: Option<String>,
    pub vessel_type: Option<String>,
    pub marks: Option<String>,
    pub wanted_by: Option<String>,
    pub citizenship: Option<String>,
    pub height: Option<String>,
    pub score: Option<Value>,
    pub date_of_birth: Option<String>,
    pub listing_date: Option<String>,
    pub documents: Option<Value>,
    pub source: Option<String>,
    pub call_sign: Option<String>,
    pub remarks: Option<String>,
    pub address_remarks: Option<String>,
    pub report_token: Option<String>,
    pub sex: Option<String>,
    pub tin: Option<String>,
    pub original_id: Option<String>,
    pub name: Option<WatchlistName>,
    pub hair: Option<String>,
    pub email_address: Option<String>,
    pub weight: Option<String>,
    pub vessel_flag: Option<String>,
    pub page_url: Option<String>,
    pub dispute_status: Option<String>,
    pub place_of_birth: Option<String>,
    pub languages: Option<Value>,
    pub political_party: Option<String>,
    pub legal_basis: Option<String>,
    /// Spelled as in the seed.
    pub constituancy: Option<String>,
    pub website: Option<String>,
    pub eyes: Option<String>,
    pub program: Option<String>,
    pub id: String,
    pub alias_name: Option<String>,
    pub country: Option<String>,
    pub tonnage: Option<Value>,
    pub user: Option<i64>,
    pub official_title: Option<String>,
    pub offense: Option<String>,
    pub grt: Option<Value>,
    pub vessel_owner: Option<String>,
    pub address: Option<WatchlistAddress>,
    pub hash: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    pub image_url: Option<String>,
    pub full_name: Option<String>,
    pub alias_type: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct WatchlistName {
    pub middle_name: Option<String>,
    pub name_suffix: Option<String>,
    pub hash: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub title: Option<String>,
    pub professional_suffix: Option<String>,
    pub id: Option<String>,
    pub date_first_seen: Option<String>,
    pub date_last_seen: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct WatchlistAddress {
    pub address_two: Option<String>,
    pub description: Option<String>,
    pub hash: Option<String>,
    pub date_last_seen: Option<String>,
    pub report_token: Option<String>,
    pub address_missing_unit_designation: Option<Value>,
    pub address_one: Option<String>,
    pub building_name: Option<String>,
    pub id: Option<String>,
    pub state: Option<String>,
    pub country_name: Option<String>,
    pub date_first_seen: Option<String>,
    pub distance: Option<Value>,
    pub zip4: Option<String>,
    pub subdivision_name: Option<String>,
    pub address_three: Option<String>,
    pub city: Option<String>,
    pub property_photo_address: Option<String>,
    pub zipcode: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn a_county_is_named_as_reports_name_it() {
        assert_eq!(county_name("Alameda"), "Alameda County");
        assert_eq!(county_name(" Alameda County "), "Alameda County");
        assert_eq!(county_name("Bernalillo county"), "Bernalillo County");
    }

    /// The seed's example `checks` object, verbatim.
    const SEED_CHECKS: &str = r#"{
    "location": null,
    "addresses": [
      {
        "address1": "2195 Harris Heights Suite 287",
        "county": "South Lauren County",
        "state": "MD",
        "zip": "38942",
        "city": "Lake Hollystad",
        "zip4": "8705"
      }
    ],
    "aliases": null,
    "criminal": [
      {
        "county": "Other Counties",
        "value": [
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "6721",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "JIRElFWSBZqK34cJ1h_seKFJVaUqRJ4=",
            "address_match": "ExactMatch",
            "crime_type": "Misdemeanor",
            "suspect_state": "MO",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Skill imagine method system.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          },
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "5957",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "DMAfJ7RwDYMkUIKsge1O5RYz1AZXt08=",
            "address_match": "ExactMatch",
            "crime_type": "Misdemeanor",
            "suspect_state": "SC",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Visit knowledge play provide.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          },
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "398",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "c2yysgwMRow8Ey-7CJiXPNnqQHYHK5s=",
            "address_match": "ExactMatch",
            "crime_type": "Misdemeanor",
            "suspect_state": "NC",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Save attack happy yard.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          },
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "2031",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "R4fISs42O2fzYbSVTpa7rQsWc2d6gw==",
            "address_match": "ExactMatch",
            "crime_type": "Misdemeanor",
            "suspect_state": "FL",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Radio morning outside.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          },
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "514",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "siRMTjCN9nCFD2mdYYIXIDnwJI9xAivk",
            "address_match": "ExactMatch",
            "crime_type": "Infraction",
            "suspect_state": "ID",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Social trip assume tax suddenly.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          },
          {
            "ssn": null,
            "first_name_match": "ExactMatch",
            "suspect_middle_name": null,
            "gender": null,
            "disposition_date": "09-11-2018",
            "height": null,
            "date_of_birth_match": "ExactMatch",
            "charges_filed_date": null,
            "case_number": "562",
            "county": null,
            "other_addresses": null,
            "hair": null,
            "weight": null,
            "last_name_match": "ExactMatch",
            "eyes": null,
            "id": "Kjm_ibdWA6EHna0_9fa9ajP67dQgH7Y=",
            "address_match": "ExactMatch",
            "crime_type": "Felony",
            "suspect_state": "RI",
            "drivers_license_number": null,
            "middle_name_match": null,
            "birth_address": null,
            "offense_description_1": "Bit they father realize could.",
            "offense_date": "03-22-2016",
            "other_dates_of_birth": null,
            "sentence": null,
            "suspect_county": null,
            "suspect_first_name": "Chelsea",
            "arrest_date": null,
            "suspect_last_name": null,
            "disposition": "Guilty",
            "violation_date": null,
            "conviction_date": null,
            "a_k_as": null
          }
        ],
        "status": "ready",
        "clear_eta": null,
        "hit_eta": null
      }
    ],
    "mvr": {
      "accidents": [
        {
          "fault": null,
          "num_vehicles": null,
          "commercial": null,
          "locations": [],
          "plate_number": "436NUB",
          "mvr_record": 301,
          "hazmat": null,
          "accident_death": null,
          "acd_code": null,
          "state_points": null,
          "fr_report": null,
          "property_damage": null,
          "descriptions": [],
          "property_damage_desc": null,
          "id": 199,
          "state": "KY",
          "accident_details": "Again.",
          "incident_date": null,
          "state_code": null,
          "accident_injury": null,
          "accident_injury_num": null
        }
      ],
      "actions": [
        {
          "mail_date": "2019-08-12",
          "action_code": "OS ACTION",
          "actual_end_date": null,
          "additional_messages": [],
          "commercial": null,
          "locations": [],
          "mvr_record": 301,
          "hazmat": null,
          "sub_violations": [],
          "thru_date": null,
          "ordered_date": "2019-08-23",
          "acd_code": null,
          "state_points": null,
          "start_date": "2019-10-20",
          "action_type": "OSWI",
          "descriptions": [
            {
              "state_description": "Mrs eat.",
              "long_description": null,
              "mvr_action": 236,
              "id": 518,
              "mvr_sub_violations": null,
              "mvr_accident": null,
              "short_description": "Good."
            }
          ],
          "end_date": "2019-06-05",
          "id": 236,
          "action_term": null,
          "incident_date": "2019-06-18",
          "state_code": null
        }
      ],
      "driver": {
        "middle_name": null,
        "name_suffix": null,
        "last_name": "Johnston",
        "dob": "2016-09-18",
        "hair_color": null,
        "first_name": "Troy",
        "gender": null,
        "eye_color": null,
        "addresses": [],
        "id": 301,
        "deceased": null,
        "weight": null,
        "height": null,
        "full_name": null,
        "total_state_points": 0,
        "age": 1
      },
      "id": 301,
      "additional_messages": [],
      "licenses": [
        {
          "type_description": "Life TV compare.",
          "classes": [],
          "exp_date": "2019-04-27",
          "issue_date": "2019-05-21",
          "is_valid": false,
          "endorsements": [],
          "has_valid_status": true,
          "surrender_date": null,
          "has_no_surrender_date": true,
          "id": 315,
          "state": "OR",
          "type": "Personal",
          "additional_messages": [],
          "license_number": "9787734443235",
          "mvr_record": 301,
          "statuses": [],
          "has_valid_exp_date": false,
          "original_issue": "War first less."
        }
      ],
      "status": "consider",
      "violations": [
        {
          "adjudications": [],
          "viol_type": "VIOL",
          "fine_amt": "$188083.00",
          "suspension": null,
          "plate_number": "DZG 403",
          "fine_date": null,
          "mvr_record": 301,
          "id": 234,
          "accident": null,
          "fine_state": null,
          "commercial": null,
          "suspension_date": null,
          "locations": [],
          "conviction_date": "2019-03-24",
          "hazmat": null,
          "incident_date": "2019-04-30",
          "sub_violations": [
            {
              "key": "7341",
              "acd_code": "A20",
              "state_points": "8",
              "descriptions": [
                {
                  "state_description": "West.",
                  "long_description": null,
                  "mvr_action": null,
                  "id": 519,
                  "mvr_sub_violations": 274,
                  "mvr_accident": null,
                  "short_description": "Yet."
                }
              ],
              "code_source": "VC",
              "posted_speed": "84",
              "mvr_action": null,
              "id": 274,
              "actual_speed": "54",
              "acd_code_description": "Driving or operating a motor vehicle under the influence of alcohol or drugs",
              "state_code": "YLE7105",
              "incident_num": "0",
              "mvr_violation": 234
            }
          ]
        }
      ]
    },
    "sex_offender": [
      {
        "id": "n0mysdowrhZfMLIKljpj-QAI_mZI2d9D",
        "state": "TN",
        "dispute_status": "not_disputed",
        "offense_description1": null
      }
    ],
    "watchlist": [
      {
        "fax": null,
        "vessel_type": null,
        "marks": null,
        "wanted_by": null,
        "citizenship": null,
        "height": null,
        "score": null,
        "date_of_birth": "1984-06-10",
        "listing_date": null,
        "documents": null,
        "source": "Most Wanted",
        "call_sign": null,
        "remarks": null,
        "address_remarks": null,
        "report_token": "C1931414576",
        "sex": null,
        "tin": null,
        "original_id": null,
        "name": {
          "middle_name": "Derek",
          "name_suffix": null,
          "hash": "5687613933372868694",
          "last_name": "Stewart",
          "first_name": "Chelsea",
          "title": null,
          "professional_suffix": null,
          "id": "GEwEf8YibYMsZyoWoQCApp1_wJaTBg==",
          "date_first_seen": null,
          "date_last_seen": null
        },
        "hair": null,
        "email_address": null,
        "weight": null,
        "vessel_flag": null,
        "page_url": null,
        "dispute_status": "not_disputed",
        "place_of_birth": null,
        "languages": null,
        "political_party": null,
        "legal_basis": null,
        "constituancy": null,
        "website": null,
        "eyes": null,
        "program": null,
        "id": "Iu98a4EsRfZc1B9t5zZJiQUKGlqMFjao",
        "alias_name": null,
        "country": null,
        "tonnage": null,
        "user": 3709,
        "official_title": null,
        "offense": null,
        "grt": null,
        "vessel_owner": null,
        "address": {
          "address_two": null,
          "description": null,
          "hash": "13341304995942013053",
          "date_last_seen": null,
          "report_token": null,
          "address_missing_unit_designation": null,
          "address_one": null,
          "building_name": null,
          "id": "KMHmEw6xFP_zjo2Sfmm5_GLrkshR4uS5",
          "state": null,
          "country_name": "Belize",
          "date_first_seen": null,
          "distance": null,
          "zip4": "99528",
          "subdivision_name": null,
          "address_three": null,
          "city": null,
          "property_photo_address": null,
          "zipcode": "90822"
        },
        "hash": "-17785875946854821044",
        "title": null,
        "phone": null,
        "type": null,
        "image_url": null,
        "full_name": null,
        "alias_type": null
      }
    ],
    "ssn": null,
    "candidate_provided_ssn": null,
    "partner_provided_name": "Todd King",
    "dob_status": "not_matched",
    "public_name_status": "not_matched",
    "name_status": "not_matched",
    "public_record_date_of_birth": "1000-01-01",
    "candidate_provided_name": "Chelsea Derek Stewart",
    "partner_provided_ssn": null,
    "public_provided_name": "No Name Found",
    "ssn_status": "none",
    "candidate_provided_date_of_birth": "1984-06-10"
  }"#;

    /// The seed's top-level fields that [`Report`] carries.
    const SEED_REPORT_REST: &str = r#"{
  "current_address": {
    "address1": "2195 Harris Heights Suite 287",
    "last_seen": "2019-12-19",
    "first_seen": "2019-11-19",
    "state": "MD",
    "zip": "38942",
    "address2": "2513 James Run",
    "city": "Lake Hollystad"
  },
  "license_number": null,
  "license_state": null
    }"#;

    /// Every object key with its path; array elements by index, so each level is compared.
    fn key_paths(v: &Value, at: &str, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let path = format!("{at}.{k}");
                    out.insert(path.clone());
                    key_paths(child, &path, out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    key_paths(child, &format!("{at}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    /// `(missing, unexpected)` key paths of `actual` against `expected`.
    fn key_diff(expected: &Value, actual: &Value) -> (Vec<String>, Vec<String>) {
        let (mut e, mut a) = (BTreeSet::new(), BTreeSet::new());
        key_paths(expected, "", &mut e);
        key_paths(actual, "", &mut a);
        (
            e.difference(&a).cloned().collect(),
            a.difference(&e).cloned().collect(),
        )
    }

    fn assert_same_keys(expected: &Value, actual: &Value) {
        let (missing, extra) = key_diff(expected, actual);
        assert!(
            missing.is_empty() && extra.is_empty(),
            "missing keys: {missing:?}\nunexpected keys: {extra:?}"
        );
    }

    #[test]
    fn seed_checks_round_trip_with_every_key() {
        let seed: Value = serde_json::from_str(SEED_CHECKS).expect("seed json");
        let checks: Checks = serde_json::from_value(seed.clone()).expect("typed checks");
        let back = serde_json::to_value(&checks).expect("serialize");
        assert_same_keys(&seed, &back);
        // Values survive too, not only keys: the contract is the seed's data as well as shape.
        assert_eq!(seed, back);
    }

    #[test]
    fn seed_report_round_trips_through_report() {
        let checks: Value = serde_json::from_str(SEED_CHECKS).expect("seed json");
        let mut seed: Value = serde_json::from_str(SEED_REPORT_REST).expect("seed json");
        seed["checks"] = checks;
        let report: Report = serde_json::from_value(seed.clone()).expect("typed report");
        let back = report.to_json();
        assert_same_keys(&seed, &back);
        assert_eq!(seed, back);
    }

    #[test]
    fn key_comparison_catches_a_renamed_field() {
        let seed: Value = serde_json::from_str(SEED_CHECKS).expect("seed json");
        let mut renamed = seed.clone();
        let rec = &mut renamed["criminal"][0]["value"][0];
        let v = rec["a_k_as"].take();
        if let Value::Object(m) = rec {
            m.remove("a_k_as");
            m.insert("akas".into(), v);
        }
        let (missing, extra) = key_diff(&seed, &renamed);
        assert_eq!(missing, [".criminal[0].value[0].a_k_as"]);
        assert_eq!(extra, [".criminal[0].value[0].akas"]);
    }

    #[test]
    fn searches_not_run_are_null_not_absent() {
        let v = Report::default().to_json();
        for key in ["criminal", "mvr", "sex_offender", "watchlist", "addresses"] {
            assert_eq!(v["checks"].get(key), Some(&Value::Null), "{key}");
        }
        assert_eq!(v.get("current_address"), Some(&Value::Null));
    }

    #[test]
    fn record_dates_use_the_seed_format() {
        let d = NaiveDate::from_ymd_opt(2016, 3, 22).expect("date");
        assert_eq!(record_date(d), "03-22-2016");
        assert_eq!(parse_record_date("03-22-2016"), Some(d));
        assert_eq!(parse_record_date("2016-03-22"), None);
        assert_eq!(iso_date(d), "2016-03-22");
    }
}

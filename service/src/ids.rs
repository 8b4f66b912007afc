//! Identifiers in Turn's formats: package `P` + 10 digits, candidate `turnId` `C` + 10 digits,
//! everything else a UUID.
use rand::Rng;

fn ten_digits(prefix: char) -> String {
    let n: u64 = rand::rng().random_range(0..10_000_000_000);
    format!("{prefix}{n:010}")
}

pub fn package_id() -> String {
    ten_digits('P')
}

pub fn turn_id() -> String {
    ten_digits('C')
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn is_turn_id(s: &str) -> bool {
    s.len() == 11 && s.starts_with('C') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        let p = super::package_id();
        assert_eq!(p.len(), 11);
        assert!(p.starts_with('P') && p[1..].bytes().all(|b| b.is_ascii_digit()));
        assert!(super::is_turn_id(&super::turn_id()));
        assert!(!super::is_turn_id("C12345"));
    }
}

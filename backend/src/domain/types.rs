//! Small closed vocabularies stored as strings: roles, severities, unit conditions and locations.

/// Declares a string-backed enum with `as_str`, `FromStr`, `Display` and an `ALL` list.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{}`; expected one of: {}",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// What a user may do (SPEC §1).
    Role {
        FieldEngineer => "field_engineer",
        DepotTech => "depot_tech",
        DcTech => "dc_tech",
        Admin => "admin",
        // A machine that reports signals (carrier scans, BMC events) and may do nothing else.
        Integration => "integration",
    }
}

string_enum! {
    /// How badly a failure hurts the customer; sev1 is the worst.
    Severity { Sev1 => "sev1", Sev2 => "sev2", Sev3 => "sev3", Sev4 => "sev4" }
}

string_enum! {
    /// The state of a physical unit.
    Condition { New => "new", Refurbished => "refurbished", Failed => "failed", Scrapped => "scrapped" }
}

string_enum! {
    /// Where a unit is: at a customer site, at a depot, on a truck, or with the hardware vendor.
    Location { Site => "site", Depot => "depot", InTransit => "in_transit", Vendor => "vendor" }
}

impl Condition {
    /// New and refurbished units may be shipped as replacements or consumed in repairs.
    pub fn is_serviceable(self) -> bool {
        matches!(self, Condition::New | Condition::Refurbished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_the_choices_on_error() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        let err = "sev9".parse::<Severity>().unwrap_err();
        assert!(err.contains("sev1, sev2, sev3, sev4"), "{err}");
    }
}

/// A unit's serial number: trimmed, upper-case, letters, digits and `-_./`, at most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

impl Serial {
    pub fn parse(raw: &str) -> Result<Serial, String> {
        let s = raw.trim().to_uppercase();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) {
            return Err(format!(
                "`{}` is not a serial number (letters, digits and -_./, up to 64)",
                raw.trim()
            ));
        }
        Ok(Serial(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
}

/// An RMA number, `RMA-YYYY-NNNNNN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmaNumber(String);

impl RmaNumber {
    pub fn new(year: i32, sequence: i64) -> RmaNumber {
        RmaNumber(format!("RMA-{year:04}-{sequence:06}"))
    }
    pub fn parse(raw: &str) -> Option<RmaNumber> {
        let s = raw.trim().to_uppercase();
        let mut parts = s.split('-');
        let ok = parts.next() == Some("RMA")
            && parts
                .next()
                .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
            && parts
                .next()
                .is_some_and(|n| n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
            && parts.next().is_none();
        ok.then_some(RmaNumber(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod newtype_tests {
    use super::*;

    #[test]
    fn serials_are_normalised_and_checked() {
        assert_eq!(Serial::parse(" cn-ord1-0101 ").unwrap().as_str(), "CN-ORD1-0101");
        assert!(Serial::parse("").is_err());
        assert!(Serial::parse("a b").is_err());
        assert!(Serial::parse("x'; drop table units;--").is_err());
    }

    #[test]
    fn rma_numbers() {
        assert_eq!(RmaNumber::new(2026, 42).as_str(), "RMA-2026-000042");
        assert!(RmaNumber::parse("rma-2026-000042").is_some());
        assert!(RmaNumber::parse("RMA-26-1").is_none());
        assert!(RmaNumber::parse("CN-ORD1-0101").is_none());
    }
}

//! Carriers: their names, the shape of their tracking numbers, and their public tracking pages.
use super::types::string_enum;

string_enum! {
    /// Who moves the box.
    Carrier { Ups => "UPS", Fedex => "FedEx", Dhl => "DHL", Other => "other" }
}

impl Carrier {
    /// Parses a carrier name in any letter case.
    pub fn parse(raw: &str) -> Result<Carrier, String> {
        let wanted = raw.trim().to_ascii_lowercase();
        Carrier::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().to_ascii_lowercase() == wanted)
            .ok_or_else(|| format!("unknown carrier `{}`; use one of: UPS, FedEx, DHL, other", raw.trim()))
    }

    /// What this carrier's tracking numbers look like, for error messages.
    pub fn expected_format(self) -> &'static str {
        match self {
            Carrier::Ups => "1Z followed by 16 letters or digits, e.g. 1Z999AA10123456784",
            Carrier::Fedex => "12, 15, 20 or 22 digits, e.g. 123456789012",
            Carrier::Dhl => "10 digits, e.g. 1234567890",
            Carrier::Other => "4 to 40 letters, digits or dashes",
        }
    }

    /// Checks a tracking number against the carrier's format; returns it normalised (no spaces,
    /// upper case).
    pub fn tracking_number(self, raw: &str) -> Result<String, String> {
        let n = normalise_tracking(raw);
        let digits = n.bytes().all(|b| b.is_ascii_digit());
        let ok = match self {
            Carrier::Ups => n.len() == 18 && n.starts_with("1Z") && n.bytes().all(|b| b.is_ascii_alphanumeric()),
            Carrier::Fedex => digits && [12, 15, 20, 22].contains(&n.len()),
            Carrier::Dhl => digits && n.len() == 10,
            Carrier::Other => (4..=40).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        };
        if ok {
            Ok(n)
        } else {
            Err(format!(
                "`{}` is not a {} tracking number: expected {}",
                raw.trim(),
                self.as_str(),
                self.expected_format()
            ))
        }
    }

    /// The carrier's public tracking page for a number.
    pub fn tracking_url(self, number: &str) -> Option<String> {
        match self {
            Carrier::Ups => Some(format!("https://www.ups.com/track?tracknum={number}")),
            Carrier::Fedex => Some(format!("https://www.fedex.com/fedextrack/?trknbr={number}")),
            Carrier::Dhl => Some(format!("https://www.dhl.com/en/express/tracking.html?AWB={number}")),
            Carrier::Other => None,
        }
    }
}

/// The tracking page for a stored carrier name and number, when the carrier has one.
/// A tracking number as shipments store it and carriers' feeds are matched on: no spaces, upper case.
pub fn normalise_tracking(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

pub fn tracking_url(carrier: &str, number: &str) -> Option<String> {
    Carrier::parse(carrier).ok().and_then(|c| c.tracking_url(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_per_carrier() {
        assert_eq!(Carrier::parse("fedex").unwrap(), Carrier::Fedex);
        assert!(Carrier::parse("pigeon").unwrap_err().contains("UPS, FedEx, DHL, other"));
        assert_eq!(
            Carrier::Ups.tracking_number("1z999aa1 0123456784").unwrap(),
            "1Z999AA10123456784"
        );
        assert!(
            Carrier::Ups
                .tracking_number("123456789012")
                .unwrap_err()
                .contains("1Z followed by 16")
        );
        assert!(Carrier::Fedex.tracking_number("123456789012").is_ok());
        assert!(Carrier::Fedex.tracking_number("12345").is_err());
        assert!(Carrier::Dhl.tracking_number("1234567890").is_ok());
        assert!(Carrier::Other.tracking_number("TRUCK-42").is_ok());
        assert!(tracking_url("UPS", "1Z999AA10123456784").unwrap().contains("ups.com"));
    }
}

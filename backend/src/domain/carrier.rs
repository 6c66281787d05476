//! Carriers and their public tracking pages.

/// The carrier's tracking page for a tracking number, when the carrier is known.
pub fn tracking_url(carrier: &str, number: &str) -> Option<String> {
    let number: String = number.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    match carrier.to_ascii_lowercase().as_str() {
        "ups" => Some(format!("https://www.ups.com/track?tracknum={number}")),
        "fedex" => Some(format!("https://www.fedex.com/fedextrack/?trknbr={number}")),
        "dhl" => Some(format!("https://www.dhl.com/en/express/tracking.html?AWB={number}")),
        _ => None,
    }
}

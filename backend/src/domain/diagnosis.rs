//! The field diagnosis checklist per part kind, and how alarm severities map to RMA severities.
use super::types::Severity;

/// One step of a checklist.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Step {
    pub key: &'static str,
    pub label: &'static str,
}

const fn step(key: &'static str, label: &'static str) -> Step {
    Step { key, label }
}

const NETWORK: [Step; 2] = [
    step("cabling", "Cabling reseated and inspected"),
    step("optics", "Optics and link lights checked"),
];

/// The steps for a failed unit of `kind`: the node's own checks, then the networking ones.
pub fn checklist(kind: &str) -> Vec<Step> {
    let own: &[Step] = match kind {
        "cnode" => &[
            step("bmc_sensors", "BMC sensors read"),
            step("event_log", "BMC event log (SEL) reviewed"),
            step("reseat", "Node reseated"),
            step("power_cycle", "Power cycled"),
            step("firmware", "Firmware versions checked"),
        ],
        "dnode" => &[
            step("fan_tach", "Fan tachometers read"),
            step("psu_status", "PSU status checked"),
            step("ssd_smart", "SSD SMART output collected"),
            step("enclosure_leds", "Enclosure LEDs inspected"),
        ],
        _ => &[step("reseat", "Part reseated"), step("visual", "Visual inspection")],
    };
    own.iter().copied().chain(NETWORK).collect()
}

/// A recorded result of a step.
pub const RESULTS: &[&str] = &["pass", "fail", "n/a"];

/// Maps an alarm's severity to an RMA severity: `sev1`..`sev4` pass through; monitoring levels
/// use the organization's map, then these defaults.
pub fn map_severity(raw: &str, org_map: Option<&serde_json::Value>) -> Result<Severity, String> {
    let level = raw.trim().to_lowercase();
    if let Ok(s) = level.parse::<Severity>() {
        return Ok(s);
    }
    let mapped = org_map
        .and_then(|m| m.get(&level))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| {
            match level.as_str() {
                "critical" | "p1" | "emergency" => Some("sev1"),
                "major" | "high" | "p2" | "error" => Some("sev2"),
                "minor" | "medium" | "p3" => Some("sev3"),
                "warning" | "low" | "info" | "p4" => Some("sev4"),
                _ => None,
            }
            .map(str::to_string)
        });
    mapped
        .ok_or_else(|| {
            format!(
                "unknown severity `{}`: use sev1..sev4 or critical, major, minor, warning",
                raw.trim()
            )
        })?
        .parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checklists_and_severity_mapping() {
        assert!(checklist("cnode").iter().any(|s| s.key == "bmc_sensors"));
        assert!(checklist("dnode").iter().any(|s| s.key == "fan_tach"));
        assert!(checklist("dnode").iter().any(|s| s.key == "optics"));
        assert_eq!(map_severity("critical", None).unwrap(), Severity::Sev1);
        assert_eq!(map_severity("SEV3", None).unwrap(), Severity::Sev3);
        let custom = serde_json::json!({"warning": "sev2"});
        assert_eq!(map_severity("warning", Some(&custom)).unwrap(), Severity::Sev2);
        assert!(map_severity("meh", None).is_err());
    }
}

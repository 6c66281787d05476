//! The guards of the lifecycle table: the replacement policy and the checks on serials, stock and depots.
//!
//! Pure functions over [`Facts`] that the service layer loads from the database first.
use super::carrier::Carrier;
use super::lifecycle::{Guard, Refusal, Transition};
use super::types::{Condition, Location, string_enum};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

string_enum! {
    /// How a failure is replaced: the whole node (or unit) or one field-replaceable unit inside it.
    ReplacementKind { WholeUnit => "whole_unit", Fru => "fru" }
}

/// Part kinds that are whole nodes; every other kind is a component.
pub const NODE_KINDS: &[&str] = &["cnode", "dnode"];

/// A catalog part as the guards see it.
#[derive(Clone, Debug)]
pub struct PartFacts {
    pub number: String,
    pub kind: String,
    pub field_replaceable: bool,
    /// Holds customer data: chain of custody and sanitization apply.
    pub holds_media: bool,
}

/// A unit as the guards see it.
#[derive(Clone, Debug)]
pub struct UnitFacts {
    pub serial: String,
    pub part: PartFacts,
    pub condition: Condition,
    pub location: Location,
    pub site: Option<String>,
    pub depot: Option<String>,
    pub parent_serial: Option<String>,
    pub slot: Option<String>,
}

impl UnitFacts {
    /// In stock at `depot`: serviceable, at that depot, loose (not inside another unit).
    pub fn in_stock_at(&self, depot: &str) -> bool {
        self.condition.is_serviceable()
            && self.location == Location::Depot
            && self.depot.as_deref() == Some(depot)
            && self.parent_serial.is_none()
    }
}

/// One test run reported with a transition.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    /// What the run measured (`{"dimm_errors": 0, "fan_rpm": 9800}`), kept with the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub measurements: Option<serde_json::Map<String, serde_json::Value>>,
}

/// NIST SP 800-88 sanitization methods.
pub const SANITIZATION_METHODS: [&str; 3] = ["clear", "purge", "destroy"];

/// Everything the guards need: the RMA, the acting user and the units the request names.
pub struct Facts<'a> {
    pub actor_depot: Option<&'a str>,
    pub site: &'a str,
    pub return_depot: &'a str,
    /// The unit the RMA was opened on.
    pub failed: &'a UnitFacts,
    /// The unit that goes back to the depot: the failed unit, or the pulled FRU after an FRU swap.
    pub returned: &'a UnitFacts,
    pub replacement_kind: Option<ReplacementKind>,
    /// The FRU part with `fru`; `None` with `whole_unit`.
    pub replacement_part: Option<&'a PartFacts>,
    pub replacement: Option<&'a UnitFacts>,
    /// Units named by serial in the request.
    pub named: &'a HashMap<String, UnitFacts>,
    pub replacement_serial: Option<&'a str>,
    pub spare_serial: Option<&'a str>,
    pub installed_serial: Option<&'a str>,
    pub pulled_serial: Option<&'a str>,
    pub scanned_serial: Option<&'a str>,
    pub parts_consumed: &'a [String],
    pub test_results: &'a [TestResult],
    pub carrier: Option<&'a str>,
    pub tracking_number: Option<&'a str>,
    pub packages: Option<i32>,
    pub weight_kg: Option<f64>,
    /// Checklist steps the organization requires before approval that are not yet recorded.
    pub missing_checks: &'a [String],
    /// The sealed-bag number recorded at the pull, and the one given now.
    pub recorded_bag: Option<&'a str>,
    pub bag_number: Option<&'a str>,
    pub sanitization_method: Option<&'a str>,
    pub sanitization_certificate: Option<&'a str>,
    /// The customer keeps the failed drive (recorded on the RMA, or asked for at approval).
    pub keep_your_drive: bool,
    /// Finding codes the request names that the catalog does not know.
    pub unknown_finding_codes: &'a [String],
}

impl Facts<'_> {
    /// The part number a replacement must have.
    fn replacement_part_number(&self) -> &str {
        match self.replacement_part {
            Some(part) => &part.number,
            None => &self.failed.part.number,
        }
    }

    fn unit(&self, serial: Option<&str>) -> Option<&UnitFacts> {
        serial.and_then(|s| self.named.get(s))
    }
}

fn invalid(msg: impl Into<String>) -> Refusal {
    Refusal::Invalid(msg.into())
}

/// Checks every guard of `row`.
///
/// Every guard is checked, so that a form's problems are told at once: the invalid values are
/// refused together in one message; any other refusal (forbidden, conflict) wins outright.
pub fn check_guards(row: &Transition, facts: &Facts) -> Result<(), Refusal> {
    let mut problems = vec![];
    for guard in row.guards {
        match check_guard(*guard, facts) {
            Ok(()) => {}
            Err(Refusal::Invalid(problem)) => problems.push(problem),
            Err(other) => return Err(other),
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(Refusal::Invalid(problems.join("; "))),
    }
}

fn check_guard(guard: Guard, f: &Facts) -> Result<(), Refusal> {
    match guard {
        Guard::ReplacementPolicy => replacement_policy(f.failed, f.replacement_kind, f.replacement_part),
        Guard::ReplacementFromActorDepotStock => {
            let unit = f
                .unit(f.replacement_serial)
                .ok_or_else(|| invalid("replacement_serial is required"))?;
            let depot = f.actor_depot.ok_or_else(|| {
                Refusal::Forbidden("only a depot technician assigned to a depot can ship from its stock".into())
            })?;
            serviceable_of_part(unit, f.replacement_part_number(), "replacement")?;
            if !unit.in_stock_at(depot) {
                return Err(invalid(format!(
                    "{} is not in stock at {depot}: {}",
                    unit.serial,
                    whereabouts(unit)
                )));
            }
            Ok(())
        }
        Guard::SpareOnSite => {
            let unit = f
                .unit(f.spare_serial)
                .ok_or_else(|| invalid("spare_serial is required"))?;
            serviceable_of_part(unit, f.replacement_part_number(), "spare")?;
            let loose_on_site = unit.location == Location::Site
                && unit.site.as_deref() == Some(f.site)
                && unit.slot.is_none()
                && unit.parent_serial.is_none();
            if !loose_on_site {
                return Err(invalid(format!(
                    "{} is not an uninstalled spare at {}: {}",
                    unit.serial,
                    f.site,
                    whereabouts(unit)
                )));
            }
            Ok(())
        }
        Guard::InstalledIsReplacement => {
            let expected = f.replacement.map(|u| u.serial.as_str()).unwrap_or_default();
            match f.installed_serial {
                Some(s) if s == expected => Ok(()),
                Some(s) => Err(invalid(format!(
                    "installed_serial {s} is not the replacement shipped for this RMA ({expected})"
                ))),
                None => Err(invalid("installed_serial is required")),
            }
        }
        Guard::PulledIsFailedUnit => pulled_is_failed(f),
        Guard::BagMatches => match (f.recorded_bag, f.bag_number) {
            (None, _) => Ok(()),
            (Some(bag), Some(given)) if bag.eq_ignore_ascii_case(given) => Ok(()),
            (Some(bag), Some(given)) => Err(invalid(format!(
                "bag {given} is not the sealed bag {bag} recorded at the pull: keep the box \
                 aside and report a custody break"
            ))),
            (Some(bag), None) => Err(invalid(format!(
                "bag_number is required: {} was sealed in bag {bag} at the pull",
                f.returned.serial
            ))),
        },
        Guard::MediaSanitized if !f.returned.part.holds_media => Ok(()),
        Guard::MediaSanitized => {
            let method = f.sanitization_method.ok_or_else(|| {
                invalid(format!(
                    "{} holds customer data: sanitization_method ({}) and sanitization_certificate \
                     are required before it returns to stock",
                    f.returned.serial,
                    SANITIZATION_METHODS.join(", ")
                ))
            })?;
            if !SANITIZATION_METHODS.contains(&method.to_lowercase().as_str()) {
                return Err(invalid(format!(
                    "sanitization_method must be one of {}",
                    SANITIZATION_METHODS.join(", ")
                )));
            }
            if f.sanitization_certificate.is_none() {
                return Err(invalid("sanitization_certificate is required with sanitization_method"));
            }
            Ok(())
        }
        Guard::ActorAtReturnDepot => match f.actor_depot {
            Some(depot) if depot == f.return_depot => Ok(()),
            Some(depot) => Err(Refusal::Forbidden(format!(
                "this RMA's unit goes to depot {}; you work at {depot}",
                f.return_depot
            ))),
            None => Err(Refusal::Forbidden(format!(
                "only a depot technician at {} may do this",
                f.return_depot
            ))),
        },
        Guard::ScannedIsFailedUnit => match f.scanned_serial {
            Some(s) if s == f.returned.serial => Ok(()),
            Some(s) => Err(invalid(format!(
                "scanned serial {s} does not match this RMA's failed unit {}",
                f.returned.serial
            ))),
            None => Err(invalid("scanned_serial is required")),
        },
        Guard::PartsFromDepotStock => {
            let mut seen = std::collections::HashSet::new();
            for serial in f.parts_consumed {
                if !seen.insert(serial) {
                    return Err(invalid(format!("{serial} is listed twice in parts_consumed")));
                }
                let unit = f
                    .named
                    .get(serial)
                    .ok_or_else(|| invalid(format!("unknown serial {serial}")))?;
                if unit.serial == f.returned.serial || !unit.in_stock_at(f.return_depot) {
                    return Err(invalid(format!(
                        "{serial} is not a new or refurbished part in stock at {}: {}",
                        f.return_depot,
                        whereabouts(unit)
                    )));
                }
            }
            Ok(())
        }
        Guard::TestsAllPassed => {
            if f.test_results.is_empty() {
                return Err(invalid("returning to stock needs at least one test result"));
            }
            let failed: Vec<&str> = f
                .test_results
                .iter()
                .filter(|t| !t.passed)
                .map(|t| t.name.as_str())
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(invalid(format!(
                    "a unit returns to stock only when every test passes; failed: {}",
                    failed.join(", ")
                )))
            }
        }
        Guard::ShipmentDetails => shipment_details(f),
        Guard::VendorShipment if f.carrier.is_none() && f.tracking_number.is_none() => Ok(()),
        Guard::VendorShipment => shipment_details(f),
        Guard::KeepYourDriveHoldsMedia if !f.keep_your_drive => Ok(()),
        Guard::KeepYourDriveHoldsMedia => {
            let part = f.replacement_part.unwrap_or(&f.failed.part);
            if part.holds_media {
                Ok(())
            } else {
                Err(invalid(format!(
                    "keep-your-drive is for parts that hold customer data; {} does not, so it ships back",
                    part.number
                )))
            }
        }
        Guard::FindingCodesKnown if f.unknown_finding_codes.is_empty() => Ok(()),
        Guard::FindingCodesKnown => Err(invalid(format!(
            "unknown finding code(s): {}; choose from the codes the form lists (GET /api/v1/finding-codes)",
            f.unknown_finding_codes.join(", ")
        ))),
        Guard::MandatoryChecks => {
            if f.missing_checks.is_empty() {
                Ok(())
            } else {
                Err(invalid(format!(
                    "record these checklist steps before approving: {}",
                    f.missing_checks.join(", ")
                )))
            }
        }
        Guard::TestsSomeFailed => {
            if f.test_results.iter().any(|t| !t.passed) {
                Ok(())
            } else {
                Err(invalid(
                    "sending a unit back to repair needs at least one failed test result",
                ))
            }
        }
    }
}

/// Carrier, tracking number, packages and weight of a shipment the request describes.
fn shipment_details(f: &Facts) -> Result<(), Refusal> {
    let carrier = Carrier::parse(f.carrier.unwrap_or_default()).map_err(Refusal::Invalid)?;
    carrier
        .tracking_number(f.tracking_number.unwrap_or_default())
        .map_err(Refusal::Invalid)?;
    if f.packages.is_some_and(|p| !(1..=50).contains(&p)) {
        return Err(invalid("packages must be between 1 and 50"));
    }
    if f.weight_kg.is_some_and(|w| !(w > 0.0 && w <= 2000.0)) {
        return Err(invalid("weight_kg must be more than 0 and at most 2000"));
    }
    Ok(())
}

/// SPEC §3: C-nodes are replaced whole; field-replaceable D-node parts are replaced as FRUs.
pub fn replacement_policy(
    failed: &UnitFacts,
    kind: Option<ReplacementKind>,
    part: Option<&PartFacts>,
) -> Result<(), Refusal> {
    let kind = kind.ok_or_else(|| invalid("replacement_kind is required: whole_unit or fru"))?;
    let failed_part = &failed.part;
    match (kind, part) {
        (ReplacementKind::WholeUnit, None) => Ok(()),
        (ReplacementKind::WholeUnit, Some(p)) if p.number == failed_part.number => Ok(()),
        (ReplacementKind::WholeUnit, Some(p)) => Err(invalid(format!(
            "a whole_unit replacement is another {} like {}; leave replacement_part out (got {})",
            failed_part.number, failed.serial, p.number
        ))),
        (ReplacementKind::Fru, None) => Err(invalid(
            "replacement_part is required with replacement_kind fru: the part number of the FRU to replace",
        )),
        (ReplacementKind::Fru, Some(p)) => {
            if failed_part.kind == "cnode" {
                return Err(invalid(format!(
                    "{} is a C-node: parts inside a C-node ({} {}) are not swapped in the field; \
                     approve replacement_kind whole_unit to replace the node ({})",
                    failed.serial, p.number, p.kind, failed_part.number
                )));
            }
            if NODE_KINDS.contains(&p.kind.as_str()) {
                return Err(invalid(format!(
                    "{} is a whole node, not an FRU; approve replacement_kind whole_unit instead",
                    p.number
                )));
            }
            if !p.field_replaceable {
                return Err(invalid(format!(
                    "{} ({}) is not field-replaceable; approve replacement_kind whole_unit to replace {} ({})",
                    p.number, p.kind, failed.serial, failed_part.number
                )));
            }
            let is_node = NODE_KINDS.contains(&failed_part.kind.as_str());
            if !is_node && p.number != failed_part.number {
                return Err(invalid(format!(
                    "{} is a {}; its FRU replacement must be the same part, not {}",
                    failed.serial, failed_part.number, p.number
                )));
            }
            Ok(())
        }
    }
}

fn serviceable_of_part(unit: &UnitFacts, part_number: &str, role: &str) -> Result<(), Refusal> {
    if unit.part.number != part_number {
        return Err(invalid(format!(
            "{} is a {}; this RMA needs a {part_number} as its {role}",
            unit.serial, unit.part.number
        )));
    }
    if !unit.condition.is_serviceable() {
        return Err(invalid(format!(
            "{} is {}; a {role} must be new or refurbished",
            unit.serial, unit.condition
        )));
    }
    Ok(())
}

fn pulled_is_failed(f: &Facts) -> Result<(), Refusal> {
    let pulled = f.pulled_serial;
    match (f.replacement_kind, f.replacement_part) {
        (Some(ReplacementKind::Fru), Some(part)) if part.number != f.failed.part.number => {
            let serial = pulled.ok_or_else(|| {
                invalid(format!(
                    "pulled_serial is required for an FRU swap: the serial of the failed {} pulled from {}",
                    part.number, f.failed.serial
                ))
            })?;
            // Unknown or elsewhere, one answer: a customer learns nothing of other customers' serials.
            let fits = f.named.get(serial).is_some_and(|unit| {
                unit.part.number == part.number && unit.parent_serial.as_deref() == Some(f.failed.serial.as_str())
            });
            match fits {
                true => Ok(()),
                false => Err(invalid(format!(
                    "pulled_serial {serial} must be a {} inside {}",
                    part.number, f.failed.serial
                ))),
            }
        }
        _ => match pulled {
            None => Ok(()),
            Some(s) if s == f.failed.serial => Ok(()),
            Some(s) => Err(invalid(format!(
                "pulled_serial {s} must be this RMA's failed unit {}",
                f.failed.serial
            ))),
        },
    }
}

fn whereabouts(unit: &UnitFacts) -> String {
    let place = match unit.location {
        Location::Site => format!("at site {}", unit.site.as_deref().unwrap_or("?")),
        Location::Depot => format!("at depot {}", unit.depot.as_deref().unwrap_or("?")),
        Location::InTransit => "in transit".to_string(),
        Location::Vendor => "at the vendor".to_string(),
    };
    match (&unit.parent_serial, &unit.slot) {
        (Some(parent), _) => format!("{} {place}, inside {parent}", unit.condition),
        (None, Some(slot)) => format!("{} {place}, installed in {slot}", unit.condition),
        _ => format!("{} {place}", unit.condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: &str, kind: &str, fru: bool) -> PartFacts {
        PartFacts {
            number: number.into(),
            kind: kind.into(),
            field_replaceable: fru,
            holds_media: kind == "ssd" || kind == "dnode",
        }
    }

    fn unit(serial: &str, p: PartFacts) -> UnitFacts {
        UnitFacts {
            serial: serial.into(),
            part: p,
            condition: Condition::New,
            location: Location::Site,
            site: Some("cw-ord1".into()),
            depot: None,
            parent_serial: None,
            slot: None,
        }
    }

    #[test]
    fn cnode_internal_faults_are_whole_node_replacements() {
        let cnode = unit("CN-1", part("CN-5000", "cnode", false));
        let dimm = part("DIMM-64G", "dimm", false);
        let err = replacement_policy(&cnode, Some(ReplacementKind::Fru), Some(&dimm)).unwrap_err();
        assert!(err.to_string().contains("C-node"), "{err}");
        assert!(replacement_policy(&cnode, Some(ReplacementKind::WholeUnit), None).is_ok());
    }

    #[test]
    fn dnode_fans_are_frus_but_dimms_are_not() {
        let dnode = unit("DN-1", part("DN-3000", "dnode", false));
        let fan = part("FAN-80MM", "fan", true);
        assert!(replacement_policy(&dnode, Some(ReplacementKind::Fru), Some(&fan)).is_ok());
        let dimm = part("DIMM-64G", "dimm", false);
        let err = replacement_policy(&dnode, Some(ReplacementKind::Fru), Some(&dimm)).unwrap_err();
        assert!(err.to_string().contains("not field-replaceable"), "{err}");
        let err = replacement_policy(&dnode, Some(ReplacementKind::Fru), None).unwrap_err();
        assert!(err.to_string().contains("replacement_part is required"), "{err}");
    }
}

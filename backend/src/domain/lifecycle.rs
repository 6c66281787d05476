//! The RMA lifecycle (SPEC §3) as one table of data, and the pure checks that apply it.
//!
//! The API, the web forms, the docs and the diagram all read [`TRANSITIONS`]; the service layer
//! carries out the listed [`UnitEffect`]s and [`Notice`]s in the same database transaction.
use super::types::{Role, string_enum};
use serde::Serialize;

string_enum! {
    /// Where an RMA stands. The names are the contract.
    Status {
        Reported => "reported",
        Diagnosing => "diagnosing",
        Restored => "restored",
        Approved => "approved",
        ReplacementShipped => "replacement_shipped",
        ReplacementDelivered => "replacement_delivered",
        Swapped => "swapped",
        ReturnShipped => "return_shipped",
        Received => "received",
        Triage => "triage",
        Repair => "repair",
        Testing => "testing",
        VendorEscalated => "vendor_escalated",
        ReturnedToStock => "returned_to_stock",
        Scrapped => "scrapped",
        Cancelled => "cancelled",
    }
}

impl Status {
    /// End states: nothing leaves them.
    pub fn is_end(self) -> bool {
        !TRANSITIONS.iter().any(|t| t.from.contains(&self))
    }
}

string_enum! {
    /// A field a transition request may carry (SPEC §7 names).
    Field {
        Note => "note",
        Resolution => "resolution",
        FaultCode => "fault_code",
        ReplacementKind => "replacement_kind",
        ReplacementPart => "replacement_part",
        ReplacementSerial => "replacement_serial",
        Carrier => "carrier",
        TrackingNumber => "tracking_number",
        SpareSerial => "spare_serial",
        DeliveredAt => "delivered_at",
        InstalledSerial => "installed_serial",
        PulledSerial => "pulled_serial",
        Depot => "depot",
        ScannedSerial => "scanned_serial",
        Finding => "finding",
        Vendor => "vendor",
        VendorReference => "vendor_reference",
        VendorReturnReference => "vendor_return_reference",
        PartsConsumed => "parts_consumed",
        TestResults => "test_results",
        Reason => "reason",
        Packages => "packages",
        WeightKg => "weight_kg",
        BagNumber => "bag_number",
        PartsRemoved => "parts_removed",
        SanitizationMethod => "sanitization_method",
        SanitizationCertificate => "sanitization_certificate",
    }
}

string_enum! {
    /// A rule checked against the RMA, its units and the acting user before a transition is made.
    Guard {
        ReplacementPolicy => "replacement_policy",
        ReplacementFromActorDepotStock => "replacement_from_actor_depot_stock",
        SpareOnSite => "spare_on_site",
        InstalledIsReplacement => "installed_is_replacement",
        PulledIsFailedUnit => "pulled_is_failed_unit",
        ActorAtReturnDepot => "actor_at_return_depot",
        ScannedIsFailedUnit => "scanned_is_failed_unit",
        PartsFromDepotStock => "parts_from_depot_stock",
        TestsAllPassed => "tests_all_passed",
        TestsSomeFailed => "tests_some_failed",
        ShipmentDetails => "shipment_details",
        MandatoryChecks => "mandatory_checks",
        BagMatches => "bag_matches",
        MediaSanitized => "media_sanitized",
    }
}

string_enum! {
    /// What a transition does to the RMA's record and its units, besides the status.
    UnitEffect {
        RecordResolution => "record_resolution",
        RecordDecision => "record_decision",
        ReserveReplacement => "reserve_replacement",
        ShipReplacement => "ship_replacement",
        DeliverReplacement => "deliver_replacement",
        Swap => "swap",
        ShipReturn => "ship_return",
        ReceiveReturn => "receive_return",
        RecordFinding => "record_finding",
        SendToVendor => "send_to_vendor",
        BackFromVendor => "back_from_vendor",
        ConsumeParts => "consume_parts",
        RecordTests => "record_tests",
        RecordBag => "record_bag",
        RecordSanitization => "record_sanitization",
        Restock => "restock",
        Scrap => "scrap",
    }
}

string_enum! {
    /// The email a transition queues (SPEC §5).
    Notice {
        RmaApproved => "rma_approved",
        ReplacementShipped => "replacement_shipped",
        UnitReceived => "unit_received",
        RmaClosed => "rma_closed",
    }
}

/// One row of the lifecycle table.
#[derive(Debug, Serialize)]
pub struct Transition {
    pub from: &'static [Status],
    pub to: Status,
    pub roles: &'static [Role],
    /// Fields that must be present and non-empty.
    pub required: &'static [Field],
    /// Fields that may be given.
    pub optional: &'static [Field],
    pub guards: &'static [Guard],
    pub effects: &'static [UnitEffect],
    pub notice: Option<Notice>,
}

use Field as F;
use Guard as G;
use Role::*;
use Status::*;
use UnitEffect as E;

const FE: &[Role] = &[FieldEngineer];
const DT: &[Role] = &[DepotTech];
const ON_SITE: &[Role] = &[DcTech, FieldEngineer];
const NOTE: &[Field] = &[F::Note];
const SHIPPING: &[Field] = &[F::Packages, F::WeightKg, F::Note];

/// The lifecycle. Nothing changes an RMA's status except through a row of this table.
pub static TRANSITIONS: &[Transition] = &[
    Transition {
        from: &[Reported],
        to: Diagnosing,
        roles: FE,
        required: &[],
        optional: NOTE,
        guards: &[],
        effects: &[],
        notice: None,
    },
    Transition {
        from: &[Diagnosing],
        to: Restored,
        roles: FE,
        required: &[F::Resolution],
        optional: NOTE,
        guards: &[],
        effects: &[E::RecordResolution],
        notice: Some(Notice::RmaClosed),
    },
    Transition {
        from: &[Diagnosing],
        to: Approved,
        roles: FE,
        required: &[F::FaultCode, F::ReplacementKind],
        optional: &[F::ReplacementPart, F::Depot, F::Note],
        guards: &[G::MandatoryChecks, G::ReplacementPolicy],
        effects: &[E::RecordDecision, E::ReserveReplacement],
        notice: Some(Notice::RmaApproved),
    },
    Transition {
        from: &[Approved],
        to: ReplacementShipped,
        roles: DT,
        required: &[F::ReplacementSerial, F::Carrier, F::TrackingNumber],
        optional: SHIPPING,
        guards: &[G::ShipmentDetails, G::ReplacementFromActorDepotStock],
        effects: &[E::ShipReplacement],
        notice: Some(Notice::ReplacementShipped),
    },
    Transition {
        from: &[Approved],
        to: Swapped,
        roles: FE,
        required: &[F::SpareSerial],
        optional: &[F::PulledSerial, F::BagNumber, F::Note],
        guards: &[G::SpareOnSite, G::PulledIsFailedUnit],
        effects: &[E::Swap, E::RecordBag],
        notice: None,
    },
    Transition {
        from: &[ReplacementShipped],
        to: ReplacementDelivered,
        roles: &[DcTech, FieldEngineer, DepotTech],
        required: &[],
        optional: &[F::DeliveredAt, F::Note],
        guards: &[],
        effects: &[E::DeliverReplacement],
        notice: None,
    },
    Transition {
        from: &[ReplacementDelivered],
        to: Swapped,
        roles: ON_SITE,
        required: &[F::InstalledSerial, F::PulledSerial],
        optional: &[F::BagNumber, F::Note],
        guards: &[G::InstalledIsReplacement, G::PulledIsFailedUnit],
        effects: &[E::Swap, E::RecordBag],
        notice: None,
    },
    Transition {
        from: &[Swapped],
        to: ReturnShipped,
        roles: ON_SITE,
        required: &[F::Carrier, F::TrackingNumber, F::Depot],
        optional: SHIPPING,
        guards: &[G::ShipmentDetails],
        effects: &[E::ShipReturn],
        notice: None,
    },
    Transition {
        from: &[ReturnShipped],
        to: Received,
        roles: DT,
        required: &[F::ScannedSerial],
        optional: &[F::BagNumber, F::Note],
        guards: &[G::ActorAtReturnDepot, G::ScannedIsFailedUnit, G::BagMatches],
        effects: &[E::ReceiveReturn],
        notice: Some(Notice::UnitReceived),
    },
    Transition {
        from: &[Received],
        to: Triage,
        roles: DT,
        required: &[],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[],
        notice: None,
    },
    Transition {
        from: &[Triage],
        to: Repair,
        roles: DT,
        required: &[F::Finding],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::RecordFinding],
        notice: None,
    },
    Transition {
        from: &[Triage],
        to: Testing,
        roles: DT,
        required: &[F::Finding],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::RecordFinding],
        notice: None,
    },
    Transition {
        from: &[Triage],
        to: VendorEscalated,
        roles: DT,
        required: &[F::Vendor, F::VendorReference],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::SendToVendor],
        notice: None,
    },
    Transition {
        from: &[Triage, VendorEscalated],
        to: Scrapped,
        roles: DT,
        required: &[F::Reason],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::Scrap],
        notice: Some(Notice::RmaClosed),
    },
    Transition {
        from: &[Repair],
        to: Testing,
        roles: DT,
        required: &[F::PartsConsumed],
        optional: &[F::PartsRemoved, F::Note],
        guards: &[G::ActorAtReturnDepot, G::PartsFromDepotStock],
        effects: &[E::ConsumeParts],
        notice: None,
    },
    Transition {
        from: &[Testing],
        to: ReturnedToStock,
        roles: DT,
        required: &[F::TestResults],
        optional: &[F::SanitizationMethod, F::SanitizationCertificate, F::Note],
        guards: &[G::ActorAtReturnDepot, G::TestsAllPassed, G::MediaSanitized],
        effects: &[E::RecordTests, E::RecordSanitization, E::Restock],
        notice: Some(Notice::RmaClosed),
    },
    Transition {
        from: &[Testing],
        to: Repair,
        roles: DT,
        required: &[F::TestResults],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot, G::TestsSomeFailed],
        effects: &[E::RecordTests],
        notice: None,
    },
    Transition {
        from: &[VendorEscalated],
        to: Testing,
        roles: DT,
        required: &[F::VendorReturnReference],
        optional: NOTE,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::BackFromVendor],
        notice: None,
    },
    Transition {
        from: &[Reported, Diagnosing, Approved],
        to: Cancelled,
        roles: &[FieldEngineer, Admin],
        required: &[F::Reason],
        optional: NOTE,
        guards: &[],
        effects: &[],
        notice: Some(Notice::RmaClosed),
    },
];

/// Why a transition was refused. Each maps to one status code of SPEC §7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No row leads from the current status to the target (409).
    NotAllowed { from: Status, to: Status },
    /// The row exists but this role may not make it (403).
    RoleMayNot {
        role: Role,
        to: Status,
        allowed: &'static [Role],
    },
    /// Required fields are absent or empty (422).
    MissingFields(Vec<Field>),
    /// A guard failed: the message says what to fix (422).
    Invalid(String),
    /// A guard about who acts failed, e.g. a depot technician at another depot (403).
    Forbidden(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed { from, to } => {
                let next: Vec<&str> = next_statuses(*from).map(Status::as_str).collect();
                if next.is_empty() {
                    write!(f, "an RMA in `{from}` is closed; it cannot move to `{to}`")
                } else {
                    write!(
                        f,
                        "an RMA in `{from}` cannot move to `{to}`; it can move to: {}",
                        next.join(", ")
                    )
                }
            }
            Refusal::RoleMayNot { role, to, allowed } => {
                let allowed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
                write!(
                    f,
                    "a {role} may not move an RMA to `{to}`; that is done by: {}",
                    allowed.join(", ")
                )
            }
            Refusal::MissingFields(fields) => {
                let names: Vec<&str> = fields.iter().map(|x| x.as_str()).collect();
                write!(f, "missing required field(s): {}", names.join(", "))
            }
            Refusal::Invalid(msg) | Refusal::Forbidden(msg) => f.write_str(msg),
        }
    }
}

/// The statuses an RMA in `from` can move to, by anyone.
pub fn next_statuses(from: Status) -> impl Iterator<Item = Status> {
    TRANSITIONS.iter().filter(move |t| t.from.contains(&from)).map(|t| t.to)
}

/// The transitions a user of `role` may attempt from `from`.
pub fn available(from: Status, role: Role) -> impl Iterator<Item = &'static Transition> {
    TRANSITIONS
        .iter()
        .filter(move |t| t.from.contains(&from) && t.roles.contains(&role))
}

/// Finds the row for `from -> to` and checks the role and the presence of required fields.
///
/// Guards that need the RMA's units are checked afterwards by [`super::policy::check_guards`].
pub fn authorize(
    from: Status,
    to: Status,
    role: Role,
    present: impl Fn(Field) -> bool,
) -> Result<&'static Transition, Refusal> {
    let row = TRANSITIONS
        .iter()
        .find(|t| t.to == to && t.from.contains(&from))
        .ok_or(Refusal::NotAllowed { from, to })?;
    if !row.roles.contains(&role) {
        return Err(Refusal::RoleMayNot {
            role,
            to,
            allowed: row.roles,
        });
    }
    let missing: Vec<Field> = row.required.iter().copied().filter(|f| !present(*f)).collect();
    if !missing.is_empty() {
        return Err(Refusal::MissingFields(missing));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_reachable_from_reported() {
        let mut seen = vec![Reported];
        let mut frontier = vec![Reported];
        while let Some(s) = frontier.pop() {
            for next in next_statuses(s) {
                if !seen.contains(&next) {
                    seen.push(next);
                    frontier.push(next);
                }
            }
        }
        for s in Status::ALL {
            assert!(seen.contains(s), "{s} unreachable");
        }
    }

    #[test]
    fn end_states_are_the_four_of_the_spec() {
        let ends: Vec<Status> = Status::ALL.iter().copied().filter(|s| s.is_end()).collect();
        assert_eq!(ends, vec![Restored, ReturnedToStock, Scrapped, Cancelled]);
    }

    #[test]
    fn refusals_follow_status_then_role_then_fields() {
        let none = |_| false;
        assert!(matches!(
            authorize(Reported, Received, DepotTech, none),
            Err(Refusal::NotAllowed { .. })
        ));
        assert!(matches!(
            authorize(Reported, Diagnosing, DcTech, none),
            Err(Refusal::RoleMayNot { .. })
        ));
        assert_eq!(
            authorize(Diagnosing, Approved, FieldEngineer, |f| f == Field::FaultCode).unwrap_err(),
            Refusal::MissingFields(vec![Field::ReplacementKind])
        );
        assert!(authorize(Reported, Cancelled, Admin, |_| true).is_ok());
    }

    #[test]
    fn pairs_are_unique() {
        for (i, a) in TRANSITIONS.iter().enumerate() {
            for b in &TRANSITIONS[i + 1..] {
                assert!(
                    !(a.to == b.to && a.from.iter().any(|f| b.from.contains(f))),
                    "duplicate row to {}",
                    a.to
                );
            }
        }
    }
}

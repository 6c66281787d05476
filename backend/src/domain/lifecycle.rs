//! The RMA lifecycle (SPEC §3) as one table of data, and the pure checks that apply it.
//!
//! The API, the web forms, the docs and the diagram all read [`TRANSITIONS`]; [`plan`] decides a
//! transition from it, and the service layer's executor carries the [`Plan`] out in one database
//! transaction.
use super::types::{Role, string_enum};
use serde::Serialize;

mod plan;
mod request;
pub use plan::{
    ActorFacts, Decision, Destination, FROM_VENDOR, KnownUnit, MAX_LABOR_MINUTES, Move, NewShipment, NewUnit, OUTBOUND,
    PartRef, Place, Plan, PlanFacts, RETURN, Record, Reserve, RmaFacts, RmaUpdate, TO_VENDOR, UnitRef, plan,
};
pub use request::{RemovedPart, TransitionRequest};

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
    /// From the failed unit's arrival at the depot on, and the end states: when a depot record
    /// may exist.
    pub fn is_at_depot_or_closed(self) -> bool {
        matches!(self, Received | Triage | Repair | Testing | VendorEscalated) || self.is_end()
    }

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
        KeepYourDrive => "keep_your_drive",
        DestructionCertificate => "destruction_certificate",
        FindingCodes => "finding_codes",
        LaborMinutes => "labor_minutes",
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
        KeepYourDriveHoldsMedia => "keep_your_drive_holds_media",
        FindingCodesKnown => "finding_codes_known",
        VendorShipment => "vendor_shipment",
    }
}

string_enum! {
    /// Which RMAs a row exists for: a keep-your-drive RMA closes on the customer's destruction
    /// certificate, every other one ships its failed unit back.
    Applies {
        Always => "always",
        KeptByCustomer => "kept_by_customer",
        ShipsBack => "ships_back",
    }
}

impl Applies {
    pub fn to(self, keep_your_drive: bool) -> bool {
        match self {
            Applies::Always => true,
            Applies::KeptByCustomer => keep_your_drive,
            Applies::ShipsBack => !keep_your_drive,
        }
    }

    /// Why the row is not there for an RMA it does not apply to.
    fn refusal(self) -> &'static str {
        match self {
            Applies::Always => "",
            Applies::KeptByCustomer => {
                "only a keep-your-drive RMA closes on the customer's destruction certificate; this one ships \
                 the failed unit back to a depot"
            }
            Applies::ShipsBack => {
                "the customer keeps the failed drive (keep-your-drive): nothing ships back; record their \
                 destruction certificate to close the RMA"
            }
        }
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
        CloseKeptDrive => "close_kept_drive",
        Restock => "restock",
        Scrap => "scrap",
    }
}

impl UnitEffect {
    /// Whether the effect makes a shipment (a unit sent by carrier).
    pub const fn ships(self) -> bool {
        matches!(
            self,
            UnitEffect::ShipReplacement
                | UnitEffect::ShipReturn
                | UnitEffect::SendToVendor
                | UnitEffect::BackFromVendor
        )
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
    pub applies: Applies,
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
/// What a depot technician may add to any step of the depot's work.
const BENCH: &[Field] = &[F::LaborMinutes, F::Note];
const FINDING: &[Field] = &[F::FindingCodes, F::LaborMinutes, F::Note];

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
        applies: Applies::Always,
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
        applies: Applies::Always,
    },
    Transition {
        from: &[Diagnosing],
        to: Approved,
        roles: FE,
        required: &[F::FaultCode, F::ReplacementKind],
        optional: &[F::ReplacementPart, F::Depot, F::KeepYourDrive, F::Note],
        guards: &[G::MandatoryChecks, G::ReplacementPolicy, G::KeepYourDriveHoldsMedia],
        effects: &[E::RecordDecision, E::ReserveReplacement],
        notice: Some(Notice::RmaApproved),
        applies: Applies::Always,
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
        applies: Applies::Always,
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
        applies: Applies::Always,
    },
    Transition {
        from: &[ReplacementShipped],
        to: ReplacementDelivered,
        // Integration: the carrier's delivered scan (SPEC §10).
        roles: &[DcTech, FieldEngineer, DepotTech, Integration],
        required: &[],
        optional: &[F::DeliveredAt, F::Note],
        guards: &[],
        effects: &[E::DeliverReplacement],
        notice: None,
        applies: Applies::Always,
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
        applies: Applies::Always,
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
        applies: Applies::ShipsBack,
    },
    // Keep-your-drive: the customer destroys the failed drive on site; nothing ships back.
    Transition {
        from: &[Swapped],
        to: Scrapped,
        roles: ON_SITE,
        required: &[F::DestructionCertificate],
        optional: NOTE,
        guards: &[],
        effects: &[E::CloseKeptDrive],
        notice: Some(Notice::RmaClosed),
        applies: Applies::KeptByCustomer,
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
        applies: Applies::Always,
    },
    Transition {
        from: &[Received],
        to: Triage,
        roles: DT,
        required: &[],
        optional: BENCH,
        guards: &[G::ActorAtReturnDepot],
        effects: &[],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[Triage],
        to: Repair,
        roles: DT,
        required: &[F::Finding],
        optional: FINDING,
        guards: &[G::ActorAtReturnDepot, G::FindingCodesKnown],
        effects: &[E::RecordFinding],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[Triage],
        to: Testing,
        roles: DT,
        required: &[F::Finding],
        optional: FINDING,
        guards: &[G::ActorAtReturnDepot, G::FindingCodesKnown],
        effects: &[E::RecordFinding],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[Triage],
        to: VendorEscalated,
        roles: DT,
        required: &[F::Vendor, F::VendorReference],
        optional: &[
            F::Carrier,
            F::TrackingNumber,
            F::Packages,
            F::WeightKg,
            F::LaborMinutes,
            F::Note,
        ],
        guards: &[G::ActorAtReturnDepot, G::VendorShipment],
        effects: &[E::SendToVendor],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[Triage, VendorEscalated],
        to: Scrapped,
        roles: DT,
        required: &[F::Reason],
        optional: BENCH,
        guards: &[G::ActorAtReturnDepot],
        effects: &[E::Scrap],
        notice: Some(Notice::RmaClosed),
        applies: Applies::Always,
    },
    Transition {
        from: &[Repair],
        to: Testing,
        roles: DT,
        required: &[F::PartsConsumed],
        optional: &[F::PartsRemoved, F::LaborMinutes, F::Note],
        guards: &[G::ActorAtReturnDepot, G::PartsFromDepotStock],
        effects: &[E::ConsumeParts],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[Testing],
        to: ReturnedToStock,
        roles: DT,
        required: &[F::TestResults],
        optional: &[
            F::SanitizationMethod,
            F::SanitizationCertificate,
            F::LaborMinutes,
            F::Note,
        ],
        guards: &[G::ActorAtReturnDepot, G::TestsAllPassed, G::MediaSanitized],
        effects: &[E::RecordTests, E::RecordSanitization, E::Restock],
        notice: Some(Notice::RmaClosed),
        applies: Applies::Always,
    },
    Transition {
        from: &[Testing],
        to: Repair,
        roles: DT,
        required: &[F::TestResults],
        optional: BENCH,
        guards: &[G::ActorAtReturnDepot, G::TestsSomeFailed],
        effects: &[E::RecordTests],
        notice: None,
        applies: Applies::Always,
    },
    Transition {
        from: &[VendorEscalated],
        to: Testing,
        roles: DT,
        required: &[F::VendorReturnReference],
        optional: &[F::Carrier, F::TrackingNumber, F::LaborMinutes, F::Note],
        guards: &[G::ActorAtReturnDepot, G::VendorShipment],
        effects: &[E::BackFromVendor],
        notice: None,
        applies: Applies::Always,
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
        applies: Applies::Always,
    },
];

/// Why a transition was refused. Each maps to one status code of SPEC §7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No row leads from the current status to the target (409).
    NotAllowed {
        from: Status,
        to: Status,
        keep_your_drive: bool,
    },
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
    /// The row exists, but not for this RMA: a return of a keep-your-drive RMA, or a destruction
    /// certificate for one that ships back (409).
    DoesNotApply(Applies),
    /// The request was made on a version the RMA has moved on from (409).
    Stale(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed {
                from,
                to,
                keep_your_drive,
            } => {
                let next: Vec<&str> = next_for(*from, *keep_your_drive).map(|t| t.to.as_str()).collect();
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
            Refusal::DoesNotApply(applies) => f.write_str(applies.refusal()),
            Refusal::Invalid(msg) | Refusal::Forbidden(msg) | Refusal::Stale(msg) => f.write_str(msg),
        }
    }
}

/// The statuses an RMA in `from` can move to, by anyone.
pub fn next_statuses(from: Status) -> impl Iterator<Item = Status> {
    TRANSITIONS.iter().filter(move |t| t.from.contains(&from)).map(|t| t.to)
}

/// The statuses an RMA enters by a row that makes a shipment: one that never entered any of them
/// has no shipments.
pub fn shipping_statuses() -> impl Iterator<Item = Status> {
    TRANSITIONS
        .iter()
        .filter(|t| t.effects.iter().any(|e| e.ships()))
        .map(|t| t.to)
}

/// The rows out of `from` that exist for an RMA (keep-your-drive or not).
fn next_for(from: Status, keep_your_drive: bool) -> impl Iterator<Item = &'static Transition> {
    TRANSITIONS
        .iter()
        .filter(move |t| t.from.contains(&from) && t.applies.to(keep_your_drive))
}

/// The transitions a user of `role` may attempt from `from` on an RMA (keep-your-drive or not).
pub fn available(from: Status, role: Role, keep_your_drive: bool) -> impl Iterator<Item = &'static Transition> {
    next_for(from, keep_your_drive).filter(move |t| t.roles.contains(&role))
}

/// Finds the row for `from -> to` and checks the role and the presence of required fields.
///
/// Guards that need the RMA's units are checked afterwards by [`super::policy::check_guards`].
pub fn authorize(
    from: Status,
    to: Status,
    role: Role,
    keep_your_drive: bool,
    present: impl Fn(Field) -> bool,
) -> Result<&'static Transition, Refusal> {
    let row = TRANSITIONS
        .iter()
        .find(|t| t.to == to && t.from.contains(&from))
        .ok_or(Refusal::NotAllowed {
            from,
            to,
            keep_your_drive,
        })?;
    if !row.applies.to(keep_your_drive) {
        return Err(Refusal::DoesNotApply(row.applies));
    }
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
            authorize(Reported, Received, DepotTech, false, none),
            Err(Refusal::NotAllowed { .. })
        ));
        assert!(matches!(
            authorize(Reported, Diagnosing, DcTech, false, none),
            Err(Refusal::RoleMayNot { .. })
        ));
        assert_eq!(
            authorize(Diagnosing, Approved, FieldEngineer, false, |f| f == Field::FaultCode).unwrap_err(),
            Refusal::MissingFields(vec![Field::ReplacementKind])
        );
        assert!(authorize(Reported, Cancelled, Admin, false, |_| true).is_ok());
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

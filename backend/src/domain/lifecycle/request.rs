//! What a transition request carries: the target, the version it was read at, and the fields.
use super::{Field, Transition};
use crate::domain::policy::TestResult;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `POST /api/v1/rmas/{number}/transitions`: the target status, the version read, and the fields it needs.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TransitionRequest {
    pub to: String,
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_code: Option<String>,
    /// `whole_unit` or `fru`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_part: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_serial: Option<String>,
    /// RFC 3339; defaults to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_serial: Option<String>,
    /// Depot code the failed unit ships to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_return_reference: Option<String>,
    /// Serials taken from the depot's stock; may be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_consumed: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_results: Option<Vec<TestResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Boxes in the shipment (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<f64>,
    /// The sealed bag a unit holding customer data was packed in (at the pull; checked at receiving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bag_number: Option<String>,
    /// Components taken out of the repaired unit; each becomes a failed unit at the depot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_removed: Option<Vec<RemovedPart>>,
    /// `clear`, `purge` or `destroy` (NIST SP 800-88); required to restock a unit holding media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitization_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanitization_certificate: Option<String>,
    /// At approval: the customer keeps the failed drive; the RMA later closes on
    /// `destruction_certificate` instead of a return shipment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_your_drive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destruction_certificate: Option<String>,
    /// Codes from the findings catalog (`GET /api/v1/finding-codes`), with the free-text `finding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_codes: Option<Vec<String>>,
    /// Technician time this step took, in minutes (0 to 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labor_minutes: Option<i32>,
}

/// A component removed in a repair: a unit known inside the repaired one, or a new serial with its
/// part number.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RemovedPart {
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

impl TransitionRequest {
    /// A text field, trimmed; empty counts as absent.
    pub fn text(&self, field: Field) -> Option<&str> {
        let value = match field {
            Field::Note => &self.note,
            Field::Resolution => &self.resolution,
            Field::FaultCode => &self.fault_code,
            Field::ReplacementKind => &self.replacement_kind,
            Field::ReplacementPart => &self.replacement_part,
            Field::ReplacementSerial => &self.replacement_serial,
            Field::Carrier => &self.carrier,
            Field::TrackingNumber => &self.tracking_number,
            Field::SpareSerial => &self.spare_serial,
            Field::InstalledSerial => &self.installed_serial,
            Field::PulledSerial => &self.pulled_serial,
            Field::Depot => &self.depot,
            Field::ScannedSerial => &self.scanned_serial,
            Field::Finding => &self.finding,
            Field::Vendor => &self.vendor,
            Field::VendorReference => &self.vendor_reference,
            Field::VendorReturnReference => &self.vendor_return_reference,
            Field::Reason => &self.reason,
            Field::BagNumber => &self.bag_number,
            Field::SanitizationMethod => &self.sanitization_method,
            Field::SanitizationCertificate => &self.sanitization_certificate,
            Field::DestructionCertificate => &self.destruction_certificate,
            Field::DeliveredAt
            | Field::KeepYourDrive
            | Field::FindingCodes
            | Field::LaborMinutes
            | Field::PartsConsumed
            | Field::PartsRemoved
            | Field::TestResults
            | Field::Packages
            | Field::WeightKg => &None,
        };
        value.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// Whether a required field is given.
    pub fn has(&self, field: Field) -> bool {
        match field {
            Field::DeliveredAt => self.delivered_at.is_some(),
            Field::PartsConsumed => self.parts_consumed.is_some(),
            Field::PartsRemoved => self.parts_removed.is_some(),
            Field::TestResults => self.test_results.as_ref().is_some_and(|t| !t.is_empty()),
            Field::Packages => self.packages.is_some(),
            Field::WeightKg => self.weight_kg.is_some(),
            Field::KeepYourDrive => self.keep_your_drive.is_some(),
            Field::FindingCodes => self.finding_codes.is_some(),
            Field::LaborMinutes => self.labor_minutes.is_some(),
            other => self.text(other).is_some(),
        }
    }

    /// The fields this request set, as recorded in the event.
    pub fn recorded_fields(&self, row: &Transition) -> Value {
        let all = serde_json::to_value(self).unwrap_or_default();
        let keep: Vec<&str> = row.required.iter().chain(row.optional).map(|f| f.as_str()).collect();
        match all {
            Value::Object(map) => Value::Object(map.into_iter().filter(|(k, _)| keep.contains(&k.as_str())).collect()),
            _ => json!({}),
        }
    }
}

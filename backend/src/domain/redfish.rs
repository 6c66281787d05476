//! BMC events (DMTF Redfish `Event`) read as faults: which rule an event matches, and what to do
//! about it, following the replacement policy (SPEC §3). Pure: the events, the rules and the
//! node's part in; a recommendation out.
use serde::{Deserialize, Serialize};

/// What the field engineer is advised to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reseat,
    PowerCycle,
    ReplaceFru,
    ReplaceNode,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Reseat,
        Action::PowerCycle,
        Action::ReplaceFru,
        Action::ReplaceNode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reseat => "reseat",
            Action::PowerCycle => "power_cycle",
            Action::ReplaceFru => "replace_fru",
            Action::ReplaceNode => "replace_node",
        }
    }

    pub fn parse(s: &str) -> Result<Action, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| format!("action `{s}`: expected reseat, power_cycle, replace_fru or replace_node"))
    }
}

/// One row of the rules table: an event whose `MessageId` and origin contain these texts (either
/// may be empty, not both) is this fault.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rule {
    pub message_id_contains: String,
    pub origin_contains: String,
    pub fault_code: String,
    /// `sev1`..`sev4`.
    pub severity: String,
    pub action: Action,
    /// The FRU part number, with `replace_fru`.
    pub part: Option<String>,
    pub description: String,
}

impl Rule {
    /// Case-insensitive containment of both texts that are set.
    pub fn matches(&self, message_id: &str, origin: &str) -> bool {
        let has = |text: &str, needle: &str| needle.is_empty() || text.to_lowercase().contains(&needle.to_lowercase());
        (!self.message_id_contains.is_empty() || !self.origin_contains.is_empty())
            && has(message_id, &self.message_id_contains)
            && has(origin, &self.origin_contains)
    }
}

/// One event of a Redfish `Event` payload (the fields depot reads).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventRecord {
    #[serde(default)]
    pub event_id: Option<String>,
    pub message_id: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub message_args: Vec<String>,
    /// `MessageSeverity` (Redfish 1.x) or the older `Severity`.
    #[serde(default)]
    pub message_severity: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub origin_of_condition: Option<serde_json::Value>,
    #[serde(default)]
    pub event_timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

impl EventRecord {
    /// `OriginOfCondition` as a path, whether sent as a link object or a plain string.
    pub fn origin(&self) -> String {
        match &self.origin_of_condition {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v["@odata.id"].as_str().unwrap_or_default().to_string(),
            None => String::new(),
        }
    }

    /// `OK`, `Warning` or `Critical`.
    pub fn level(&self) -> &str {
        self.message_severity
            .as_deref()
            .or(self.severity.as_deref())
            .unwrap_or("OK")
    }

    /// Whether the event reports a problem rather than a recovery or information.
    pub fn is_problem(&self) -> bool {
        matches!(self.level().to_ascii_lowercase().as_str(), "warning" | "critical")
    }
}

/// The node the BMC manages, as the policy sees it.
pub struct Node<'a> {
    /// `cnode` or `dnode`.
    pub kind: &'a str,
    /// Part number and whether it is field-replaceable, for the rule's FRU part.
    pub fru: Option<(&'a str, bool)>,
}

/// What depot advises for an event, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub action: Action,
    pub part: Option<String>,
    pub fault_code: String,
    pub severity: String,
    pub why: String,
}

/// The rule's advice for `node`, bent to the replacement policy: nothing inside a C-node, and
/// nothing that is not field-replaceable, is swapped in the field; the whole node is.
pub fn recommend(rule: &Rule, node: &Node, event: &EventRecord) -> Recommendation {
    let seen = format!("{} from {}", event.message_id, event.origin());
    let (action, part, why) = match (rule.action, node.kind, node.fru) {
        (Action::ReplaceFru, "cnode", _) => (
            Action::ReplaceNode,
            None,
            format!(
                "{}: {seen}. A C-node's parts are not swapped in the field: replace the node",
                rule.description
            ),
        ),
        (Action::ReplaceFru, _, Some((number, false))) => (
            Action::ReplaceNode,
            None,
            format!(
                "{}: {seen}. {number} is not field-replaceable: replace the node",
                rule.description
            ),
        ),
        (Action::ReplaceFru, _, _) => (
            Action::ReplaceFru,
            rule.part.clone(),
            format!(
                "{}: {seen}. Replace the {} in the field",
                rule.description,
                rule.part.as_deref().unwrap_or("part")
            ),
        ),
        (action, _, _) => (action, None, format!("{}: {seen}", rule.description)),
    };
    Recommendation {
        action,
        part,
        fault_code: rule.fault_code.clone(),
        severity: rule.severity.clone(),
        why,
    }
}

/// More events than this from one BMC within an hour are a storm: folded into one note.
pub const STORM_PER_HOUR: u64 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn fan_rule() -> Rule {
        Rule {
            message_id_contains: String::new(),
            origin_contains: "/Fans/".into(),
            fault_code: "FAN_FAIL".into(),
            severity: "sev2".into(),
            action: Action::ReplaceFru,
            part: Some("FAN-80MM".into()),
            description: "Fan failed".into(),
        }
    }

    fn event(message_id: &str, origin: &str, severity: &str) -> EventRecord {
        serde_json::from_value(serde_json::json!({"MessageId": message_id, "MessageSeverity": severity,
            "OriginOfCondition": {"@odata.id": origin}}))
        .unwrap()
    }

    #[test]
    fn a_fan_is_an_fru_in_a_dnode_and_the_whole_node_in_a_cnode() {
        let e = event(
            "ResourceEvent.1.0.ResourceErrorsDetected",
            "/redfish/v1/Chassis/1/Thermal#/Fans/2",
            "Critical",
        );
        let rule = fan_rule();
        assert!(rule.matches(&e.message_id, &e.origin()));
        let dnode = recommend(
            &rule,
            &Node {
                kind: "dnode",
                fru: Some(("FAN-80MM", true)),
            },
            &e,
        );
        assert_eq!(
            (dnode.action, dnode.part.as_deref()),
            (Action::ReplaceFru, Some("FAN-80MM"))
        );
        let cnode = recommend(
            &rule,
            &Node {
                kind: "cnode",
                fru: Some(("FAN-80MM", true)),
            },
            &e,
        );
        assert_eq!((cnode.action, cnode.part), (Action::ReplaceNode, None));
        assert!(cnode.why.contains("C-node"), "{}", cnode.why);
        let dimm = recommend(
            &rule,
            &Node {
                kind: "dnode",
                fru: Some(("DIMM-64G", false)),
            },
            &e,
        );
        assert_eq!(dimm.action, Action::ReplaceNode);
    }

    #[test]
    fn rules_match_on_what_they_name_and_events_read_both_severity_fields() {
        let rule = fan_rule();
        assert!(!rule.matches(
            "ResourceEvent.1.0.ResourceErrorsDetected",
            "/redfish/v1/Systems/1/Memory/DIMM1"
        ));
        let empty = Rule {
            origin_contains: String::new(),
            ..fan_rule()
        };
        assert!(
            !empty.matches("anything", "anywhere"),
            "a rule naming nothing matches nothing"
        );
        let old: EventRecord = serde_json::from_value(serde_json::json!({"MessageId": "x", "Severity": "Warning",
            "OriginOfCondition": "/redfish/v1/Chassis/1"}))
        .unwrap();
        assert!(old.is_problem());
        assert_eq!(old.origin(), "/redfish/v1/Chassis/1");
        assert!(!event("x", "y", "OK").is_problem());
        assert_eq!(Action::parse("power_cycle"), Ok(Action::PowerCycle));
        assert!(Action::parse("pray").is_err());
    }
}

//! The business rules, free of HTTP and SQL: statuses, roles, the lifecycle table and the replacement policy.
pub mod carrier;
pub mod diagnosis;
pub mod lifecycle;
pub mod policy;
pub mod redfish;
pub mod reliability;
pub mod signatures;
pub mod sla;
pub mod swap;
pub mod types;

pub use lifecycle::{Field, Guard, Notice, Refusal, Status, TRANSITIONS, Transition, UnitEffect};
pub use types::{Condition, Location, RmaNumber, Role, Serial, Severity};

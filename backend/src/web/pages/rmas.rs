//! `/rmas`, `/rmas/new` and `/rmas/{number}`: the list, the new-case form, and the detail page with
//! a form for each transition the viewer may make, read from the lifecycle table.
use super::{Chrome, PageError, SignedForm, Viewer, done, form_values, render};
use crate::domain::lifecycle::{Field, Status};
use crate::domain::policy::TestResult;
use crate::domain::{Role, Severity};
use crate::error::AppError;
use crate::services::Page;
use crate::services::rmas::{self, OpenRma, RemovedPart, RmaFilter, TransitionRequest};
use crate::services::units::{self, SiteChoice};
use crate::services::views::{EventView, RmaView, UnitView};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rmas", get(list))
        .route("/rmas/new", get(new_form).post(create))
        .route("/rmas/{number}", get(detail))
        .route("/rmas/{number}/transition", post(transition))
        .route("/rmas/{number}/watch", post(toggle_watch))
        .route("/rmas/{number}/dead-on-arrival", post(report_dead_on_arrival))
        .route("/rmas/{number}/checks", post(record_check))
        .route("/rmas/{number}/refs", post(save_refs))
        .route(
            "/rmas/{number}/attachments",
            post(upload_evidence).layer(axum::extract::DefaultBodyLimit::max(
                crate::services::attachments::MAX_BYTES + 64 * 1024,
            )),
        )
}

#[derive(Serialize)]
struct ListPage {
    chrome: Chrome,
    /// Open RMAs with a breached or at-risk clock, the most urgent first.
    urgent: Vec<RmaView>,
    /// How many there are in all.
    urgent_total: usize,
    /// What the page is current with (`GET /live`).
    stamp: String,
    page: Page<RmaView>,
    filter: HashMap<String, String>,
    next_url: Option<String>,
    statuses: Vec<&'static str>,
    severities: Vec<&'static str>,
    sites: Vec<SiteChoice>,
    depots: [&'static str; 2],
    organizations: Vec<&'static str>,
}

/// How many of the breached and at-risk RMAs the list shows above its page.
const URGENT_SHOWN: usize = 10;

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Html<String>, PageError> {
    let get = |k: &str| raw.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let filter = RmaFilter {
        status: get("status"),
        site: get("site"),
        severity: get("severity"),
        organization: get("organization"),
        depot: get("depot"),
        q: get("q"),
        sort: get("sort"),
        limit: get("limit")
            .map(|l| {
                l.parse()
                    .map_err(|_| AppError::Malformed("limit must be a number".into()))
            })
            .transpose()?,
        cursor: get("cursor"),
    };
    // Breached and at-risk cases first: on the first page, the most urgent of the open ones that
    // the filter's status, site, severity, customer and depot let through (a search shows what it
    // found). The page's reads are independent: they run side by side.
    let narrowing = rmas::Narrowing::of(&state.db, &viewer.actor, &filter).await?;
    let first_page = filter.cursor.is_none() && filter.q.is_none();
    let urgent = async {
        match first_page {
            true => Ok(Some(
                crate::services::dashboard::urgent(&state.db, &narrowing, URGENT_SHOWN).await?,
            )),
            false => Ok::<_, AppError>(None),
        }
    };
    let stamp = crate::services::dashboard::stamp(&state.db, &viewer.actor);
    let page = rmas::list_within(&state.db, &narrowing, filter);
    let sites = units::visible_sites(&state.db, &viewer.actor);
    let (urgent, stamp, page, sites) = tokio::try_join!(urgent, stamp, page, sites)?;
    let (urgent, urgent_total) = urgent.map_or((vec![], 0), |u| (u.shown, u.total));
    let kept: HashMap<String, String> = raw
        .into_iter()
        .filter(|(k, v)| k != "cursor" && !v.trim().is_empty())
        .collect();
    let next_url = page.next_cursor.as_ref().map(|c| {
        let mut params: Vec<(String, String)> = kept.clone().into_iter().collect();
        params.sort();
        params.push(("cursor".into(), c.clone()));
        format!("/rmas?{}", serde_urlencoded::to_string(&params).unwrap_or_default())
    });
    let organizations = if viewer.role == Role::DcTech {
        vec![]
    } else {
        vec!["coreweave", "xai"]
    };
    render(
        "rmas/list.html",
        &ListPage {
            chrome: Chrome::new(viewer, "rmas"),
            urgent,
            urgent_total,
            stamp,
            page,
            filter: form_values(
                kept,
                &["status", "site", "severity", "organization", "depot", "q", "sort"],
            ),
            next_url,
            statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
            severities: Severity::ALL.iter().map(|s| s.as_str()).collect(),
            sites,
            depots: ["CAM", "SAC"],
            organizations,
        },
    )
}

/// One input of a transition form.
#[derive(Serialize)]
struct FormField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    required: bool,
    value: String,
    options: Vec<&'static str>,
    help: &'static str,
}

/// The form for one transition the viewer may make.
#[derive(Serialize)]
struct TransitionForm {
    to: &'static str,
    label: String,
    fields: Vec<FormField>,
    error: Option<String>,
}

/// Label, input kind and help of `field` in the form that moves an RMA `to` a status.
fn describe(field: Field, to: Status) -> (&'static str, &'static str, &'static str) {
    match field {
        // At approval the depot is where the replacement is reserved, not where the return goes.
        Field::Depot if to == Status::Approved => (
            "Reserve the replacement at",
            "select",
            "leave empty: the site's own depot if it has the part, else the other",
        ),
        Field::Note => ("Note", "textarea", ""),
        Field::Resolution => ("Resolution", "textarea", "reseat, power cycle, firmware, cabling…"),
        Field::FaultCode => ("Fault code", "text", "e.g. DIMM_UE, FAN_TACH_LOW"),
        Field::ReplacementKind => (
            "Replacement",
            "select",
            "C-nodes are replaced whole; D-node fans, PSUs and SSDs as FRUs",
        ),
        Field::ReplacementPart => ("FRU part number", "text", "with fru: FAN-80MM, PSU-2000W, SSD-30T"),
        Field::ReplacementSerial => ("Replacement serial (from your stock)", "text", "scan the unit you ship"),
        Field::Carrier => ("Carrier", "select", ""),
        Field::TrackingNumber => ("Tracking number", "text", ""),
        Field::SpareSerial => ("On-site spare serial", "text", "a spare kept loose at the site"),
        Field::DeliveredAt => ("Delivered at (UTC)", "datetime", "leave empty for now"),
        Field::InstalledSerial => ("Serial installed", "text", ""),
        Field::PulledSerial => (
            "Serial pulled",
            "text",
            "the failed unit (the failed FRU for an FRU swap)",
        ),
        Field::Depot => ("Return to depot", "select", ""),
        Field::ScannedSerial => ("Scanned serial", "text", "scan the unit in the box"),
        Field::Finding => ("Finding", "textarea", ""),
        Field::Vendor => ("Vendor", "text", ""),
        Field::VendorReference => ("Vendor RMA reference", "text", ""),
        Field::VendorReturnReference => ("Vendor return reference", "text", ""),
        Field::PartsConsumed => (
            "Parts consumed (serials from stock)",
            "textarea",
            "one serial per line; leave empty if none",
        ),
        Field::TestResults => ("Test results", "textarea", "one per line: name: pass  or  name: fail"),
        Field::Reason => ("Reason", "textarea", ""),
        Field::Packages => ("Packages", "number", "boxes in this shipment; 1 if empty"),
        Field::WeightKg => ("Weight (kg)", "number", ""),
        Field::BagNumber => (
            "Sealed-bag number",
            "text",
            "for a unit holding customer data: the tamper-evident bag it travels in",
        ),
        Field::PartsRemoved => (
            "Parts removed",
            "textarea",
            "one per line: SERIAL, or SERIAL PART-NUMBER if depot does not know it yet",
        ),
        Field::SanitizationMethod => (
            "Sanitization (NIST 800-88)",
            "select",
            "required for a unit holding customer data",
        ),
        Field::SanitizationCertificate => ("Sanitization certificate id", "text", ""),
        Field::KeepYourDrive => (
            "Keep your drive",
            "select",
            "yes: the customer keeps and destroys the failed drive; nothing ships back",
        ),
        Field::DestructionCertificate => (
            "Destruction certificate",
            "text",
            "the customer's certificate that the kept drive was destroyed",
        ),
        Field::FindingCodes => (
            "Finding codes",
            "text",
            "codes from the findings catalog, separated by spaces or commas",
        ),
        Field::LaborMinutes => ("Technician time (minutes)", "number", "time this step took"),
    }
}

fn options(field: Field) -> Vec<&'static str> {
    match field {
        Field::ReplacementKind => vec!["whole_unit", "fru"],
        Field::Carrier => vec!["UPS", "FedEx", "DHL", "other"],
        Field::Depot => vec!["CAM", "SAC"],
        Field::SanitizationMethod => crate::domain::policy::SANITIZATION_METHODS.to_vec(),
        Field::KeepYourDrive => vec!["no", "yes"],
        _ => vec![],
    }
}

fn default_value(field: Field, to: Status, rma: &RmaView, scanned: Option<&str>) -> String {
    match field {
        Field::Depot if to == Status::Approved => String::new(),
        Field::ReplacementSerial => rma.reserved.as_ref().map(|r| r.serial.clone()).unwrap_or_default(),
        Field::InstalledSerial => rma.replacement_serial.clone().unwrap_or_default(),
        Field::PulledSerial if rma.replacement_kind.as_deref() != Some("fru") => rma.serial.clone(),
        Field::Depot => rma.return_depot.clone(),
        Field::ScannedSerial => scanned.unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

fn forms(
    rma: &RmaView,
    role: Role,
    scanned: Option<&str>,
    entered: Option<(&str, &HashMap<String, String>, String)>,
) -> Vec<TransitionForm> {
    let Ok(status) = rma.status.parse::<Status>() else {
        return vec![];
    };
    crate::domain::lifecycle::available(status, role, rma.keep_your_drive)
        .map(|t| {
            let mine = entered.as_ref().filter(|(to, _, _)| *to == t.to.as_str());
            let fields = t
                .required
                .iter()
                .map(|f| (f, true))
                .chain(t.optional.iter().map(|f| (f, false)))
                .map(|(f, required)| {
                    let (label, kind, help) = describe(*f, t.to);
                    let value = match mine {
                        Some((_, values, _)) => values.get(f.as_str()).cloned().unwrap_or_default(),
                        None => default_value(*f, t.to, rma, scanned),
                    };
                    // parts_consumed may be empty: present but not required to be filled in.
                    let required = required && *f != Field::PartsConsumed;
                    FormField {
                        name: f.as_str(),
                        label,
                        kind,
                        required,
                        value,
                        options: options(*f),
                        help,
                    }
                })
                .collect();
            TransitionForm {
                to: t.to.as_str(),
                label: t.to.as_str().replace('_', " "),
                fields,
                error: mine.map(|(_, _, e)| e.clone()),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct ExternalRef {
    name: String,
    value: String,
    link: bool,
}

#[derive(Serialize)]
struct DetailPage {
    watching: bool,
    checks: Vec<crate::services::diagnosis::CheckView>,
    fix_record: Vec<crate::services::reliability::FixRow>,
    can_report_dead_on_arrival: bool,
    attachments: Vec<crate::services::attachments::AttachmentView>,
    can_check: bool,
    can_edit_refs: bool,
    /// The return label is one of the viewer's next steps (the site ships the failed unit back).
    return_label_due: bool,
    refs_form: HashMap<String, String>,
    /// Why the references were not saved (what was typed is in `refs_form`).
    refs_error: Option<String>,
    chrome: Chrome,
    rma: RmaView,
    events: Vec<EventView>,
    /// The findings catalog, when a form takes finding codes: the list they are picked from.
    finding_codes: Vec<crate::services::repairs::FindingCode>,
    /// Older events exist than those shown.
    older_events: bool,
    /// When the viewer ships the replacement: what is on their depot's shelf of its part.
    shelf: Option<Shelf>,
    unplaced_error: Option<String>,
    forms: Vec<TransitionForm>,
    refs: Vec<ExternalRef>,
}

/// The spares a depot technician can ship for an RMA: on their depot's shelf, of the part the RMA
/// needs, free or reserved for this RMA (that one first).
#[derive(Serialize)]
struct Shelf {
    depot: String,
    part: String,
    units: Vec<UnitView>,
}

/// The most spares the picker lists; a scanner takes any other serial.
const SHELF_SHOWN: u64 = 100;

async fn shelf_for(state: &AppState, viewer: &Viewer, rma: &RmaView) -> Result<Option<Shelf>, PageError> {
    let Some(depot) = viewer.depot.clone() else {
        return Ok(None);
    };
    let part = rma.replacement_part.clone().unwrap_or_else(|| rma.part.clone());
    let filter = units::UnitFilter {
        depot: Some(depot.clone()),
        part: Some(part.clone()),
        limit: Some(SHELF_SHOWN),
        ..Default::default()
    };
    let mut units: Vec<UnitView> = units::stock(&state.db, &viewer.actor, filter)
        .await?
        .items
        .into_iter()
        .filter(|u| u.reserved_for.as_deref().is_none_or(|n| n == rma.number))
        .collect();
    units.sort_by_key(|u| u.reserved_for.is_none());
    Ok(Some(Shelf { depot, part, units }))
}

#[derive(Deserialize)]
struct DetailQuery {
    scanned: Option<String>,
    /// `all`: the whole history instead of the latest entries.
    history: Option<String>,
}

/// History entries the page shows unless asked for all of them.
const RECENT_HISTORY: u64 = 50;
/// The most a page shows of one history at once (the API pages the rest).
const WHOLE_HISTORY: u64 = 5000;

async fn detail_page(
    state: &AppState,
    viewer: Viewer,
    number: &str,
    scanned: Option<&str>,
    whole_history: bool,
    entered: Option<(&str, &HashMap<String, String>, String)>,
) -> Result<Html<String>, PageError> {
    let rma = rmas::get(&state.db, &viewer.actor, number).await?;
    let shown = if whole_history { WHOLE_HISTORY } else { RECENT_HISTORY };
    let (events, older_events) = rmas::recent_events(&state.db, &viewer.actor, number, shown).await?;
    // The references form's refusal stays with that form, with what was typed in it.
    let (refs_entered, entered) = match entered {
        Some((REFS_FORM, values, error)) => (Some((values.clone(), error)), None),
        other => (None, other),
    };
    let stale = entered.as_ref().map(|(to, _, e)| (to.to_string(), e.clone()));
    let forms = forms(&rma, viewer.role, scanned, entered);
    // An error whose form is no longer offered (the RMA moved on) is shown above the forms.
    let unplaced_error = stale
        .filter(|(to, _)| !forms.iter().any(|f| f.to == to.as_str()))
        .map(|(_, e)| e);
    let offered = |field: Field| forms.iter().flat_map(|f| &f.fields).any(|f| f.name == field.as_str());
    let takes_codes = offered(Field::FindingCodes);
    let shelf = match offered(Field::ReplacementSerial) {
        true => shelf_for(state, &viewer, &rma).await?,
        false => None,
    };
    let finding_codes = match takes_codes {
        true => crate::services::repairs::catalog(&state.db).await?,
        false => vec![],
    };
    let model = rmas::find_visible(&state.db, &viewer.actor, number).await?;
    let checks = crate::services::diagnosis::checks_of(&state.db, &model).await?;
    let attachments = crate::services::attachments::list(&state.db, &viewer.actor, number).await?;
    let can_check = viewer.role == Role::FieldEngineer && matches!(rma.status.as_str(), "reported" | "diagnosing");
    let can_edit_refs = viewer.is(&[Role::FieldEngineer, Role::DcTech, Role::Admin]);
    // While the engineer chooses a field action, what held before on this part.
    let fix_record = if can_check {
        let figures = crate::web::reports::figures_for(state, &viewer.actor).await?;
        figures
            .fixes(crate::services::reliability::FixBy::Action, Some(&rma.part))?
            .to_vec()
    } else {
        vec![]
    };
    let can_report_dead_on_arrival = viewer.is(&[Role::DcTech, Role::FieldEngineer, Role::Admin])
        && rma.dead_on_arrival_at.is_none()
        && rma.shipments.iter().flatten().any(|s| s.direction == "outbound");
    let return_label_due = viewer.is(&[Role::DcTech, Role::FieldEngineer, Role::Admin])
        && rma
            .status
            .parse()
            .is_ok_and(|status| crate::services::labels::return_is_due(status, rma.keep_your_drive));
    let (refs_values, refs_error) = match refs_entered {
        Some((typed, error)) => (typed, Some(error)),
        None => (
            rma.external_refs
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            None,
        ),
    };
    let refs_form = form_values(refs_values, &REFS_FIELDS);
    let watching = rmas::is_watching(&state.db, &viewer.actor, rma.id).await?;
    let refs = rma
        .external_refs
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = v.as_str().unwrap_or_default().to_string();
                    let link = value.starts_with("https://") || value.starts_with("http://");
                    ExternalRef {
                        name: k.replace('_', " "),
                        value,
                        link,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    render(
        "rmas/detail.html",
        &DetailPage {
            watching,
            checks,
            fix_record,
            can_report_dead_on_arrival,
            attachments,
            can_check,
            can_edit_refs,
            return_label_due,
            refs_form,
            refs_error,
            chrome: Chrome::new(viewer, "rmas"),
            rma,
            events,
            finding_codes,
            older_events,
            shelf,
            unplaced_error,
            forms,
            refs,
        },
    )
}

async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(number): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Html<String>, PageError> {
    detail_page(
        &state,
        viewer,
        &number,
        q.scanned.as_deref(),
        q.history.as_deref() == Some("all"),
        None,
    )
    .await
}

/// Turns a posted transition form into the API's request. Values that do not read are refused
/// together (422 like the API), so a form's problems are told at once.
fn transition_request(form: &HashMap<String, String>) -> Result<TransitionRequest, AppError> {
    let text = |k: &str| form.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut problems: Vec<String> = vec![];
    // A value read, or nothing with its problem noted.
    fn read<T>(problems: &mut Vec<String>, outcome: Result<Option<T>, String>) -> Option<T> {
        outcome.unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    }
    let version = read(
        &mut problems,
        text("version")
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| "version is missing".to_string()),
    );
    let delivered_at = read(
        &mut problems,
        text("delivered_at")
            .map(|v| {
                NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M")
                    .map(|n| Utc.from_utc_datetime(&n))
                    .or_else(|_| chrono::DateTime::parse_from_rfc3339(&v).map(|d| d.with_timezone(&Utc)))
                    .map_err(|_| format!("delivered_at `{v}` is not a date and time"))
            })
            .transpose(),
    );
    let whole_number = |name: &str| {
        text(name)
            .map(|v| v.parse().map_err(|_| format!("{name} `{v}` is not a whole number")))
            .transpose()
    };
    let labor_minutes = read(&mut problems, whole_number("labor_minutes"));
    let packages = read(&mut problems, whole_number("packages"));
    let weight_kg = read(
        &mut problems,
        text("weight_kg")
            .map(|v| v.parse().map_err(|_| format!("weight_kg `{v}` is not a number")))
            .transpose(),
    );
    let test_results = read(
        &mut problems,
        text("test_results").map(|v| read_test_results(&v)).transpose(),
    );
    let keep_your_drive = read(
        &mut problems,
        match text("keep_your_drive").as_deref() {
            None => Ok(None),
            Some("yes" | "true" | "on") => Ok(Some(true)),
            Some("no" | "false") => Ok(Some(false)),
            Some(v) => Err(format!("keep_your_drive `{v}`: choose yes or no")),
        },
    );
    let (Some(version), true) = (version, problems.is_empty()) else {
        return Err(AppError::invalid(problems.join("; ")));
    };
    let words = |v: &String| -> Vec<String> {
        v.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let parts_removed = text("parts_removed").map(|v| {
        v.lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let serial = words.next()?.trim_end_matches(',').to_string();
                Some(RemovedPart {
                    serial,
                    part: words.next().map(str::to_string),
                })
            })
            .collect()
    });
    Ok(TransitionRequest {
        to: text("to").unwrap_or_default(),
        bag_number: text("bag_number"),
        parts_removed,
        sanitization_method: text("sanitization_method"),
        sanitization_certificate: text("sanitization_certificate"),
        keep_your_drive,
        destruction_certificate: text("destruction_certificate"),
        finding_codes: text("finding_codes").as_ref().map(words),
        labor_minutes,
        version,
        note: text("note"),
        resolution: text("resolution"),
        fault_code: text("fault_code"),
        replacement_kind: text("replacement_kind"),
        replacement_part: text("replacement_part"),
        replacement_serial: text("replacement_serial"),
        carrier: text("carrier"),
        tracking_number: text("tracking_number"),
        spare_serial: text("spare_serial"),
        delivered_at,
        installed_serial: text("installed_serial"),
        pulled_serial: text("pulled_serial"),
        depot: text("depot"),
        scanned_serial: text("scanned_serial"),
        finding: text("finding"),
        vendor: text("vendor"),
        vendor_reference: text("vendor_reference"),
        vendor_return_reference: text("vendor_return_reference"),
        parts_consumed: form.get("parts_consumed").map(words),
        test_results,
        reason: text("reason"),
        packages,
        weight_kg,
    })
}

/// Test results as typed, one per line: `name: pass` or `name: fail` (or `name pass`).
fn read_test_results(typed: &str) -> Result<Vec<TestResult>, String> {
    typed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            // The colon is punctuation, not part of the name.
            let (name, result) = line
                .rsplit_once(':')
                .or_else(|| line.rsplit_once(char::is_whitespace))
                .unwrap_or((line, ""));
            let passed = match result.trim().to_lowercase().as_str() {
                "pass" | "passed" | "ok" => true,
                "fail" | "failed" => false,
                _ => return Err(format!("test result `{line}`: write `name: pass` or `name: fail`")),
            };
            Ok(TestResult {
                name: name.trim().to_string(),
                passed,
                measurements: None,
            })
        })
        .collect()
}

async fn transition(
    State(state): State<AppState>,
    Path(number): Path<String>,
    SignedForm { viewer, form }: SignedForm<HashMap<String, String>>,
) -> Response {
    let result = match transition_request(&form) {
        Ok(req) => rmas::transition(&state.db, &viewer.actor, &number, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(rma) => done(
            &format!("/rmas/{}", rma.number),
            &format!("{} moved to {}.", rma.number, rma.status.replace('_', " ")),
        ),
        // Not visible, or the RMA is gone: the plain error page.
        Err(err) => {
            let to = form.get("to").cloned().unwrap_or_default();
            refused_on_page(&state, viewer, &number, &to, &form, err).await
        }
    }
}

/// A form of the RMA page refused: the page again, showing why in that form (a stale version told
/// as who moved the RMA on) with what was typed. An RMA not to be seen, or a failure of depot's own,
/// is the plain error page.
async fn refused_on_page(
    state: &AppState,
    viewer: Viewer,
    number: &str,
    form_key: &str,
    form: &HashMap<String, String>,
    err: AppError,
) -> Response {
    if matches!(
        err,
        AppError::NotFound(_) | AppError::Internal(_) | AppError::Unavailable(_)
    ) {
        return PageError(err).into_response();
    }
    let status = err.status();
    let message = match err {
        AppError::VersionConflict(_) => moved_on(state, &viewer, number, form).await,
        other => other.to_string(),
    };
    match detail_page(state, viewer, number, None, false, Some((form_key, form, message))).await {
        Ok(html) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

/// What a stale submit is told: who moved the RMA on, to what and when, and that what they typed is
/// kept (the form is filled again with it, or listed when that step is no longer open).
async fn moved_on(state: &AppState, viewer: &Viewer, number: &str, form: &HashMap<String, String>) -> String {
    let latest = rmas::recent_events(&state.db, &viewer.actor, number, 1).await.ok();
    let what = match latest.as_ref().and_then(|(events, _)| events.last()) {
        Some(e) => {
            let change = match &e.to {
                Some(to) => format!("moved it to {}", to.replace('_', " ")),
                None => format!("recorded {}", e.kind.replace('_', " ")),
            };
            format!("{} {change} at {} UTC", e.actor, e.at.format("%H:%M"))
        }
        None => "someone changed it".into(),
    };
    let mut typed: Vec<String> = form
        .iter()
        .filter(|(k, v)| !["csrf", "version", "to"].contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| format!("{}: {}", k.replace('_', " "), v.trim()))
        .collect();
    typed.sort();
    let kept = match typed.is_empty() {
        true => String::new(),
        false => format!(" What you typed: {}.", typed.join("; ")),
    };
    format!(
        "This RMA moved on while you were editing: {what}. Nothing of yours was saved; the page now shows it as it \
         is.{kept}"
    )
}

#[derive(Serialize)]
struct NewPage {
    chrome: Chrome,
    sites: Vec<SiteChoice>,
    site: String,
    nodes: Vec<UnitView>,
    severities: Vec<&'static str>,
    form: HashMap<String, String>,
    error: Option<String>,
    /// The open RMA of the serial asked for: offered instead of a second case.
    existing: Option<String>,
}

/// The New-case form again, with the refusal and what was typed (and the open case it names).
async fn refused_new(
    state: &AppState,
    viewer: Viewer,
    form: HashMap<String, String>,
    err: AppError,
    existing: Option<String>,
) -> Response {
    let status = err.status();
    match new_page(state, viewer, form, Some(err.to_string()), existing).await {
        Ok(html) => (status, html).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn new_page(
    state: &AppState,
    viewer: Viewer,
    form: HashMap<String, String>,
    error: Option<String>,
    existing: Option<String>,
) -> Result<Html<String>, PageError> {
    viewer
        .actor
        .require(&[Role::FieldEngineer, Role::DcTech, Role::Admin], "open an RMA")?;
    let sites = units::visible_sites(&state.db, &viewer.actor).await?;
    let site = form.get("site").cloned().unwrap_or_default();
    let nodes = if site.is_empty() {
        vec![]
    } else {
        units::nodes_at_site(&state.db, &viewer.actor, &site).await?
    };
    let severities = Severity::ALL.iter().map(|s| s.as_str()).collect();
    let keys = [
        "slot_serial",
        "serial",
        "severity",
        "symptom",
        "cs_ticket",
        "engineering_ticket",
        "chat_thread",
    ];
    let form = form_values(form, &keys);
    render(
        "rmas/new.html",
        &NewPage {
            chrome: Chrome::new(viewer, "new"),
            sites,
            site,
            nodes,
            severities,
            form,
            error,
            existing,
        },
    )
}

async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>, PageError> {
    new_page(&state, viewer, q, None, None).await
}

async fn create(
    State(state): State<AppState>,
    SignedForm { viewer, form }: SignedForm<HashMap<String, String>>,
) -> Response {
    let text = |k: &str| form.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    // One source of the serial: a node chosen and another serial typed is a question, not a guess.
    let (chosen, typed) = (text("slot_serial"), text("serial"));
    if !chosen.is_empty() && !typed.is_empty() && !chosen.eq_ignore_ascii_case(&typed) {
        let err = format!("you chose node {chosen} and typed serial {typed}: keep one of them");
        return refused_new(&state, viewer, form, AppError::invalid(err), None).await;
    }
    let serial = if typed.is_empty() { chosen } else { typed };
    match rmas::open_rma_of(&state.db, &viewer.actor, &serial).await {
        Ok(Some(open)) => {
            let err = AppError::Conflict(format!(
                "{} already has an open case, {} ({}): work on it there rather than open a second one",
                serial.to_uppercase(),
                open.number,
                open.status.replace('_', " ")
            ));
            return refused_new(&state, viewer, form, err, Some(open.number)).await;
        }
        Ok(None) => {}
        Err(e) => return PageError(e).into_response(),
    }
    let mut refs = serde_json::Map::new();
    for key in ["cs_ticket", "engineering_ticket", "chat_thread"] {
        if !text(key).is_empty() {
            refs.insert(key.into(), json!(text(key)));
        }
    }
    let input = OpenRma {
        site: text("site"),
        serial,
        severity: text("severity"),
        symptom: text("symptom"),
        external_refs: Some(refs.into()),
    };
    match rmas::open(&state.db, &viewer.actor, input).await {
        Ok(rma) => done(
            &format!("/rmas/{}", rma.number),
            &format!("Opened {} for {} at {}.", rma.number, rma.serial, rma.site),
        ),
        Err(err @ (AppError::Unprocessable { .. } | AppError::Conflict(_))) => {
            refused_new(&state, viewer, form, err, None).await
        }
        Err(err) => PageError(err).into_response(),
    }
}

#[derive(Deserialize)]
struct WatchForm {
    watch: String,
}

async fn toggle_watch(
    State(state): State<AppState>,
    Path(number): Path<String>,
    SignedForm { viewer, form }: SignedForm<WatchForm>,
) -> Result<Response, PageError> {
    let watching = rmas::set_watching(&state.db, &viewer.actor, &number, form.watch == "on").await?;
    let said = match watching {
        true => "You will get an email at each of its changes.",
        false => "You no longer get its emails.",
    };
    Ok(done(&format!("/rmas/{}", number.trim()), said))
}

#[derive(Deserialize)]
struct DeadOnArrivalForm {
    #[serde(default)]
    note: Option<String>,
}

async fn report_dead_on_arrival(
    State(state): State<AppState>,
    Path(number): Path<String>,
    SignedForm { viewer, form }: SignedForm<DeadOnArrivalForm>,
) -> Result<Response, PageError> {
    let base_url = &state.settings.base_url;
    crate::services::quality::report_dead_on_arrival(&state.db, base_url, &viewer.actor, number.trim(), form.note)
        .await?;
    let said = "Reported dead on arrival; the shipping depot has been told.";
    Ok(done(&format!("/rmas/{}", number.trim()), said))
}

#[derive(Deserialize)]
struct CheckForm {
    step: String,
    result: String,
    #[serde(default)]
    note: Option<String>,
}

/// Records a checklist step from the RMA page.
async fn record_check(
    State(state): State<AppState>,
    Path(number): Path<String>,
    SignedForm { viewer, form }: SignedForm<CheckForm>,
) -> Result<Response, PageError> {
    let input = crate::services::diagnosis::RecordCheck {
        step: form.step,
        result: form.result,
        note: form.note,
    };
    let step = input.step.replace('_', " ");
    crate::services::diagnosis::record(&state.db, &viewer.actor, &number, input).await?;
    Ok(done(
        &format!("/rmas/{}#checklist", number.trim()),
        &format!("Recorded: {step}."),
    ))
}

/// The references form, among the page's forms (as a transition's `to` names its form).
const REFS_FORM: &str = "refs";
const REFS_FIELDS: [&str; 3] = ["cs_ticket", "engineering_ticket", "chat_thread"];

/// Saves the RMA's external references; a refusal (a stale version, a bad value) shows the page
/// again with what was typed and why.
async fn save_refs(
    State(state): State<AppState>,
    Path(number): Path<String>,
    SignedForm { viewer, form }: SignedForm<HashMap<String, String>>,
) -> Response {
    let result = match form.get("version").and_then(|v| v.trim().parse().ok()) {
        Some(version) => save_refs_from_form(&state, &viewer, &number, &form, version).await,
        None => Err(AppError::invalid("version is missing")),
    };
    match result {
        Ok(_) => done(&format!("/rmas/{}", number.trim()), "References saved."),
        Err(err) => refused_on_page(&state, viewer, &number, REFS_FORM, &form, err).await,
    }
}

/// The form's three references replace those keys only: the others an integration or an alarm set
/// (a ticket, an incident link) stay as they are.
async fn save_refs_from_form(
    state: &AppState,
    viewer: &Viewer,
    number: &str,
    form: &HashMap<String, String>,
    version: i32,
) -> Result<RmaView, AppError> {
    let mut refs = rmas::find_visible(&state.db, &viewer.actor, number)
        .await?
        .external_refs
        .as_object()
        .cloned()
        .unwrap_or_default();
    for key in REFS_FIELDS {
        match form.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(value) => refs.insert(key.to_string(), json!(value)),
            None => refs.remove(key),
        };
    }
    let changes = crate::services::rmas::RmaChanges {
        external_refs: refs.into(),
        version: Some(version),
    };
    rmas::update(&state.db, &viewer.actor, number, changes).await
}

/// Uploads evidence from the RMA page: a multipart form whose `csrf` field comes before the file.
async fn upload_evidence(
    State(state): State<AppState>,
    Path(number): Path<String>,
    viewer: Viewer,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, PageError> {
    let mut multipart = multipart.map_err(|e| AppError::Malformed(format!("bad upload: {e}")))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge(crate::services::attachments::MAX_BYTES)
        } else {
            AppError::Malformed(e.body_text())
        }
    };
    let mut csrf_ok = false;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => {
                csrf_ok = super::constant_time_eq(field.text().await.map_err(bad)?.as_bytes(), viewer.csrf.as_bytes())
            }
            Some("file") if csrf_ok => {
                let name = field.file_name().unwrap_or("attachment").to_string();
                let bytes = field.bytes().await.map_err(bad)?;
                crate::services::attachments::upload(&state.db, &viewer.actor, &number, &name, bytes.to_vec()).await?;
                let said = format!("Uploaded {name}.");
                return Ok(done(&format!("/rmas/{}#evidence", number.trim()), &said));
            }
            _ => {}
        }
    }
    Err(if csrf_ok {
        AppError::invalid("choose a file to upload").into()
    } else {
        AppError::Forbidden("this form has expired or did not come from depot; reload the page and try again".into())
            .into()
    })
}

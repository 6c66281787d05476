//! BMC telemetry: Redfish event subscriptions made on a node's BMC, and the events BMCs send back.
//! An event that reports a problem and matches a rule opens a `reported` RMA with the rule's
//! recommendation, or joins the node's open one (alarm de-duplication); a storm (more than
//! [`STORM_PER_HOUR`] events an hour from one BMC) is folded into one note an hour; a new RMA gets
//! the node's system event log (SEL) attached as evidence.
use crate::config::Settings;
use crate::domain::Role;
use crate::domain::redfish::{self, Action, EventRecord, Node, Recommendation, Rule, STORM_PER_HOUR};
use crate::entities::{bmc_subscription, part, redfish_event, redfish_rule, rma, unit};
use crate::error::{AppError, AppResult};
use crate::services::{Actor, alarms, attachments, history, tokens, tracking};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// The integration user BMCs act as (their subscription carries one of its tokens).
pub const BMC_ACTOR: &str = "redfish";

/// A rule as the admin pages and API show it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleRow {
    /// Rules are tried in this order; the first match wins.
    pub position: i32,
    #[serde(flatten)]
    pub rule: Rule,
}

/// The rules, in the order they are tried.
pub async fn rules(db: &DatabaseConnection) -> AppResult<Vec<RuleRow>> {
    redfish_rule::Entity::find()
        .order_by_asc(redfish_rule::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            Ok(RuleRow {
                position: r.position,
                rule: Rule {
                    action: Action::parse(&r.action).map_err(|e| anyhow::anyhow!(e))?,
                    message_id_contains: r.message_id_contains,
                    origin_contains: r.origin_contains,
                    fault_code: r.fault_code,
                    severity: r.severity,
                    part: r.part,
                    description: r.description,
                },
            })
        })
        .collect()
}

/// Sets the rule at `row.position` (a new position adds one); admins only.
pub async fn save_rule(db: &DatabaseConnection, actor: &Actor, row: RuleRow) -> AppResult<()> {
    actor.require(&[Role::Admin], "edit the BMC event rules")?;
    let r = &row.rule;
    if r.message_id_contains.trim().is_empty() && r.origin_contains.trim().is_empty() {
        return Err(AppError::invalid(
            "a rule names a MessageId text, an origin text, or both",
        ));
    }
    if r.fault_code.trim().is_empty() || r.description.trim().is_empty() {
        return Err(AppError::invalid("a rule needs a fault code and a description"));
    }
    let severity: crate::domain::Severity = r.severity.trim().parse().map_err(AppError::invalid)?;
    let part = r
        .part
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_uppercase);
    match (r.action, &part) {
        (Action::ReplaceFru, None) => return Err(AppError::invalid("replace_fru names the FRU part")),
        (Action::ReplaceFru, Some(number)) => {
            let known = part::Entity::find()
                .filter(part::Column::Number.eq(number))
                .one(db)
                .await?;
            if known.is_none() {
                return Err(AppError::invalid(format!("unknown part `{number}`")));
            }
        }
        _ => {}
    }
    let existing = redfish_rule::Entity::find()
        .filter(redfish_rule::Column::Position.eq(row.position))
        .one(db)
        .await?;
    let is_new = existing.is_none();
    let mut am = match existing {
        Some(e) => e.into(),
        None => redfish_rule::ActiveModel {
            id: Set(Uuid::now_v7()),
            position: Set(row.position),
            ..Default::default()
        },
    };
    am.message_id_contains = Set(r.message_id_contains.trim().into());
    am.origin_contains = Set(r.origin_contains.trim().into());
    am.fault_code = Set(r.fault_code.trim().to_uppercase());
    am.severity = Set(severity.as_str().into());
    am.action = Set(r.action.as_str().into());
    am.part = Set(part.filter(|_| r.action == Action::ReplaceFru));
    am.description = Set(r.description.trim().into());
    match is_new {
        true => drop(am.insert(db).await?),
        false => drop(am.update(db).await?),
    }
    Ok(())
}

/// Removes the rule at `position`; admins only.
pub async fn delete_rule(db: &DatabaseConnection, actor: &Actor, position: i32) -> AppResult<()> {
    actor.require(&[Role::Admin], "edit the BMC event rules")?;
    redfish_rule::Entity::delete_many()
        .filter(redfish_rule::Column::Position.eq(position))
        .exec(db)
        .await?;
    Ok(())
}

/// What an event payload did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Intake {
    /// 201 a new RMA, 200 otherwise.
    #[serde(skip)]
    pub status: u16,
    pub serial: String,
    /// Events not seen before.
    pub recorded: usize,
    /// The RMA opened or joined, if an event called for one.
    pub rma: Option<String>,
    pub recommendation: Option<Recommendation>,
    /// More than the storm limit this hour: folded into one note.
    pub storm: bool,
}

/// A Redfish `Event` payload (DSP0268 `Event` resource).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventPayload {
    context: Option<String>,
    #[serde(default)]
    events: Vec<EventRecord>,
}

fn severity_rank(s: &str) -> u8 {
    s.trim_start_matches("sev").parse().unwrap_or(9)
}

/// Takes a BMC's `Event` payload; `Context` is the node's serial.
pub async fn intake(
    db: &DatabaseConnection,
    settings: &Settings,
    http: &reqwest::Client,
    actor: &Actor,
    body: Value,
) -> AppResult<Intake> {
    actor.require(&[Role::Integration], "report BMC events")?;
    let payload: EventPayload =
        serde_json::from_value(body).map_err(|e| AppError::invalid(format!("not a Redfish Event: {e}")))?;
    let serial = payload
        .context
        .map(|c| c.trim().to_uppercase())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AppError::invalid("Context (the node's serial, set at subscription) is required"))?;
    if payload.events.is_empty() {
        return Err(AppError::invalid("Events is empty"));
    }
    let node = unit::Entity::find()
        .filter(unit::Column::Serial.eq(&serial))
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid(format!("Context `{serial}` is no unit depot knows")))?;
    let node_part = part::Entity::find_by_id(node.part_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("unit without its part"))?;
    let now = Utc::now();
    let hour_ago = now - Duration::hours(1);
    let before = redfish_event::Entity::find()
        .filter(redfish_event::Column::Serial.eq(&serial))
        .filter(redfish_event::Column::ReceivedAt.gt(hour_ago))
        .count(db)
        .await?;

    let mut new_ids = vec![];
    let mut problems: Vec<&EventRecord> = vec![];
    for event in &payload.events {
        let at = event.event_timestamp.unwrap_or(now);
        let key = format!(
            "{serial}|{}|{}|{}|{}",
            event.event_id.as_deref().unwrap_or_default(),
            event.message_id,
            event.origin(),
            at.timestamp_micros()
        );
        let id = Uuid::now_v7();
        let row = redfish_event::ActiveModel {
            id: Set(id),
            serial: Set(serial.clone()),
            rma_id: Set(None),
            message_id: Set(event.message_id.clone()),
            severity: Set(event.level().to_string()),
            message: Set(event.message.clone()),
            origin: Set(event.origin()),
            at: Set(at),
            received_at: Set(now),
            event_key: Set(key),
        };
        let inserted = redfish_event::Entity::insert(row)
            .on_conflict(
                OnConflict::column(redfish_event::Column::EventKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        if inserted == 1 {
            new_ids.push(id);
            if event.is_problem() {
                problems.push(event);
            }
        }
    }
    let storm = before + new_ids.len() as u64 > STORM_PER_HOUR;
    let mut intake = Intake {
        status: 200,
        serial: serial.clone(),
        recorded: new_ids.len(),
        rma: None,
        recommendation: None,
        storm,
    };
    if problems.is_empty() {
        // Nothing new to act on (information, or a resent event): say which RMA the node has open.
        intake.rma = rma::Entity::find()
            .filter(rma::Column::UnitId.eq(node.id))
            .filter(rma::Column::ClosedAt.is_null())
            .one(db)
            .await?
            .map(|r| r.number);
        return Ok(intake);
    }
    let rules = rules(db).await?;
    // The most severe matched rule speaks for the payload.
    let matched = problems
        .iter()
        .filter_map(|e| {
            rules
                .iter()
                .find(|r| r.rule.matches(&e.message_id, &e.origin()))
                .map(|r| (&r.rule, *e))
        })
        .min_by_key(|(rule, _)| severity_rank(&rule.severity));
    let recommendation = match matched {
        Some((rule, event)) => {
            let fru = match &rule.part {
                Some(number) => part::Entity::find()
                    .filter(part::Column::Number.eq(number))
                    .one(db)
                    .await?
                    .map(|p| (p.number, p.field_replaceable)),
                None => None,
            };
            let node = Node {
                kind: &node_part.kind,
                fru: fru.as_ref().map(|(n, f)| (n.as_str(), *f)),
            };
            Some(redfish::recommend(rule, &node, event))
        }
        None => None,
    };
    let lead = matched.map_or(problems[0], |(_, e)| e);
    let summary = format!(
        "BMC: {}{}",
        recommendation
            .as_ref()
            .map(|r| format!("{} ", r.fault_code))
            .unwrap_or_default(),
        lead.message.clone().unwrap_or_else(|| lead.message_id.clone())
    );
    let open = rma::Entity::find()
        .filter(rma::Column::UnitId.eq(node.id))
        .filter(rma::Column::ClosedAt.is_null())
        .one(db)
        .await?;
    let rma = match (storm, open) {
        // In a storm the open RMA gets one note an hour, not one per event.
        (true, Some(open)) => {
            let noted = crate::entities::event::Entity::find()
                .filter(crate::entities::event::Column::RmaId.eq(open.id))
                .filter(crate::entities::event::Column::Kind.eq("bmc_storm"))
                .filter(crate::entities::event::Column::At.gt(hour_ago))
                .count(db)
                .await?;
            if noted == 0 {
                let note = format!(
                    "{} events from the BMC of {serial} in the last hour, folded here; latest: {summary}",
                    before + new_ids.len() as u64
                );
                let entry = history::Entry::change(open.id, "bmc_storm", Some(actor), json!({"serial": serial}), now);
                history::append(db, entry.with_note(Some(note))).await?;
            }
            open
        }
        _ => {
            let severity = recommendation.as_ref().map_or("sev3", |r| r.severity.as_str());
            let alarm = json!({"serial": serial, "severity": severity, "summary": summary, "source": "redfish"});
            let taken = alarms::intake(db, actor, &alarm, None).await?;
            intake.status = taken.status;
            let number = taken.body["number"].as_str().unwrap_or_default().to_string();
            rma::Entity::find()
                .filter(rma::Column::Number.eq(number))
                .one(db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the alarm's RMA vanished"))?
        }
    };
    redfish_event::Entity::update_many()
        .col_expr(redfish_event::Column::RmaId, sea_orm::sea_query::Expr::value(rma.id))
        .filter(redfish_event::Column::Id.is_in(new_ids))
        .exec(db)
        .await?;
    if let Some(rec) = &recommendation
        && rma.recommendation.is_none()
    {
        rma::Entity::update_many()
            .col_expr(rma::Column::Recommendation, sea_orm::sea_query::Expr::value(json!(rec)))
            .filter(rma::Column::Id.eq(rma.id))
            .exec(db)
            .await?;
        let entry = history::Entry::change(rma.id, "recommendation", Some(actor), json!(rec), now);
        history::append(
            db,
            entry.with_note(Some(format!("recommended: {}", rec.action.as_str().replace('_', " ")))),
        )
        .await?;
    }
    if intake.status == 201 {
        // After the answer: the BMC waits for nobody while its own log is read back.
        let (db, settings, http, actor, number) = (
            db.clone(),
            settings.clone(),
            http.clone(),
            actor.clone(),
            rma.number.clone(),
        );
        tokio::spawn(async move { attach_sel(&db, &settings, &http, &actor, &number, node.id).await });
    }
    intake.rma = Some(rma.number);
    intake.recommendation = recommendation;
    Ok(intake)
}

/// Pulls the node's system event log from its BMC and attaches it to the RMA. Best effort: an
/// unreachable BMC or a missing subscription leaves a note in the log, not a failed intake.
async fn attach_sel(
    db: &DatabaseConnection,
    settings: &Settings,
    http: &reqwest::Client,
    actor: &Actor,
    number: &str,
    unit_id: Uuid,
) {
    let pulled = async {
        let Some(sub) = bmc_subscription::Entity::find()
            .filter(bmc_subscription::Column::UnitId.eq(unit_id))
            .one(db)
            .await?
        else {
            return Ok::<_, anyhow::Error>(None);
        };
        let key = settings
            .secret_key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("DEPOT_SECRET_KEY is not set"))?;
        let credentials = key
            .open(&sub.credentials_sealed)
            .ok_or_else(|| anyhow::anyhow!("the BMC credentials do not open"))?;
        let (user, password) = credentials.split_once(':').unwrap_or((&credentials, ""));
        let bmc = Bmc {
            http,
            base: sub.bmc_url.trim_end_matches('/').to_string(),
            user,
            password,
            allowed: &settings.webhook_allow,
        };
        let entries = bmc.sel_entries().await?;
        Ok(Some(entries))
    };
    match pulled.await {
        Ok(Some(entries)) => {
            let bytes = serde_json::to_vec_pretty(&entries).unwrap_or_default();
            if let Err(e) = attachments::upload(db, actor, number, "bmc-sel.json", bytes).await {
                tracing::warn!(error = %e, number, "attaching the SEL failed");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, number, "could not pull the SEL from the BMC"),
    }
}

/// A BMC's Redfish service, called with basic authentication through the outbound client.
struct Bmc<'a> {
    http: &'a reqwest::Client,
    base: String,
    user: &'a str,
    password: &'a str,
    allowed: &'a crate::outbound::Allowed,
}

impl Bmc<'_> {
    fn url(&self, path: &str) -> anyhow::Result<url::Url> {
        crate::outbound::check_url(&format!("{}{path}", self.base), self.allowed).map_err(anyhow::Error::msg)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(self.url(path)?)
            .basic_auth(self.user, Some(self.password))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "GET {path} answered {}", res.status());
        Ok(res.json().await?)
    }

    /// Each `Members[].@odata.id` of a collection.
    async fn members(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let collection = self.get(path).await?;
        Ok(collection["Members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["@odata.id"].as_str().map(str::to_string))
            .collect())
    }

    /// The entries of the first log service named SEL (or the first log at all) of the first
    /// system, then of the first manager.
    async fn sel_entries(&self) -> anyhow::Result<Value> {
        for collection in ["/redfish/v1/Systems", "/redfish/v1/Managers"] {
            let Some(first) = self.members(collection).await.ok().and_then(|m| m.into_iter().next()) else {
                continue;
            };
            let Ok(logs) = self.members(&format!("{first}/LogServices")).await else {
                continue;
            };
            let chosen = logs
                .iter()
                .find(|l| l.to_uppercase().ends_with("/SEL"))
                .or_else(|| logs.first());
            if let Some(log) = chosen {
                return self.get(&format!("{log}/Entries")).await;
            }
        }
        anyhow::bail!("the BMC lists no log service")
    }
}

/// Where a BMC is and how to sign in to it.
#[derive(Clone, Copy)]
pub struct BmcLogin<'a> {
    pub url: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

/// A node's subscription as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscribed {
    pub serial: String,
    pub bmc_url: String,
    /// Where the BMC keeps it.
    pub subscription_uri: Option<String>,
    pub destination: String,
}

/// Creates a Redfish event subscription on `serial`'s BMC at `bmc_url`: events go to depot's
/// intake with the node's serial as `Context` and a fresh token of the BMC integration user in
/// `HttpHeaders`. The BMC's credentials are kept, sealed, to pull its event log later. Admins only
/// (the CLI acts as an admin).
pub async fn subscribe(
    db: &DatabaseConnection,
    settings: &Settings,
    http: &reqwest::Client,
    actor: &Actor,
    serial: &str,
    login: &BmcLogin<'_>,
) -> AppResult<Subscribed> {
    let BmcLogin {
        url: bmc_url,
        user,
        password,
    } = *login;
    actor.require(&[Role::Admin], "subscribe to a BMC's events")?;
    let key = settings.secret_key.as_ref().ok_or_else(|| {
        AppError::invalid("set DEPOT_SECRET_KEY (64 hex digits) first: BMC credentials are stored sealed")
    })?;
    let serial = serial.trim().to_uppercase();
    let node = unit::Entity::find()
        .filter(unit::Column::Serial.eq(&serial))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no unit {serial}")))?;
    let base = crate::outbound::check_url(bmc_url, &settings.webhook_allow)
        .map_err(|e| AppError::invalid(format!("BMC URL: {e}")))?
        .to_string();
    let base = base.trim_end_matches('/').to_string();
    let bmc_actor = tracking::integration_actor(db, BMC_ACTOR).await?;
    let token = tokens::create(db, &bmc_actor.email, &format!("BMC of {serial}")).await?;
    let destination = format!("{}/api/v1/integrations/redfish", settings.base_url);
    let body = json!({
        "Destination": destination,
        "Context": serial,
        "Protocol": "Redfish",
        "EventFormatType": "Event",
        "SubscriptionType": "RedfishEvent",
        "HttpHeaders": [{"Authorization": format!("Bearer {token}")}],
    });
    let bmc = Bmc {
        http,
        base: base.clone(),
        user,
        password,
        allowed: &settings.webhook_allow,
    };
    let res = http
        .post(
            bmc.url("/redfish/v1/EventService/Subscriptions")
                .map_err(|e| AppError::invalid(e.to_string()))?,
        )
        .basic_auth(user, Some(password))
        .json(&body)
        .send()
        .await
        .map_err(|e| AppError::invalid(format!("the BMC at {base} did not answer: {e}")))?;
    if !res.status().is_success() {
        return Err(AppError::invalid(format!(
            "the BMC at {base} refused the subscription: {}",
            res.status()
        )));
    }
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let sealed = key.seal(&format!("{user}:{password}"));
    let existing = bmc_subscription::Entity::find()
        .filter(bmc_subscription::Column::UnitId.eq(node.id))
        .one(db)
        .await?;
    let is_new = existing.is_none();
    let mut am: bmc_subscription::ActiveModel = match existing {
        Some(e) => e.into(),
        None => bmc_subscription::ActiveModel {
            id: Set(Uuid::now_v7()),
            unit_id: Set(node.id),
            ..Default::default()
        },
    };
    am.bmc_url = Set(base.clone());
    am.credentials_sealed = Set(sealed);
    am.subscription_uri = Set(location.clone());
    am.created_at = Set(Utc::now());
    match is_new {
        true => drop(am.insert(db).await?),
        false => drop(am.update(db).await?),
    }
    Ok(Subscribed {
        serial,
        bmc_url: base,
        subscription_uri: location,
        destination,
    })
}

/// The node's subscription, if it has one.
pub async fn subscription_of(
    db: &DatabaseConnection,
    unit_id: Uuid,
) -> AppResult<Option<(String, Option<String>, DateTime<Utc>)>> {
    Ok(bmc_subscription::Entity::find()
        .filter(bmc_subscription::Column::UnitId.eq(unit_id))
        .one(db)
        .await?
        .map(|s| (s.bmc_url, s.subscription_uri, s.created_at)))
}

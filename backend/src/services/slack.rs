//! The Slack app: `/depot` commands and the buttons on depot's chat messages. A Slack user acts as
//! the depot user they linked once (through a one-time link opened while signed in to depot), so
//! roles and tenancy apply exactly as on the web. Every answer is a Slack message (`text` and Block
//! Kit `blocks`); a refusal is a message too, since Slack shows nothing for an error status.
use crate::domain::lifecycle::Status;
use crate::entities::{organization, slack_link, user};
use crate::error::{AppError, AppResult};
use crate::services::rmas::{self, TransitionRequest};
use crate::services::views::RmaView;
use crate::services::{Actor, alarms, dashboard, oncall, sessions, tokens};
use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a `/depot link` link may wait to be opened.
pub const LINK_MINUTES: i64 = 15;

/// Who is asking, as Slack names them.
pub struct SlackUser<'a> {
    pub team_id: &'a str,
    pub user_id: &'a str,
}

/// A `/depot` command, parsed from the text after `/depot`.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Link,
    Show(String),
    Open {
        serial: String,
        severity: String,
        symptom: String,
    },
    Ack(String),
    Restore {
        number: String,
        note: String,
    },
    OnCall,
    Mine,
}

const USAGE: &str = "`/depot rma NUMBER` · `/depot open SERIAL sev1 symptom…` · `/depot ack NUMBER` · \
`/depot restore NUMBER what fixed it…` · `/depot oncall` · `/depot mine` · `/depot link`";

impl Command {
    /// Reads the words after `/depot`; anything it does not know is a usage message.
    pub fn parse(text: &str) -> Result<Command, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let rest = |from: usize| words.get(from..).map(|w| w.join(" ")).unwrap_or_default();
        let number = |what: &str| {
            words
                .get(1)
                .map(|n| n.to_uppercase())
                .ok_or_else(|| format!("`/depot {what} NUMBER`: which RMA?"))
        };
        match words.first().map(|w| w.to_lowercase()).as_deref() {
            None | Some("help") => Ok(Command::Help),
            Some("link") => Ok(Command::Link),
            Some("rma") | Some("show") => Ok(Command::Show(number("rma")?)),
            Some("ack") => Ok(Command::Ack(number("ack")?)),
            Some("restore") | Some("restored") => {
                let number = number("restore")?;
                match rest(2) {
                    note if note.is_empty() => Err("`/depot restore NUMBER what fixed it…`: say what fixed it".into()),
                    note => Ok(Command::Restore { number, note }),
                }
            }
            Some("oncall") => Ok(Command::OnCall),
            Some("mine") => Ok(Command::Mine),
            Some("open") => match (words.get(1), words.get(2)) {
                (Some(serial), Some(severity)) if !rest(3).is_empty() => Ok(Command::Open {
                    serial: serial.to_string(),
                    severity: severity.to_lowercase(),
                    symptom: rest(3),
                }),
                _ => Err("`/depot open SERIAL sev1 symptom…`: the serial, a severity and what is wrong".into()),
            },
            Some(other) => Err(format!("I don't know `{other}`. Try {USAGE}")),
        }
    }
}

/// A message for Slack: plain text (notifications, fallbacks) and blocks.
pub fn message(text: impl Into<String>, blocks: Vec<Value>) -> Value {
    let text = text.into();
    let mut blocks = blocks;
    if blocks.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    json!({"response_type": "ephemeral", "text": text, "blocks": blocks})
}

/// The buttons depot puts under an RMA: Acknowledge, Assign to me, Open in depot, and a box to say
/// how it was restored.
pub fn rma_actions(number: &str, link: &str) -> Vec<Value> {
    let button = |id: &str, label: &str| json!({"type": "button", "action_id": id, "value": number, "text": {"type": "plain_text", "text": label}});
    let mut ack = button("ack", "Acknowledge");
    ack["style"] = json!("primary");
    let mut open = button("open", "Open in depot");
    open["url"] = json!(link);
    vec![
        json!({"type": "actions", "block_id": format!("rma:{number}"), "elements": [ack, button("assign", "Assign to me"), open]}),
        json!({"type": "input", "block_id": format!("restore:{number}"), "dispatch_action": true, "optional": true,
            "label": {"type": "plain_text", "text": "Restored in the field? Say how, then press Enter"},
            "element": {"type": "plain_text_input", "action_id": "restored"}}),
    ]
}

/// A chat destination written `slack:CHANNEL_ID` is posted by the app's bot, one thread per RMA.
pub const CHANNEL_PREFIX: &str = "slack:";

/// Whether `id` looks like a Slack channel id (`C0123ABCD`, `G…` for private ones).
pub fn is_channel_id(id: &str) -> bool {
    (9..=14).contains(&id.len())
        && id.starts_with(['C', 'G'])
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Slack's Web API with the app's bot token.
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    /// `https://slack.com/api` (`SLACK_API_URL`).
    pub url: &'a str,
    pub token: &'a str,
    pub allowed: &'a crate::outbound::Allowed,
}

impl Api<'_> {
    /// Posts `message` to `channel` with `chat.postMessage`: the RMA's first message starts its
    /// thread, later ones reply in it.
    pub async fn post_in_thread(
        &self,
        db: &DatabaseConnection,
        channel: &str,
        rma_id: Uuid,
        message: &Value,
    ) -> anyhow::Result<()> {
        use crate::entities::slack_thread;
        let thread = slack_thread::Entity::find()
            .filter(slack_thread::Column::RmaId.eq(rma_id))
            .filter(slack_thread::Column::Channel.eq(channel))
            .one(db)
            .await?;
        let mut body = message.clone();
        body["channel"] = json!(channel);
        if let Some(t) = &thread {
            body["thread_ts"] = json!(t.ts);
        }
        let url = crate::outbound::check_url(&format!("{}/chat.postMessage", self.url), self.allowed)
            .map_err(anyhow::Error::msg)?;
        let answer: Value = self
            .http
            .post(url)
            .bearer_auth(self.token)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        // Slack answers 200 with `ok: false` and an `error` when it refuses.
        if answer["ok"] != json!(true) {
            anyhow::bail!("Slack refused chat.postMessage: {}", answer["error"]);
        }
        if thread.is_none()
            && let Some(ts) = answer["ts"].as_str()
        {
            slack_thread::Entity::insert(slack_thread::ActiveModel {
                id: Set(Uuid::now_v7()),
                rma_id: Set(rma_id),
                channel: Set(channel.into()),
                ts: Set(ts.into()),
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([slack_thread::Column::RmaId, slack_thread::Column::Channel])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        }
        Ok(())
    }
}

/// A chat notification as a Block Kit message with the RMA's buttons.
pub fn chat_message(subject: &str, number: Option<&str>, link: &str) -> Value {
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{subject}*\n<{link}|Open in depot>")}}),
    ];
    if let Some(number) = number {
        blocks.extend(rma_actions(number, link));
    }
    json!({"text": format!("{subject}\n{link}"), "blocks": blocks})
}

fn summary(rma: &RmaView, base_url: &str) -> Value {
    let link = format!("{base_url}/rmas/{}", rma.number);
    let clocks: Vec<String> = rma
        .clocks
        .iter()
        .map(|c| {
            format!(
                "{} {} (due {})",
                c.name.replace('_', " "),
                c.state.as_str().replace('_', " "),
                c.deadline.format("%Y-%m-%d %H:%M UTC")
            )
        })
        .collect();
    let text = format!(
        "*{}* {} · {} · {} at {} · {}\n{}",
        rma.number,
        rma.severity,
        rma.status.replace('_', " "),
        rma.serial,
        rma.site,
        rma.symptom,
        clocks.join(" · ")
    );
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    blocks.extend(rma_actions(&rma.number, &link));
    message(text, blocks)
}

/// The depot user a Slack user linked, as an actor; `None` before they linked.
async fn linked_actor(db: &DatabaseConnection, who: &SlackUser<'_>) -> AppResult<Option<Actor>> {
    let link = slack_link::Entity::find()
        .filter(slack_link::Column::TeamId.eq(who.team_id))
        .filter(slack_link::Column::SlackUserId.eq(who.user_id))
        .filter(slack_link::Column::LinkedAt.is_not_null())
        .order_by_desc(slack_link::Column::LinkedAt)
        .one(db)
        .await?;
    let Some(user_id) = link.and_then(|l| l.user_id) else {
        return Ok(None);
    };
    match user::Entity::find_by_id(user_id).one(db).await? {
        Some(u) => tokens::actor_for(db, u).await.map(Some),
        None => Ok(None),
    }
}

/// Starts linking: a one-time link the Slack user opens while signed in to depot.
async fn start_link(db: &DatabaseConnection, who: &SlackUser<'_>, base_url: &str) -> AppResult<Value> {
    let secret = sessions::random_token();
    slack_link::ActiveModel {
        id: Set(Uuid::now_v7()),
        team_id: Set(who.team_id.into()),
        slack_user_id: Set(who.user_id.into()),
        user_id: Set(None),
        token_hash: Set(tokens::hash(&secret)),
        expires_at: Set(Utc::now() + Duration::minutes(LINK_MINUTES)),
        linked_at: Set(None),
    }
    .insert(db)
    .await?;
    let url = format!("{base_url}/slack/link/{secret}");
    Ok(message(
        format!(
            "Open <{url}|this link> within {LINK_MINUTES} minutes, signed in to depot, to act as yourself here. Only you can see this message."
        ),
        vec![],
    ))
}

/// Confirms a link: the signed-in `actor` becomes the Slack user who asked for `secret`.
pub async fn confirm_link(db: &DatabaseConnection, actor: &Actor, secret: &str) -> AppResult<()> {
    if actor.role == crate::domain::Role::Integration {
        return Err(AppError::Forbidden("an integration user cannot act in Slack".into()));
    }
    let link = pending_link(db, secret).await?;
    let mut am: slack_link::ActiveModel = link.into();
    am.user_id = Set(Some(actor.user_id));
    am.linked_at = Set(Some(Utc::now()));
    am.update(db).await?;
    Ok(())
}

/// The link request behind `secret`, if it is unused and not expired.
pub async fn pending_link(db: &DatabaseConnection, secret: &str) -> AppResult<slack_link::Model> {
    slack_link::Entity::find()
        .filter(slack_link::Column::TokenHash.eq(tokens::hash(secret)))
        .filter(slack_link::Column::LinkedAt.is_null())
        .filter(slack_link::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("this link is unknown, used or expired; ask for a new one with /depot link"))
}

/// Answers a `/depot` command.
pub async fn command(db: &DatabaseConnection, who: &SlackUser<'_>, text: &str, base_url: &str) -> AppResult<Value> {
    let command = match Command::parse(text) {
        Ok(c) => c,
        Err(usage) => return Ok(message(usage, vec![])),
    };
    if who.user_id.is_empty() && command != Command::Help {
        return Ok(message(
            "Slack named no user in this request: depot cannot tell who is asking",
            vec![],
        ));
    }
    match command {
        Command::Help => return Ok(message(format!("depot in Slack: {USAGE}"), vec![])),
        Command::Link => return start_link(db, who, base_url).await,
        _ => {}
    }
    let Some(actor) = linked_actor(db, who).await? else {
        return Ok(message("Link your Slack user to depot first: `/depot link`", vec![]));
    };
    let answer = match command {
        Command::Show(number) => rmas::get(db, &actor, &number).await.map(|r| summary(&r, base_url)),
        Command::Ack(number) => acknowledge(db, &actor, &number, base_url).await,
        Command::Restore { number, note } => restore(db, &actor, &number, &note, base_url).await,
        Command::Open {
            serial,
            severity,
            symptom,
        } => {
            let alarm = json!({"serial": serial, "severity": severity, "summary": symptom,
                "source": format!("slack:{}", who.user_id)});
            match alarms::intake(db, &actor, &alarm, None).await {
                Ok(intake) => {
                    let number = intake.body["number"].as_str().unwrap_or_default().to_string();
                    let joined = if intake.status == 200 {
                        "joined the open "
                    } else {
                        "opened "
                    };
                    let rma = rmas::get(db, &actor, &number).await?;
                    let mut answer = summary(&rma, base_url);
                    answer["text"] = json!(format!("{joined}{number}"));
                    answer["response_type"] = json!("in_channel");
                    Ok(answer)
                }
                Err(e) => Err(e),
            }
        }
        Command::OnCall => on_call(db, &actor).await,
        Command::Mine => mine(db, &actor, base_url).await,
        Command::Help | Command::Link => unreachable!("answered above"),
    };
    Ok(answer.unwrap_or_else(refusal))
}

/// A refusal as Slack shows it: the same words the web would use, a 404 for what is not the
/// user's to see.
fn refusal(err: AppError) -> Value {
    let text = match &err {
        AppError::Internal(_) | AppError::Unavailable(_) => "depot could not do that just now; try again".to_string(),
        other => format!("Not done: {other}"),
    };
    if let AppError::Internal(e) = &err {
        tracing::error!(error = ?e, "slack request failed");
    }
    message(text, vec![])
}

async fn step(
    db: &DatabaseConnection,
    actor: &Actor,
    number: &str,
    mut request: TransitionRequest,
) -> AppResult<RmaView> {
    let rma = rmas::find_visible(db, actor, number).await?;
    request.version = rma.version;
    rmas::transition(db, actor, &rma.number, request).await
}

/// `reported → diagnosing`: the first response, from Slack.
async fn acknowledge(db: &DatabaseConnection, actor: &Actor, number: &str, base_url: &str) -> AppResult<Value> {
    let request = TransitionRequest {
        to: Status::Diagnosing.as_str().into(),
        note: Some("acknowledged in Slack".into()),
        ..Default::default()
    };
    let rma = step(db, actor, number, request).await?;
    let mut answer = summary(&rma, base_url);
    answer["text"] = json!(format!("{} acknowledged by {}", rma.number, actor.email));
    answer["response_type"] = json!("in_channel");
    Ok(answer)
}

/// `diagnosing → restored` with what fixed it.
async fn restore(db: &DatabaseConnection, actor: &Actor, number: &str, note: &str, base_url: &str) -> AppResult<Value> {
    let request = TransitionRequest {
        to: Status::Restored.as_str().into(),
        resolution: Some(note.trim().into()),
        note: Some("restored, from Slack".into()),
        ..Default::default()
    };
    let rma = step(db, actor, number, request).await?;
    let mut answer = summary(&rma, base_url);
    answer["text"] = json!(format!("{} restored by {}: {}", rma.number, actor.email, note.trim()));
    answer["response_type"] = json!("in_channel");
    Ok(answer)
}

/// Who is on call now, for each organization the user may see.
async fn on_call(db: &DatabaseConnection, actor: &Actor) -> AppResult<Value> {
    let mut orgs = organization::Entity::find().filter(organization::Column::Kind.ne("vendor"));
    if let Some(org) = actor.organization_scope() {
        orgs = orgs.filter(organization::Column::Id.eq(org));
    }
    let now = Utc::now();
    let mut lines = vec![];
    for org in orgs.order_by_asc(organization::Column::Code).all(db).await? {
        let who = oncall::on_call(db, org.id, now).await?;
        lines.push(format!(
            "{}: {}",
            org.name,
            who.unwrap_or_else(|| "nobody scheduled".into())
        ));
    }
    Ok(message(format!("On call now\n{}", lines.join("\n")), vec![]))
}

/// What waits on the user: the dashboard's list for their role.
async fn mine(db: &DatabaseConnection, actor: &Actor, base_url: &str) -> AppResult<Value> {
    let board = dashboard::build(db, actor).await?;
    let lines: Vec<String> = board
        .waiting
        .iter()
        .take(15)
        .map(|r| {
            format!(
                "<{base_url}/rmas/{n}|{n}> {} · {} · {} at {}",
                r.severity,
                r.status.replace('_', " "),
                r.serial,
                r.site,
                n = r.number
            )
        })
        .collect();
    let text = match lines.is_empty() {
        true => format!("{}: nothing.", board.waiting_label),
        false => format!("{}:\n{}", board.waiting_label, lines.join("\n")),
    };
    Ok(message(text, vec![]))
}

/// A button pressed (or the restore box submitted) on one of depot's messages.
pub async fn interaction(
    db: &DatabaseConnection,
    who: &SlackUser<'_>,
    payload: &Value,
    base_url: &str,
) -> AppResult<Value> {
    let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
        return Ok(message("Nothing to do.", vec![]));
    };
    if who.user_id.is_empty() {
        return Ok(message(
            "Slack named no user in this interaction: depot cannot tell who is asking",
            vec![],
        ));
    }
    let action_id = action["action_id"].as_str().unwrap_or_default();
    if action_id == "open" {
        // A link button: Slack opens the page itself.
        return Ok(json!({}));
    }
    let Some(actor) = linked_actor(db, who).await? else {
        return Ok(message("Link your Slack user to depot first: `/depot link`", vec![]));
    };
    // The RMA is the button's value, or the number in the restore box's block id.
    let number = action["value"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            action["block_id"]
                .as_str()
                .and_then(|b| b.strip_prefix("restore:"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let answer = match action_id {
        "ack" => acknowledge(db, &actor, &number, base_url).await,
        "assign" => rmas::set_watching(db, &actor, &number, true).await.map(|_| {
            message(
                format!("{number} is on {}'s list: they get its emails", actor.email),
                vec![],
            )
        }),
        "restored" => match action["value"].as_str().filter(|v| !v.trim().is_empty()) {
            Some(_) => {
                let note = action["value"].as_str().unwrap_or_default();
                let number = action["block_id"]
                    .as_str()
                    .and_then(|b| b.strip_prefix("restore:"))
                    .unwrap_or_default();
                restore(db, &actor, number, note, base_url).await
            }
            None => Ok(message("Say what fixed it in the box, then press Enter.", vec![])),
        },
        other => Ok(message(format!("depot has no button `{other}`"), vec![])),
    };
    Ok(answer.unwrap_or_else(refusal))
}

#[cfg(test)]
mod tests {
    use super::Command;

    #[test]
    fn commands_parse_and_explain_themselves() {
        assert_eq!(Command::parse(""), Ok(Command::Help));
        assert_eq!(
            Command::parse("rma rma-2026-000001"),
            Ok(Command::Show("RMA-2026-000001".into()))
        );
        assert_eq!(
            Command::parse(" ACK RMA-2026-000002 "),
            Ok(Command::Ack("RMA-2026-000002".into()))
        );
        assert_eq!(
            Command::parse("open CN-ORD1-0101 Sev1 node down, BMC unreachable"),
            Ok(Command::Open {
                serial: "CN-ORD1-0101".into(),
                severity: "sev1".into(),
                symptom: "node down, BMC unreachable".into()
            })
        );
        assert_eq!(
            Command::parse("restore RMA-2026-000003 reseated the PSU"),
            Ok(Command::Restore {
                number: "RMA-2026-000003".into(),
                note: "reseated the PSU".into()
            })
        );
        assert!(
            Command::parse("open CN-ORD1-0101 sev1")
                .unwrap_err()
                .contains("what is wrong")
        );
        assert!(
            Command::parse("restore RMA-2026-000003")
                .unwrap_err()
                .contains("what fixed it")
        );
        assert!(Command::parse("ack").unwrap_err().contains("which RMA"));
        assert!(Command::parse("dance").unwrap_err().contains("/depot rma NUMBER"));
        assert_eq!(Command::parse("oncall"), Ok(Command::OnCall));
        assert_eq!(Command::parse("mine"), Ok(Command::Mine));
        assert_eq!(Command::parse("link"), Ok(Command::Link));
    }
}

//! The Slack app: requests signed with Slack's own SDK (slack_sdk.signature), refused when the
//! signature or the timestamp does not hold, and commands and buttons acting as the linked user.
use crate::helpers::*;
use serde_json::{Value, json};
use std::io::Write;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integrations/slack_signature.py");
    let mut child = std::process::Command::new("python3")
        .args([script, secret, &timestamp.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "slack_signature.py (pip install -r tests/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Posts `body` to a Slack endpoint as Slack would, `age` seconds after it was signed.
async fn slack_post(app: &TestApp, path: &str, body: &str, secret: &str, age: i64) -> Answer {
    let timestamp = chrono::Utc::now().timestamp() - age;
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Slack-Request-Timestamp", timestamp.to_string())
        .header("X-Slack-Signature", signature(secret, timestamp, body))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    TestApp::answer(res).await
}

fn command_body(user: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy-verification-token"),
        ("team_id", "T0DEPOT"),
        ("team_domain", "vast"),
        ("channel_id", "C0ONCALL"),
        ("channel_name", "depot-oncall"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/depot"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/T0DEPOT/1/x"),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap()
}

async fn depot(app: &TestApp, user: &str, text: &str) -> Value {
    let body = command_body(user, text);
    slack_post(app, "/api/v1/integrations/slack/commands", &body, SECRET, 0)
        .await
        .expect(200)
}

/// Links Slack user `slack_user` to depot user `email` through the one-time link.
async fn link(app: &TestApp, slack_user: &str, email: &str) {
    let answer = depot(app, slack_user, "link").await;
    let text = answer["text"].as_str().unwrap();
    let secret = text
        .split("/slack/link/")
        .nth(1)
        .unwrap()
        .split('|')
        .next()
        .unwrap()
        .to_string();
    let browser = crate::support::signed_in(&app.base, email).await;
    let page_url = format!("{}/slack/link/{secret}", app.base);
    let page = crate::support::page(&browser, &page_url).await;
    assert!(
        page.contains(slack_user) && page.contains(email),
        "the page says who links to whom"
    );
    let csrf = crate::support::form_csrf(&browser, &page_url).await;
    let res = browser
        .post(&page_url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The link is spent.
    assert_eq!(browser.get(&page_url).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn slack_requests_must_be_signed_and_fresh() {
    let app = spawn_app_with(&[("SLACK_SIGNING_SECRET", SECRET.into())]).await;
    let body = command_body("U0FE", "help");
    let path = "/api/v1/integrations/slack/commands";
    let refused = slack_post(&app, path, &body, "another secret", 0).await.expect(401);
    assert_eq!(refused["error"]["code"], "bad_signature");
    let stale = slack_post(&app, path, &body, SECRET, 6 * 60).await.expect(401);
    assert!(stale["error"]["message"].as_str().unwrap().contains("5 minutes"));
    slack_post(&app, path, &body, SECRET, -6 * 60).await.expect(401);
    let unsigned = app
        .client
        .post(format!("{}{path}", app.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let help = slack_post(&app, path, &body, SECRET, 4 * 60).await.expect(200);
    assert!(help["text"].as_str().unwrap().contains("/depot ack NUMBER"));

    let interactions = "/api/v1/integrations/slack/interactions";
    // Signed but unusable: Slack wants a 200, so the refusal is a message.
    for body in ["nothing=here", "payload=%7Bnot+json"] {
        let answer = slack_post(&app, interactions, body, SECRET, 0).await.expect(200);
        assert!(answer["text"].as_str().unwrap().contains("could not read"), "{answer}");
    }
    let nobody = slack_post(&app, path, "command=%2Fdepot&text=mine", SECRET, 0)
        .await
        .expect(200);
    assert!(nobody["text"].as_str().unwrap().contains("no user"), "{nobody}");
    let big = format!("text={}", "x".repeat(300 * 1024));
    slack_post(&app, path, &big, SECRET, 0).await.expect(413);

    let unconfigured = spawn_app().await;
    slack_post(&unconfigured, path, &body, SECRET, 0).await.expect(401);
}

#[tokio::test]
async fn a_linked_slack_user_opens_acknowledges_and_restores_as_themselves() {
    use axum::{Router, routing::post};
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let hook = Router::new().route(
        "/respond",
        post(move |axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let response_url = format!("http://{}/respond", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let app = spawn_app_with(&[
        ("SLACK_SIGNING_SECRET", SECRET.into()),
        ("DEPOT_WEBHOOK_ALLOW", "127.0.0.1".into()),
    ])
    .await;

    let unlinked = depot(&app, "U0FE", "mine").await;
    assert!(unlinked["text"].as_str().unwrap().contains("/depot link"));
    link(&app, "U0FE", FE).await;

    let opened = depot(&app, "U0FE", "open CN-ORD1-0107 sev1 node down, BMC unreachable").await;
    let number = opened["text"].as_str().unwrap().rsplit(' ').next().unwrap().to_string();
    assert!(number.starts_with("RMA-"), "{opened}");
    assert_eq!(app.rma(&number).await["severity"], "sev1");
    let again = depot(&app, "U0FE", "open CN-ORD1-0107 sev1 still down").await;
    assert!(
        again["text"]
            .as_str()
            .unwrap()
            .contains(&format!("joined the open {number}"))
    );

    let acked = depot(&app, "U0FE", &format!("ack {number}")).await;
    assert_eq!(acked["response_type"], "in_channel");
    let rma = app.rma(&number).await;
    assert_eq!(rma["status"], "diagnosing");
    let first_response = rma["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "first_response")
        .unwrap();
    assert_eq!(first_response["state"], "met", "the first response clock stops");
    assert_eq!(
        app.events(&number).await.last().unwrap()["actor"],
        FE,
        "acts as the linked user"
    );
    let shown = depot(&app, "U0FE", &format!("rma {number}")).await;
    assert!(shown["text"].as_str().unwrap().contains("CN-ORD1-0107"));
    assert!(
        shown["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["type"] == "actions")
    );

    // The restore box under depot's message, submitted: restored with that note.
    let payload = json!({"type": "block_actions", "user": {"id": "U0FE", "team_id": "T0DEPOT"},
        "team": {"id": "T0DEPOT"}, "response_url": response_url, "trigger_id": "1.2",
        "actions": [{"type": "plain_text_input", "action_id": "restored", "block_id": format!("restore:{number}"),
            "value": "reseated the BMC cable", "action_ts": "1"}]});
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    slack_post(&app, "/api/v1/integrations/slack/interactions", &body, SECRET, 0)
        .await
        .expect(200);
    let rma = app.rma(&number).await;
    assert_eq!(
        (rma["status"].as_str(), rma["resolution"].as_str()),
        (Some("restored"), Some("reseated the BMC cable"))
    );
    let reply = tokio::time::timeout(std::time::Duration::from_secs(5), replies.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        reply["text"].as_str().unwrap().contains("restored by fe@vast.example"),
        "{reply}"
    );

    // A button on an RMA the user may not touch: refused in words, nothing changes.
    link(&app, "U0XAI", XAI_TECH).await;
    let other = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0108").await["number"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app.snapshot(&other).await;
    let payload = json!({"type": "block_actions", "user": {"id": "U0XAI", "team_id": "T0DEPOT"},
        "actions": [{"action_id": "ack", "value": other, "type": "button"}]});
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let refused = slack_post(&app, "/api/v1/integrations/slack/interactions", &body, SECRET, 0)
        .await
        .expect(200);
    assert!(refused["text"].as_str().unwrap().starts_with("Not done"));
    let shown = depot(&app, "U0XAI", &format!("rma {other}")).await;
    assert!(
        !shown.to_string().contains("CN-ORD1-0108"),
        "another customer's RMA stays unseen: {shown}"
    );
    assert_eq!(app.snapshot(&other).await, before);
}

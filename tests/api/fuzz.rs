//! Fuzzing the request parsing with proptest: arbitrary bytes and near-valid JSON bodies, arbitrary
//! query strings and path segments (SQL fragments among them). Whatever arrives, the answer is
//! never a 5xx and every refusal has the contract's error shape. (cargo-fuzz would need a nightly
//! toolchain; proptest runs in the ordinary suite.)
use crate::helpers::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: u32 = 150;

struct World {
    rt: tokio::runtime::Runtime,
    app: TestApp,
    number: String,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (app, number) = rt.block_on(async {
            let app = spawn_app().await;
            let rma = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0101").await;
            let number = rma["number"].as_str().unwrap().to_string();
            (app, number)
        });
        World { rt, app, number }
    }
}

/// Strings that tend to break parsers and queries, and arbitrary ones.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("' OR 1=1 --".to_string()),
        Just("\"; DROP TABLE rmas; --".to_string()),
        Just("%".to_string()),
        Just("_".to_string()),
        Just("../../etc/passwd".to_string()),
        Just("\u{0}".to_string()),
        Just("9".repeat(40)),
        Just("RMA-2026-".to_string()),
        Just("x".repeat(5000)),
        any::<String>(),
        "[A-Za-z0-9 _%'\";=-]{0,40}",
    ]
}

/// JSON values of every kind, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body shaped like a real request: known field names with values of any kind.
fn near_valid() -> impl Strategy<Value = Value> {
    const FIELDS: [&str; 16] = [
        "to",
        "version",
        "site",
        "serial",
        "severity",
        "symptom",
        "summary",
        "source",
        "external_refs",
        "replacement_serial",
        "carrier",
        "tracking_number",
        "test_results",
        "parts_consumed",
        "depot",
        "reason",
    ];
    prop::collection::vec((prop::sample::select(&FIELDS[..]), any_json()), 0..8)
        .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn endpoints(number: &str) -> Vec<(&'static str, String)> {
    vec![
        ("POST", format!("/api/v1/rmas/{number}/transitions")),
        ("POST", "/api/v1/rmas".into()),
        ("POST", "/api/v1/alarms".into()),
        ("PATCH", format!("/api/v1/rmas/{number}")),
        ("POST", format!("/api/v1/rmas/{number}/checks")),
    ]
}

async fn send(w: &World, who: &str, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let res = w
        .app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", w.app.base))
        .bearer_auth(w.app.token(who))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_answer(status: u16, body: &Value, what: &str) {
    assert!(status < 500, "{what} answered {status}: {body}");
    if status >= 400 {
        assert!(
            body["error"]["message"].is_string(),
            "{what}: {status} without the error shape: {body}"
        );
    }
}

#[test]
fn arbitrary_bytes_never_make_a_5xx() {
    let inputs = (prop::collection::vec(any::<u8>(), 0..600), 0usize..3, 0usize..5);
    check_cases(World::new(), CASES, inputs, |w, (bytes, who, target)| {
        w.rt.block_on(async {
            let (method, path) = endpoints(&w.number).swap_remove(target);
            let who = [FE, CW_TECH, XAI_TECH][who];
            let (status, body) = send(w, who, method, &path, bytes).await;
            assert_answer(status, &body, &format!("{method} {path}"));
        });
    });
}

#[test]
fn near_valid_json_never_makes_a_5xx() {
    let inputs = (near_valid(), 0usize..3, 0usize..5);
    check_cases(World::new(), CASES, inputs, |w, (body, who, target)| {
        w.rt.block_on(async {
            let (method, path) = endpoints(&w.number).swap_remove(target);
            let who = [FE, CAM, XAI_TECH][who];
            let (status, answer) = send(w, who, method, &path, serde_json::to_vec(&body).unwrap()).await;
            assert_answer(status, &answer, &format!("{method} {path} {body}"));
        });
    });
}

#[test]
fn arbitrary_queries_and_paths_never_make_a_5xx() {
    let keys: &'static [&str] = &[
        "q",
        "site",
        "status",
        "severity",
        "organization",
        "depot",
        "part",
        "condition",
        "limit",
        "cursor",
        "sort",
    ];
    let inputs = (prop::sample::select(keys), nasty_string(), nasty_string(), 0usize..3);
    check_cases(World::new(), CASES, inputs, |w, (key, value, segment, list)| {
        w.rt.block_on(async {
            let base = ["/api/v1/rmas", "/api/v1/units", "/api/v1/stock"][list];
            let query = serde_urlencoded::to_string([(key, value.as_str())]).unwrap();
            let (status, body) = send(w, CAM, "GET", &format!("{base}?{query}"), vec![]).await;
            assert_answer(status, &body, &format!("GET {base}?{query}"));
            let segment = urlencode_segment(&segment);
            for path in [
                format!("/api/v1/rmas/{segment}"),
                format!("/api/v1/rmas/{segment}/label.pdf"),
                format!("/api/v1/units/{segment}"),
            ] {
                let (status, body) = send(w, FE, "GET", &path, vec![]).await;
                assert_answer(status, &body, &format!("GET {path}"));
            }
        });
    });
}

fn urlencode_segment(s: &str) -> String {
    let encoded = serde_urlencoded::to_string([("", s)]).unwrap();
    let value = encoded.trim_start_matches('=').replace('+', "%20");
    if value.is_empty() { "%20".into() } else { value }
}

#[tokio::test]
async fn sql_in_filters_and_search_is_only_text() {
    let app = spawn_app().await;
    let rma = app.open(CW_TECH, "cw-ord1", "CN-ORD1-0101").await;
    let number = rma["number"].as_str().unwrap();
    let before = app.snapshot(number).await;
    for (key, value) in [
        ("q", "' OR 1=1 --"),
        ("q", "%"),
        ("q", "CN-ORD1-0101' OR '1'='1"),
        ("site", "cw-ord1' OR '1'='1"),
        ("organization", "coreweave' --"),
        ("severity", "sev1' OR 1=1 --"),
        ("status", "reported'; DROP TABLE rmas; --"),
    ] {
        let query = serde_urlencoded::to_string([(key, value)]).unwrap();
        let answer = app.get(XAI_TECH, &format!("/api/v1/rmas?{query}")).await;
        let status = answer.status.as_u16();
        assert!(status == 200 || status == 422, "{query}: {status}");
        if status == 200 {
            assert_eq!(
                answer.body["items"],
                json!([]),
                "{query} reached another customer's RMA"
            );
        }
        let own = app.get(FE, &format!("/api/v1/rmas?{query}")).await;
        if own.status == 200 {
            assert!(
                own.body["items"].as_array().unwrap().len() <= 1,
                "{query} matched more than it says"
            );
        }
    }
    // Found by the fuzzer on PostgreSQL, which cannot store NUL: refused at the door, clearly.
    app.get(FE, "/api/v1/units?depot=%00").await.expect(400);
    app.get(FE, "/api/v1/units/CN%00").await.expect(400);
    let nul = json!({"site": "cw-ord1", "serial": "CN-ORD1-0102", "severity": "sev3", "symptom": "a\u{0}b"});
    let err = app.post(FE, "/api/v1/rmas", &nul).await.expect(422);
    assert!(err["error"]["message"].as_str().unwrap().contains("NUL"), "{err}");
    assert_eq!(app.snapshot(number).await, before, "the tables are as they were");
    app.get(FE, &format!("/api/v1/rmas/{number}")).await.expect(200);

    // The sign-in form too: an address with a NUL is refused, not trimmed into a real one.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csrf = crate::support::sign_in_csrf(&browser, &app.base).await;
    let nul_email = format!("{FE}\u{0}");
    let res = browser
        .post(format!("{}/sign-in", app.base))
        .form(&[
            ("email", nul_email.as_str()),
            ("password", "depot-demo"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("NUL"));
    let home = browser.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(home.status(), 303, "not signed in");
}

/// A CSV file of `kind`: usually the right header, then rows of cells that are right, wrong or
/// garbage (quotes, separators and line breaks included).
fn csv_file() -> impl Strategy<Value = (usize, String)> {
    let cell = prop_oneof![
        Just("CN-5000".to_string()),
        Just("CAM".to_string()),
        Just("cw-ord1".to_string()),
        Just("new".to_string()),
        Just("coreweave".to_string()),
        Just(String::new()),
        Just("\"".to_string()),
        Just(",".to_string()),
        Just("\n".to_string()),
        "[A-Z]{2}-[0-9]{4}",
        "[0-9]{1,3}",
        nasty_string(),
    ];
    (
        0usize..3,
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(cell, 0..12), 0..8),
    )
        .prop_map(|(kind, right_header, rows)| {
            use depot::services::csv_files::Kind;
            let kind_of = [Kind::Sites, Kind::Slots, Kind::Units][kind];
            let mut text = if right_header {
                kind_of.columns().join(",")
            } else {
                "serial,what".to_string()
            };
            for row in rows {
                text.push('\n');
                text.push_str(&row.join(","));
            }
            (kind, text)
        })
}

#[test]
fn csv_imports_never_panic_and_a_refused_file_changes_nothing() {
    use depot::entities::{site, slot, unit};
    use depot::services::csv_files::{self, ImportError, Kind};
    use sea_orm::{EntityTrait, PaginatorTrait};
    check_cases(World::new(), CASES, csv_file(), |w, (kind, text)| {
        w.rt.block_on(async {
            let db = &w.app.db;
            let count = || async {
                (
                    site::Entity::find().count(db).await.unwrap(),
                    slot::Entity::find().count(db).await.unwrap(),
                    unit::Entity::find().count(db).await.unwrap(),
                )
            };
            let before = count().await;
            let kind = [Kind::Sites, Kind::Slots, Kind::Units][kind];
            match csv_files::import(db, kind, &text, &|_| {}).await {
                Ok(_) => {}
                Err(ImportError::Rows(errors)) => {
                    assert!(!errors.is_empty());
                    let lines = text.lines().count().max(1);
                    for (line, message) in &errors {
                        assert!(*line >= 1 && *line <= lines + 1, "line {line} of {lines}: {message}");
                        assert!(!message.is_empty());
                    }
                    assert_eq!(count().await, before, "a refused file changed something");
                }
                Err(ImportError::Other(err)) => panic!("an import failed inside: {err:#}\n{text}"),
            }
        });
    });
}

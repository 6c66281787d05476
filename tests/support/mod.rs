//! What the process-level tests share: the `depot` binary on a database, a server started from it,
//! and a browser session signed in through the form.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `depot` binary on the database at `url`.
pub fn depot(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_depot"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "error");
    cmd
}

/// Runs `cmd serve` on a free port; returns the process and the URL it announced on its first
/// line. The rest of its output is drained, so it never blocks on a full pipe.
pub fn serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .arg("serve")
        .env("DEPOT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start depot serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let url = first.trim().rsplit(' ').next().unwrap_or_default().to_string();
    assert!(url.starts_with("http://"), "depot serve said: {first}");
    (child, url)
}

/// A new API token of `email`, made with `depot token create`.
pub fn token(mut cmd: Command, email: &str) -> String {
    let out = cmd.args(["token", "create", email]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// A browser session of `email` (password `depot-demo`), signed in through the form, built from
/// `builder` (cookies on, redirects off).
pub async fn signed_in_with(builder: reqwest::ClientBuilder, base: &str, email: &str) -> reqwest::Client {
    let client = builder
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the sign-in form has a CSRF token")
        .to_string();
    let res = client
        .post(format!("{base}/sign-in"))
        .form(&[
            ("email", email),
            ("password", "depot-demo"),
            ("csrf", &csrf),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{email} signs in");
    client
}

pub async fn signed_in(base: &str, email: &str) -> reqwest::Client {
    signed_in_with(reqwest::Client::builder(), base, email).await
}

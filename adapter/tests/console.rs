//! The web console, served by a real `hale-adapter run` (manual mode, a dry-run
//! target, a stand-in Prometheus where `api` runs hot): first over plain HTTP (what
//! answers without a session, the one-time login link, CSRF and cross-site refusals,
//! bad bodies that change nothing), then in headless Chromium driven by
//! playwright-core (`tests/browser/console.cjs`): log in, see a proposal appear,
//! accept it, see it applied with its explanation, send requests, leave feedback,
//! switch a mode, read the charts and the audit search, sign out.
//!
//! The browser half needs Chromium (`HALE_CHROMIUM`, default `/usr/bin/chromium`),
//! Node and playwright-core (`HALE_NODE_MODULES`); `.ci/run` installs them. Without
//! them it says it skips; in CI (`CI` set) that is a failure. Screenshots go to
//! `HALE_SHOTS` (default: the test's temporary folder, printed).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

mod common;

const TOKEN: &str = "console-s3cret";

/// The adapter process; killed when dropped.
struct Running {
    child: Child,
    answers: common::Answers,
    base: String,
    link: String,
    _lines: Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the adapter; `api` runs hot at once when `hot`, else when [`Running::heat`]
/// says.
fn start(dir: &std::path::Path, hot: bool) -> Running {
    let (prometheus, answers) = common::stand_in();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // front and db at the HPA's target (no change); api hot (scale up).
    common::serve_readings(&answers, &["front", "api", "db"], 0.5, now);
    if hot {
        common::serve_readings(&answers, &["api"], 0.95, now);
    }
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let config = format!(
        r#"
policy = "hpa"
env = "Scaling-v0"
mode = "manual"
interval_s = 1.0
audit_log = "{dir}/audit.jsonl"

[env_config]
scenario = "three-tier"
action = "target"
control_interval_s = 15.0

[target]
kind = "dry-run"
namespace = "shop"
services = ["front", "api", "db"]
initial_replicas = 2

[guardrails]
max_step = 2
max_replicas = 8
cooldown_s = 600

[server]
listen = "127.0.0.1:0"
token_file = "{dir}/token"

[manual]
ttl_s = 60.0
prompt = false

[observation]
prometheus = "{prometheus}"
max_age_s = 600000.0
{queries}"#,
        dir = dir.display(),
        queries = common::QUERIES,
    );
    let path = dir.join("adapter.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("hale-adapter"))
        .arg("run")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("adapter: {line}");
            if tx.send(line).is_err() {
                // Keep draining so the adapter never blocks on a full pipe.
                continue;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the adapter prints its console link at start");
        if let Some(rest) = line.strip_prefix("console: ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let (base, link) = url.split_at(url.find("/login").unwrap());
    Running {
        child,
        answers,
        base: base.to_string(),
        link: link.to_string(),
        _lines: rx,
    }
}

impl Running {
    /// api runs hot from now on: the HPA proposes to scale it up at the next step.
    fn heat(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        common::serve_readings(&self.answers, &["api"], 0.95, now);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn audit(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events of the log that act or answer (what a refused request must not add).
fn acts(dir: &std::path::Path) -> usize {
    audit(dir)
        .iter()
        .filter(|e| {
            matches!(
                e["event"].as_str(),
                Some("request" | "approval" | "feedback")
            )
        })
        .count()
}

#[test]
fn the_console_refuses_what_it_should_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let a = start(dir.path(), true);
    let http = agent();
    let get = |path: &str| http.get(&format!("{}{path}", a.base)).call().unwrap();

    // Without a token or session: /metrics and the login page only.
    assert_eq!(get("/metrics").status(), 200);
    assert_eq!(get("/login").status(), 200);
    let to_login = get("/console");
    assert_eq!(to_login.status(), 303);
    assert_eq!(to_login.headers()["location"], "/login");
    for path in [
        "/console/part/proposals",
        "/console/part/actions",
        "/console/feedback.jsonl",
        "/proposals",
    ] {
        assert_eq!(get(path).status(), 401, "{path}");
    }
    assert_eq!(get("/console/audit").status(), 303);
    let post = |path: &str, body: &str, headers: &[(&str, &str)]| {
        let mut r = http
            .post(&format!("{}{path}", a.base))
            .header("Content-Type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body.to_string()).unwrap()
    };
    assert_eq!(
        post("/console/ask", "text=scale+db+to+5", &[]).status(),
        401
    );
    assert_eq!(post("/login/link", "", &[]).status(), 401);
    // A wrong token on the login page; a wrong or made-up link.
    assert_eq!(post("/login", "token=guess", &[]).status(), 401);
    assert_eq!(get("/login?key=0123").status(), 403);

    // The printed link signs in once.
    let signed = get(&a.link);
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/console");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert_eq!(get(&a.link).status(), 403, "a login link is good once");
    // With the token, a script mints another.
    let mut minted = http
        .post(&format!("{}/login/link", a.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send_empty()
        .unwrap();
    assert_eq!(minted.status(), 200);
    let minted: serde_json::Value =
        serde_json::from_str(&minted.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(get(minted["link"].as_str().unwrap()).status(), 303);

    // From a shell: `hale-adapter login CONFIG` prints a fresh link (the config's
    // listen address set to where this adapter bound).
    let bound = dir.path().join("bound.toml");
    let config = std::fs::read_to_string(dir.path().join("adapter.toml")).unwrap();
    std::fs::write(
        &bound,
        config.replace("127.0.0.1:0", a.base.trim_start_matches("http://")),
    )
    .unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("hale-adapter"))
        .arg("login")
        .arg(&bound)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.starts_with(&format!("{}/login?key=", a.base)),
        "{printed}"
    );
    let path = printed.trim().trim_start_matches(&a.base).to_string();
    assert_eq!(get(&path).status(), 303);
    assert_eq!(get(&path).status(), 403, "good once");
    std::fs::write(dir.path().join("token"), "wrong\n").unwrap();
    let refused = Command::new(assert_cmd::cargo::cargo_bin!("hale-adapter"))
        .arg("login")
        .arg(&bound)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();

    let mut page = http
        .get(&format!("{}/console", a.base))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = page.body_mut().read_to_string().unwrap();
    let csrf = html
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_eq!(csrf.len(), 64);

    let before = acts(dir.path());
    let with_cookie = [("Cookie", cookie.as_str())];
    // A form without the CSRF token, with a wrong one, or from another site.
    assert_eq!(
        post("/console/ask", "text=scale+db+to+5", &with_cookie).status(),
        403
    );
    assert_eq!(
        post("/console/ask", "text=scale+db+to+5&csrf=00", &with_cookie).status(),
        403
    );
    let body = format!("text=scale+db+to+5&csrf={csrf}");
    let evil = [
        ("Cookie", cookie.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(post("/console/ask", &body, &evil).status(), 403);
    // Bad bodies: no such decision, no replica count, no such proposal, a bad rating,
    // a body too large, a request that does not parse.
    let form = |extra: &str| format!("csrf={csrf}&{extra}");
    let ajax = [("Cookie", cookie.as_str()), ("X-Hale-CSRF", csrf.as_str())];
    assert_eq!(
        post("/console/proposals/1", &form("decision=maybe"), &ajax).status(),
        400
    );
    assert_eq!(
        post(
            "/console/proposals/1",
            &form("decision=modify&replicas=x"),
            &ajax
        )
        .status(),
        400
    );
    assert_eq!(
        post("/console/proposals/99999", &form("decision=accept"), &ajax).status(),
        404
    );
    assert_eq!(
        post("/console/proposals/abc", &form("decision=accept"), &ajax).status(),
        404
    );
    assert_eq!(
        post("/console/feedback", &form("ref=1&rating=meh"), &ajax).status(),
        400
    );
    assert_eq!(
        post("/console/feedback", &form("ref=1&rating=good"), &ajax).status(),
        404
    );
    let huge = form(&format!("text={}", "a".repeat(70_000)));
    assert_eq!(post("/console/ask", &huge, &ajax).status(), 413);
    let mut typo = post("/console/ask", &form("text=scael+db+to+5"), &ajax);
    assert_eq!(typo.status(), 400);
    let typo: serde_json::Value =
        serde_json::from_str(&typo.body_mut().read_to_string().unwrap()).unwrap();
    assert!(
        typo["suggestion"].as_str().unwrap().contains("scale"),
        "{typo}"
    );
    assert_eq!(acts(dir.path()), before, "refused forms changed nothing");

    // The hot api's proposal is pending; a request (with the token instead of a
    // session: no CSRF needed) does not wait behind it, and it stays pending.
    let pending = || {
        let mut r = http
            .get(&format!("{}/proposals", a.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .call()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        v["proposals"].as_array().unwrap().clone()
    };
    let id = loop {
        if let Some(p) = pending().first() {
            assert_eq!(p["agent"], "scaling");
            break p["id"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let token_form = |path: &str, body: &str| {
        http.post(&format!("{}{path}", a.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Hale-CSRF", "-")
            .send(body.to_string())
            .unwrap()
    };
    let asked = Instant::now();
    let mut ok = token_form("/console/ask", "text=scale+db+to+3");
    assert_eq!(ok.status(), 200);
    let ok: serde_json::Value =
        serde_json::from_str(&ok.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(ok["result"], "applied", "{ok}");
    println!(
        "a request with a proposal pending was carried out in {:.3} s",
        asked.elapsed().as_secs_f64()
    );
    let still: Vec<u64> = pending().iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(still, [id], "the proposal stays pending, once");
    assert_eq!(
        token_form(&format!("/console/proposals/{id}"), "decision=decline").status(),
        202
    );
    let start = Instant::now();
    while audit(dir.path()).iter().all(|e| e["event"] != "approval") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the decline is carried out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let approval = audit(dir.path())
        .into_iter()
        .find(|e| e["event"] == "approval")
        .unwrap();
    assert_eq!(approval["approval"]["decision"], "declined");
    assert_eq!(approval["approval"]["proposal"], id);
    // api is still hot: the next step proposes again. Switching the scaler to auto
    // withdraws that proposal (audited, saying why) rather than leaving it open.
    let again = loop {
        if let Some(p) = pending().first() {
            break p["id"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(again > id);
    let mut switched = token_form("/console/ask", "text=switch+scaling+to+auto");
    assert_eq!(switched.status(), 200);
    let switched = switched.body_mut().read_to_string().unwrap();
    assert!(
        switched.contains("1 open proposals withdrawn"),
        "{switched}"
    );
    assert!(pending().is_empty());
    let withdrawn = audit(dir.path())
        .into_iter()
        .find(|e| e["event"] == "approval" && e["approval"]["proposal"] == again)
        .unwrap();
    assert!(
        withdrawn["result"]
            .as_str()
            .unwrap()
            .contains("left manual mode"),
        "{withdrawn}"
    );
    let request = audit(dir.path())
        .into_iter()
        .find(|e| e["event"] == "request")
        .unwrap();
    assert_eq!(request["by"], "console (token)");
    assert_eq!(request["agent"], "scaling");
}

#[test]
fn the_console_in_a_real_browser() {
    let chromium = std::env::var("HALE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = std::env::var("HALE_NODE_MODULES").ok();
    let node = Command::new("node").arg("--version").output().is_ok();
    let why = if !std::path::Path::new(&chromium).exists() {
        Some(format!("no Chromium at {chromium} (HALE_CHROMIUM)"))
    } else if !node {
        Some("no node".into())
    } else if modules
        .as_ref()
        .is_none_or(|m| !std::path::Path::new(m).join("playwright-core").exists())
    {
        Some("no playwright-core under HALE_NODE_MODULES".into())
    } else {
        None
    };
    if let Some(why) = why {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the browser test: {why}"
        );
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let shots = std::env::var("HALE_SHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("shots"));
    std::fs::create_dir_all(&shots).unwrap();
    let a = start(dir.path(), false);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.cjs");
    let mut node = Command::new("node")
        .arg(&script)
        .arg(&a.base)
        .arg(&a.link)
        .arg(&shots)
        .env("HALE_NODE_MODULES", modules.unwrap())
        .env("HALE_CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The script says when the console is open; only then does api run hot, so the
    // proposal is made while the page watches.
    let mut lines = Vec::new();
    for line in BufReader::new(node.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if line == "console-open" {
            a.heat();
        }
        lines.push(line);
    }
    let out = node.wait_with_output().unwrap();
    let stdout = lines.join("\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{stderr}"
    );
    println!("screenshots in {}", shots.display());
    let measured: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    println!("measured: {measured}");
    // Figures, not assertions (the script's waits are the functional checks): how
    // long a proposal took to show, and an accepted one to show applied.
    println!(
        "proposal visible after {:.3} s; accepted to applied on the page in {:.3} s",
        measured["proposal_visible_after_s"].as_f64().unwrap(),
        measured["accept_to_applied_s"].as_f64().unwrap()
    );
    // The browser's actions are in the audit log: the acceptance, the request and the
    // feedback, each by the console.
    let events = audit(dir.path());
    let accepted = events.iter().any(|e| {
        e["event"] == "approval" && e["approval"]["by"] == "console" && e["result"] == "applied"
    });
    assert!(accepted, "the acceptance is audited");
    assert!(events.iter().any(|e| e["event"] == "feedback"
        && e["rating"] == "good"
        && e["comment"] == "right call, quick"));
}

//! The console's HTML: the page and the parts the script refreshes, each rendered
//! from what the loop shares ([`Shared`]), the audit log and Prometheus. Every text
//! that comes from outside (names, explanations, comments) is escaped.

use super::chart;
use super::esc;
use crate::approval::Shared;
use crate::operator::{action_of, ago, describe};
use serde_json::Value;
use std::fmt::Write;
use std::io::{BufRead, Read, Seek};

/// How many recent actions the console lists.
const RECENT: usize = 25;
/// How many audit lines a search shows at most (the newest).
const SEARCH_LIMIT: usize = 200;
/// How much of the audit log's end the recent actions are read from.
const TAIL_BYTES: u64 = 4 << 20;
/// The health charts' window and resolution, seconds.
const WINDOW_S: f64 = 1800.0;
const STEP_S: f64 = 30.0;

fn head(title: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/style.css"><script src="/console/app.js" defer></script></head>"#,
        esc(title)
    )
}

/// The login page: paste the token (or follow a login link).
pub fn login(shared: &Shared, error: Option<&str>) -> String {
    let note = if shared.token.is_some() {
        "Follow the one-time login link the adapter printed, or paste its bearer token."
    } else {
        "The console needs the endpoint's bearer token: set server.token_env or server.token_file and restart the adapter."
    };
    format!(
        r#"{head}<body class="login"><main><h1>hale adapter</h1><p>{note}</p>{error}
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label> <button>Sign in</button></form></main></body></html>"#,
        head = head("hale adapter: sign in"),
        error = error.map_or(String::new(), |e| format!(
            r#"<p class="err" id="login-error">{}</p>"#,
            esc(e)
        )),
    )
}

/// The whole console; the sections are the parts below, refreshed by the script.
pub fn console(shared: &Shared, csrf: &str, said: Option<&str>, now: f64) -> String {
    let examples = "scale api to 4 · restart api-7f9c · why did you restart api-7f9c? · what is wrong with checkout? · what happened in the last hour?";
    format!(
        r#"{head}<body data-csrf="{csrf}">
<header><h1>hale adapter</h1><nav><a href="/console">Console</a> <a href="/console/audit">Audit log</a> <a href="/console/feedback.jsonl">Feedback (JSONL)</a>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button class="quiet">Sign out</button></form></nav></header>
<main>
<section><h2>Ask</h2>
<form id="ask" data-ajax method="post" action="/console/ask"><input type="hidden" name="csrf" value="{csrf}">
<input name="text" id="ask-text" placeholder="{examples}" autocomplete="off" size="60" maxlength="500"> <button>Send</button></form>
<pre id="answer" class="{said_class}">{said}</pre></section>
<section><h2>Agents</h2><div data-part="agents" data-every="2000">{agents}</div></section>
<section><h2>Waiting for you</h2><div id="proposals" data-part="proposals" data-every="400">{proposals}</div></section>
<section><h2>Recent actions</h2><div id="actions" data-part="actions" data-every="2000">{actions}</div></section>
<section><h2>Health</h2><div id="health" data-part="health" data-every="15000">{health}</div></section>
</main></body></html>"#,
        head = head("hale adapter"),
        csrf = esc(csrf),
        examples = esc(examples),
        said_class = if said.is_some() { "ok" } else { "" },
        said = esc(said.unwrap_or("")),
        agents = agents(shared, csrf),
        proposals = proposals(shared, csrf, now),
        actions = actions(shared, csrf, now),
        health = health(shared, now),
    )
}

/// A one-button form that sends a request in plain words.
fn ask_button(csrf: &str, text: &str, label: &str) -> String {
    format!(
        r#"<form data-ajax method="post" action="/console/ask" class="inline"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="text" value="{}"><button>{}</button></form>"#,
        esc(csrf),
        esc(text),
        esc(label)
    )
}

/// The agents: mode, pause, policy, with buttons to switch and pause.
pub fn agents(shared: &Shared, csrf: &str) -> String {
    let views = shared.agents.lock().map(|a| a.clone()).unwrap_or_default();
    let mut out = String::from(
        r#"<table class="agents"><tr><th>Agent</th><th>Env</th><th>Mode</th><th>State</th><th>Policy</th><th></th></tr>"#,
    );
    for v in views {
        let word = v.agent.word();
        let (mode, other) = if v.manual {
            ("manual", "auto")
        } else {
            ("auto", "manual")
        };
        let state = match &v.paused_by {
            Some(by) => format!("paused by {}", esc(by)),
            None => "running".into(),
        };
        let pause = if v.paused_by.is_some() {
            ask_button(csrf, &format!("resume {word}"), "Resume")
        } else {
            ask_button(csrf, &format!("pause {word}"), "Pause")
        };
        let _ = write!(
            out,
            r#"<tr data-agent="{word}"><td>{word}</td><td>{env}</td><td class="mode">{mode}</td><td>{state}</td><td class="policy">{policy}</td><td>{switch} {pause}</td></tr>"#,
            env = esc(&v.env),
            policy = esc(&v.policy),
            switch = ask_button(
                csrf,
                &format!("switch {word} to {other}"),
                &format!("Switch to {other}")
            ),
        );
    }
    out.push_str("</table>");
    out
}

/// An explanation: the expected effect, the alternatives with their probabilities,
/// the features read.
fn explanation(e: &Value) -> String {
    let mut out = format!(
        r#"<div class="why"><p class="effect">{}</p>"#,
        esc(e["expected_effect"].as_str().unwrap_or(""))
    );
    if let Some(alts) = e["alternatives"].as_array().filter(|a| !a.is_empty()) {
        out.push_str(r#"<table class="alts"><tr><th>Alternative</th><th>Probability</th></tr>"#);
        for a in alts.iter().take(5) {
            let p = a["probability"].as_f64().unwrap_or(0.0);
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td><meter min="0" max="1" value="{:.3}"></meter> {:.0} %</td></tr>"#,
                esc(a["action"].as_str().unwrap_or("?")),
                p.clamp(0.0, 1.0),
                100.0 * p
            );
        }
        out.push_str("</table>");
    }
    if let Some(features) = e["features"].as_array().filter(|f| !f.is_empty()) {
        let list: Vec<String> = features
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    esc(f["name"].as_str().unwrap_or("?")),
                    chart::short(f["value"].as_f64().unwrap_or(f64::NAN))
                )
            })
            .collect();
        let _ = write!(out, r#"<p class="features">read: {}</p>"#, list.join(" · "));
    }
    let _ = write!(
        out,
        r#"<p class="policy">by {}</p></div>"#,
        esc(e["policy"].as_str().unwrap_or("?"))
    );
    out
}

/// The proposals waiting, each with its explanation and the answers.
pub fn proposals(shared: &Shared, csrf: &str, now: f64) -> String {
    let pending = shared.pending.lock().map(|p| p.clone()).unwrap_or_default();
    if pending.is_empty() {
        return r#"<p class="none">Nothing waiting.</p>"#.into();
    }
    let mut out = String::new();
    for p in pending {
        let value = serde_json::to_value(&p).unwrap_or(Value::Null);
        let modify = match &p.action {
            crate::action::Action::Scale { replicas, .. } => format!(
                r#" <input type="number" name="replicas" min="0" max="1000" value="{replicas}" aria-label="replicas"> <button name="decision" value="modify">Modify</button>"#
            ),
            _ => String::new(),
        };
        let _ = write!(
            out,
            r#"<article class="proposal" data-proposal="{id}" data-created="{created}">
<h3>#{id} · {agent}: {action}</h3><p class="verdict">{verdict} · expires in {left:.0} s</p>{why}
<form data-ajax method="post" action="/console/proposals/{id}"><input type="hidden" name="csrf" value="{csrf}">
<button name="decision" value="accept" class="accept">Accept</button> <button name="decision" value="decline">Decline</button>{modify}</form></article>"#,
            id = p.id,
            created = p.created_unix,
            agent = p.agent.word(),
            action = esc(&p.action.to_string()),
            verdict = esc(&crate::report::describe(&p.action, &p.verdict)),
            left = (p.expires_unix - now).max(0.0),
            why = explanation(&value["explanation"]),
            csrf = esc(csrf),
        );
    }
    out
}

/// The events at the end of the audit log (at most [`TAIL_BYTES`]).
fn tail_events(shared: &Shared) -> Vec<Value> {
    let Ok(mut file) = std::fs::File::open(&shared.audit_path) else {
        return vec![];
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(TAIL_BYTES);
    if file.seek(std::io::SeekFrom::Start(start)).is_err() {
        return vec![];
    }
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return vec![];
    }
    // A cut first line is not an event.
    let text = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The decision inside an action event (a decision, or an operator's request).
fn decision_of(event: &Value) -> Option<&Value> {
    match event["event"].as_str()? {
        "decision" if event.get("result").is_some() => Some(event),
        "request" => event.get("decision"),
        _ => None,
    }
}

/// An action event's action in words.
pub fn action_words(event: &Value) -> String {
    action_of(event).map_or_else(|| "?".into(), describe)
}

/// The action event at audit time `reference` (as the console lists it).
pub fn event_at(shared: &Shared, reference: &str) -> Option<Value> {
    tail_events(shared)
        .into_iter()
        .rev()
        .find(|e| e["ts"].to_string().as_str() == reference && decision_of(e).is_some())
}

/// The recent actions with explanation, outcome and feedback.
pub fn actions(shared: &Shared, csrf: &str, now: f64) -> String {
    let events = tail_events(shared);
    let mut feedback: std::collections::HashMap<String, Vec<&Value>> = Default::default();
    for e in events.iter().filter(|e| e["event"] == "feedback") {
        if let Some(r) = e["ref"].as_str() {
            feedback.entry(r.to_string()).or_default().push(e);
        }
    }
    // The newest first; a refusal the guardrails repeat step after step (a policy
    // asking again through a cool-down) is one row with its count.
    let mut recent: Vec<(&Value, usize)> = Vec::new();
    let mut repeated: std::collections::HashMap<(String, String, String), usize> =
        Default::default();
    for e in events.iter().rev() {
        let Some(d) = decision_of(e) else { continue };
        if d["result"] == "blocked" {
            let key = (
                e["agent"].as_str().unwrap_or("").to_string(),
                action_words(e),
                d["verdict"].to_string(),
            );
            if let Some(&i) = repeated.get(&key) {
                recent[i].1 += 1;
                continue;
            }
            repeated.insert(key, recent.len());
        }
        if recent.len() == RECENT {
            break;
        }
        recent.push((e, 1));
    }
    if recent.is_empty() {
        return r#"<p class="none">No actions yet.</p>"#.into();
    }
    let live = shared.live.lock().map(|l| l.clone()).unwrap_or_default();
    let mut out = String::from(
        r#"<table class="actions"><tr><th>When</th><th>Agent</th><th>Action</th><th>Result</th><th>Why</th><th>Outcome</th><th>Feedback</th></tr>"#,
    );
    for (e, count) in recent {
        let d = decision_of(e).unwrap_or(e);
        let ts = e["ts"].as_f64().unwrap_or(0.0);
        let reference = e["ts"].to_string();
        let result = d["result"].as_str().unwrap_or("?");
        let who = match (e["event"].as_str(), e["by"].as_str()) {
            (Some("request"), Some(by)) => format!("operator {by}"),
            _ => e["agent"].as_str().unwrap_or("").to_string(),
        };
        let approval = d["approval"].as_object().map_or(String::new(), |a| {
            format!(
                " ({} by {})",
                a.get("decision").and_then(Value::as_str).unwrap_or("?"),
                a.get("by").and_then(Value::as_str).unwrap_or("nobody")
            )
        });
        let outcome = outcome(d, ts, &live);
        let approval = if count > 1 {
            format!("{approval} ×{count}")
        } else {
            approval
        };
        let given: String = feedback
            .get(&reference)
            .map(|list| {
                list.iter()
                    .map(|f| {
                        format!(
                            r#"<span class="fb {r}">{r}{c}</span>"#,
                            r = esc(f["rating"].as_str().unwrap_or("")),
                            c = f["comment"]
                                .as_str()
                                .filter(|c| !c.is_empty())
                                .map_or(String::new(), |c| format!(": {}", esc(c)))
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr class="action {class}" data-ref="{reference}"><td title="{ts:.3}">{ago}</td><td>{who}</td><td class="what">{action}</td><td class="result">{result}{approval}</td><td>{why}</td><td class="outcome">{outcome}</td>
<td>{given}<form data-ajax method="post" action="/console/feedback" class="feedback"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="ref" value="{reference}">
<input name="comment" placeholder="comment" size="12" maxlength="2000"> <button name="rating" value="good" title="good">good</button><button name="rating" value="bad" title="bad">bad</button></form></td></tr>"#,
            class = esc(result.split(':').next().unwrap_or("")),
            reference = esc(&reference),
            ago = ago(ts, now),
            who = esc(&who),
            action = esc(&action_words(e)),
            result = esc(result),
            approval = esc(&approval),
            why = explanation(&d["explanation"]),
            csrf = esc(csrf),
        );
    }
    out.push_str("</table>");
    out
}

/// What followed an action: its service's replicas now, against what was seen
/// when it was decided, and the latency then.
fn outcome(
    d: &Value,
    at: f64,
    (read_at, live): &(
        f64,
        std::collections::BTreeMap<String, crate::observe::Replicas>,
    ),
) -> String {
    if d["result"] != "applied" {
        return "—".into();
    }
    let Some(action) = d.get("proposed") else {
        return "—".into();
    };
    let key = match (action["namespace"].as_str(), action["service"].as_str()) {
        (Some(ns), Some(s)) => format!("{ns}/{s}"),
        _ => return "node action: see the nodes".into(),
    };
    let Some(now) = live.get(&key).filter(|_| *read_at > at) else {
        return "waiting for the next reading".into();
    };
    let recovered = if now.ready >= now.desired && now.desired > 0 {
        r#"<span class="good">recovered</span>"#
    } else {
        r#"<span class="bad">not yet</span>"#
    };
    let then = d["seen"]["replicas"]["ready"]
        .as_u64()
        .map_or(String::new(), |r| {
            format!(
                " (was {r}/{}{})",
                d["seen"]["replicas"]["desired"].as_u64().unwrap_or(0),
                d["seen"]["p95_ms"]
                    .as_f64()
                    .map_or(String::new(), |p| format!(", p95 {p:.0} ms"))
            )
        });
    format!(
        "{recovered}: {}/{} ready now{}",
        now.ready,
        now.desired,
        esc(&then)
    )
}

/// Each service's replicas and its features over the last half hour.
pub fn health(shared: &Shared, now: f64) -> String {
    let live = shared.live.lock().map(|l| l.1.clone()).unwrap_or_default();
    let source = shared
        .observation
        .clone()
        .map(crate::observe::PrometheusSource::new);
    let charted = [
        ("request_rate", "requests/s", "req/s", 1.0),
        ("p95_ms", "p95 latency", "ms", 1.0),
        ("error_rate", "errors", "%", 100.0),
        ("cpu_utilization", "CPU", "%", 100.0),
    ];
    let mut out = String::new();
    // Every service's charts at once, one thread per query: a slow Prometheus costs
    // one timeout, not one per chart.
    let charts: Vec<Vec<String>> = std::thread::scope(|scope| {
        let running: Vec<Vec<_>> = shared
            .services
            .iter()
            .map(|service| {
                charted
                    .iter()
                    .map(|&(feature, title, unit, scale)| {
                        let source = &source;
                        scope.spawn(move || {
                            let points = match source {
                                Some(Ok(s)) => {
                                    let template = s
                                        .queries()
                                        .iter()
                                        .find(|(f, _)| *f == feature)
                                        .map(|(_, q)| q.to_string())
                                        .unwrap_or_default();
                                    s.range(&template, service, (now - WINDOW_S, now, STEP_S))
                                        .map_err(|e| e.to_string())
                                }
                                Some(Err(e)) => Err(e.to_string()),
                                None => Err("no [observation] table".into()),
                            };
                            match points {
                                Ok(p) => {
                                    let scaled: Vec<(f64, f64)> =
                                        p.into_iter().map(|(t, v)| (t, v * scale)).collect();
                                    chart::line(title, unit, &scaled, "no samples")
                                }
                                Err(e) => chart::line(title, unit, &[], &e),
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        running
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| "chart failed".into()))
                    .collect()
            })
            .collect()
    });
    for (service, row) in shared.services.iter().zip(charts) {
        let replicas = live
            .iter()
            .find(|(k, _)| k.rsplit('/').next() == Some(service.as_str()))
            .map_or("replicas unknown".to_string(), |(_, r)| {
                format!("{}/{} ready, {} starting", r.ready, r.desired, r.booting)
            });
        let _ = write!(
            out,
            r#"<div class="service" data-service="{s}"><h3>{s} <small>{replicas}</small></h3><div class="charts">{charts}</div></div>"#,
            s = esc(service),
            charts = row.join(""),
        );
    }
    out
}

/// Audit lines containing `q` (case-insensitive), the newest [`SEARCH_LIMIT`].
fn search(shared: &Shared, q: &str) -> Result<Vec<String>, String> {
    let file = match std::fs::File::open(&shared.audit_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: {e}", shared.audit_path.display())),
    };
    let needle = q.to_lowercase();
    let mut found = std::collections::VecDeque::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", shared.audit_path.display()))?;
        if needle.is_empty() || line.to_lowercase().contains(&needle) {
            if found.len() == SEARCH_LIMIT {
                found.pop_front();
            }
            found.push_back(line);
        }
    }
    Ok(found.into_iter().rev().collect())
}

/// The audit search page.
pub fn audit(shared: &Shared, q: &str, now: f64) -> String {
    let mut rows = String::new();
    let lines = search(shared, q);
    match &lines {
        Err(e) => {
            let _ = write!(rows, r#"<p class="err">{}</p>"#, esc(e));
        }
        Ok(lines) if lines.is_empty() => rows.push_str(r#"<p class="none">No entries.</p>"#),
        Ok(lines) => {
            rows.push_str(r#"<table class="audit"><tr><th>When</th><th>Event</th><th>Agent</th><th>What</th><th>Entry</th></tr>"#);
            for line in lines {
                let e: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                let what = match e["event"].as_str() {
                    Some("hold") => e["reasons"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .unwrap_or_default(),
                    Some("feedback") => format!(
                        "{}: {} {}",
                        e["action"].as_str().unwrap_or("?"),
                        e["rating"].as_str().unwrap_or(""),
                        e["comment"].as_str().unwrap_or("")
                    ),
                    Some("proposal") => format!("#{} {}", e["id"], describe(&e["action"])),
                    Some("prevented") => format!(
                        "{}: {}",
                        e["rule"].as_str().unwrap_or("?"),
                        e["because"].as_str().unwrap_or("")
                    ),
                    _ => match decision_of(&e) {
                        Some(d) => format!(
                            "{} → {}",
                            action_words(&e),
                            d["result"].as_str().unwrap_or("?")
                        ),
                        None => e["text"].as_str().unwrap_or("").to_string(),
                    },
                };
                let _ = write!(
                    rows,
                    r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><details><summary>JSON</summary><code>{}</code></details></td></tr>"#,
                    ago(e["ts"].as_f64().unwrap_or(0.0), now),
                    esc(e["event"].as_str().unwrap_or("?")),
                    esc(e["agent"].as_str().unwrap_or("")),
                    esc(&what),
                    esc(line)
                );
            }
            rows.push_str("</table>");
        }
    }
    let q_url: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    format!(
        r#"{head}<body><header><h1>hale adapter</h1><nav><a href="/console">Console</a> <a href="/console/audit">Audit log</a></nav></header><main>
<section><h2>Audit log</h2><form method="get" action="/console/audit"><input name="q" value="{q}" placeholder="search: a service, a replica, an event, a rule" size="40"> <button>Search</button>
<a href="/console/audit.jsonl?q={q_url}">download (JSONL)</a></form>
<p class="note">{shown}, newest first, from {path}.</p>{rows}</section></main></body></html>"#,
        head = head("hale adapter: audit log"),
        q = esc(q),
        shown = match &lines {
            Ok(l) if l.len() == SEARCH_LIMIT => format!("the newest {SEARCH_LIMIT} entries"),
            Ok(l) if l.len() == 1 => "1 entry".into(),
            Ok(l) => format!("{} entries", l.len()),
            Err(_) => "no entries".into(),
        },
        path = esc(&shared.audit_path.display().to_string()),
    )
}

/// The audit lines a search finds, newest first, as JSON lines.
pub fn audit_lines(shared: &Shared, q: &str) -> String {
    search(shared, q)
        .map(|l| l.join("\n") + "\n")
        .unwrap_or_default()
}

/// Every feedback event of the audit log, oldest first, as JSON lines.
pub fn feedback_lines(shared: &Shared) -> String {
    let Ok(file) = std::fs::File::open(&shared.audit_path) else {
        return String::new();
    };
    let mut out = String::new();
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let is_feedback =
            serde_json::from_str::<Value>(&line).is_ok_and(|e| e["event"] == "feedback");
        if is_feedback {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

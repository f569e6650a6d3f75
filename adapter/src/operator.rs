//! An operator's requests ([`crate::ask`]'s grammar), end to end: questions are
//! answered from the audit log; actions, pauses and mode switches go to the decision
//! loop ([`crate::run::Adapter::handle`]), which delegates an action to the agent that
//! owns it, passes it through the guardrails, carries it out and audits it as a
//! `request` event.
//!
//! - `why did you VERB NAME?`: the latest decision or request in the audit log whose
//!   action is that verb on that name (a replica, service or node): when, who (the
//!   policy or the operator), what the guardrails said, what it should do, the top
//!   alternatives with their probabilities and what was seen.
//! - `what is wrong with SERVICE?`: its last readings (from the latest decision that
//!   saw it), the holds and actions on it in the last hour.
//! - `what happened in the last …?`: the decisions, holds and requests of that
//!   window, counted by kind and result, and the most recent actions.

use crate::ask::{Agent, Request};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc::Sender;

/// A request on its way to the decision loop, with where its answer goes.
pub struct Asked {
    /// What was asked.
    pub request: Request,
    /// Who asked (the HTTP body's `by`, or `http`).
    pub by: String,
    /// The loop's answer: a sentence, or why it refused.
    pub reply: Sender<Result<Reply, String>>,
}

/// The loop's answer to a request it carried out (or tried to).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reply {
    /// One word: `applied`, `blocked`, `failed: …`, `paused`, `resumed`, `switched`.
    pub result: String,
    /// A sentence for the operator.
    pub answer: String,
}

/// The agent whose job an action request is (who it is delegated to); `None` for
/// requests that are not actions.
pub fn owner(request: &Request) -> Option<Agent> {
    match request {
        Request::Scale { .. } => Some(Agent::Scaling),
        Request::Restart { .. }
        | Request::Rollback { .. }
        | Request::Drain { .. }
        | Request::Cordon { .. } => Some(Agent::Healing),
        _ => None,
    }
}

/// Whether the request is a question (answered from the audit log, without the loop).
pub fn is_question(request: &Request) -> bool {
    matches!(
        request,
        Request::Why { .. }
            | Request::WhatIsWrong { .. }
            | Request::WhatHappened { .. }
            | Request::Help
    )
}

/// The answer to a question, from the audit log at `audit` as of `now_unix`; `None`
/// for a request that is not a question. An unreadable log is said, not hidden.
pub fn answer(request: &Request, audit: &Path, now_unix: f64) -> Option<String> {
    if !is_question(request) {
        return None;
    }
    if *request == Request::Help {
        return Some(help());
    }
    let events = match read_events(audit) {
        Ok(events) => events,
        Err(e) => {
            return Some(format!(
                "I cannot read the audit log {}: {e}",
                audit.display()
            ));
        }
    };
    Some(match request {
        Request::Why { verb, subject } => why(&events, verb, subject, now_unix),
        Request::WhatIsWrong { service } => what_is_wrong(&events, service, now_unix),
        Request::WhatHappened { seconds } => what_happened(&events, *seconds, now_unix),
        _ => unreachable!("questions only"),
    })
}

/// What can be asked, one form per line.
pub fn help() -> String {
    let mut out = String::from("Ask me, in these words:\n");
    for (_, form) in crate::ask::USAGE {
        let _ = writeln!(out, "  {form}");
    }
    out
}

/// Every event of the log, oldest first (a line that does not parse is skipped: the
/// log is append-only, so only a crash mid-line could leave one, and only last).
pub(crate) fn read_events(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// `N s ago`, `N min ago`, `N h ago`.
pub(crate) fn ago(ts: f64, now: f64) -> String {
    let s = (now - ts).max(0.0);
    if s < 120.0 {
        format!("{s:.0} s ago")
    } else if s < 7200.0 {
        format!("{:.0} min ago", s / 60.0)
    } else {
        format!("{:.1} h ago", s / 3600.0)
    }
}

/// The action of a decision or request event.
pub(crate) fn action_of(event: &Value) -> Option<&Value> {
    match event["event"].as_str()? {
        "decision" => event.get("proposed"),
        "request" => event.get("decision").and_then(|d| d.get("proposed")),
        _ => None,
    }
}

/// The names an action is about: its service, replica or node.
fn names_of(action: &Value) -> Vec<&str> {
    ["service", "replica", "node"]
        .iter()
        .filter_map(|k| action.get(*k).and_then(Value::as_str))
        .collect()
}

/// Whether an action kind is what a `why` verb asks about.
fn kind_matches(kind: &str, verb: &str) -> bool {
    match verb {
        "roll" => kind == "rollback",
        "restore" => kind == "restart",
        v => kind == v,
    }
}

/// An action of the log in words (as the terminal prints it), or its kind where the
/// entry is not one this build knows.
pub(crate) fn describe(action: &Value) -> String {
    serde_json::from_value::<crate::action::Action>(action.clone()).map_or_else(
        |_| action["kind"].as_str().unwrap_or("?").to_string(),
        |a| a.to_string(),
    )
}

/// One line of readings: requests/s, CPU, p95, replicas.
fn readings(seen: &Value) -> Option<String> {
    let f = |k: &str| seen.get(k).and_then(Value::as_f64);
    let r = seen.get("replicas")?;
    Some(format!(
        "{:.1} req/s, CPU {:.0} %, p95 {:.0} ms, {}/{} replicas ready",
        f("request_rate")?,
        100.0 * f("cpu_utilization")?,
        f("p95_ms")?,
        r.get("ready").and_then(Value::as_u64).unwrap_or(0),
        r.get("desired").and_then(Value::as_u64).unwrap_or(0),
    ))
}

/// `why did you VERB SUBJECT?`
fn why(events: &[Value], verb: &str, subject: &str, now: f64) -> String {
    let found = events.iter().rev().find(|e| {
        action_of(e).is_some_and(|a| {
            a["kind"].as_str().is_some_and(|k| kind_matches(k, verb))
                && names_of(a).contains(&subject)
        })
    });
    let Some(event) = found else {
        return format!(
            "I have no {verb} of {subject} in the audit log: no agent and no operator asked for one."
        );
    };
    let ts = event["ts"].as_f64().unwrap_or(now);
    let decision = if event["event"] == "request" {
        &event["decision"]
    } else {
        event
    };
    let action = action_of(event).map(describe).unwrap_or_default();
    let result = decision["result"].as_str().unwrap_or("?");
    let mut out = if event["event"] == "request" {
        format!(
            "{} asked for it {}: {action} ({result}).",
            event["by"].as_str().unwrap_or("an operator"),
            ago(ts, now)
        )
    } else {
        let policy = decision["explanation"]["policy"]
            .as_str()
            .unwrap_or("the policy");
        format!("{policy} decided {action} {} ({result}).", ago(ts, now))
    };
    if let Some(effect) = decision["explanation"]["expected_effect"].as_str() {
        let _ = write!(out, " Expected: {effect}.");
    }
    let alternatives: Vec<String> = decision["explanation"]["alternatives"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .filter_map(|a| {
            Some(format!(
                "{} {:.0} %",
                a["action"].as_str()?,
                100.0 * a["probability"].as_f64()?
            ))
        })
        .collect();
    if !alternatives.is_empty() {
        let _ = write!(out, " Its choices: {}.", alternatives.join(", "));
    }
    if let Some(seen) = decision.get("seen").and_then(readings) {
        let _ = write!(
            out,
            " It saw {}: {seen}.",
            decision["service"].as_str().unwrap_or(subject)
        );
    }
    if let Some(rule) = decision["verdict"]["rule"].as_object() {
        let _ = write!(out, " The guardrails: {}.", Value::Object(rule.clone()));
    }
    out
}

/// `what is wrong with SERVICE?`
fn what_is_wrong(events: &[Value], service: &str, now: f64) -> String {
    let about = |e: &Value| {
        e["service"].as_str() == Some(service)
            || action_of(e).is_some_and(|a| names_of(a).contains(&service))
    };
    let last_seen = events.iter().rev().filter(|e| about(e)).find_map(|e| {
        let d = if e["event"] == "request" {
            &e["decision"]
        } else {
            e
        };
        Some((e["ts"].as_f64()?, readings(d.get("seen")?)?))
    });
    let hour: Vec<&Value> = events
        .iter()
        .filter(|e| e["ts"].as_f64().is_some_and(|t| now - t <= 3600.0))
        .collect();
    let actions: Vec<String> = hour
        .iter()
        .copied()
        .filter(|e| about(e))
        .filter_map(|e| {
            let a = action_of(e)?;
            if a["kind"] == "noop" {
                return None;
            }
            let d = if e["event"] == "request" {
                &e["decision"]
            } else {
                e
            };
            Some(format!(
                "{} {} ({})",
                ago(e["ts"].as_f64()?, now),
                describe(a),
                d["result"].as_str().unwrap_or("?")
            ))
        })
        .collect();
    let holds: Vec<&str> = hour
        .iter()
        .filter(|e| e["event"] == "hold")
        .flat_map(|e| e["reasons"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .filter(|r| r.contains(service))
        .collect();
    let mut out = match last_seen {
        Some((ts, seen)) => format!("{service}, as last seen {}: {seen}.", ago(ts, now)),
        None => format!("I have no readings of {service} in the audit log."),
    };
    if actions.is_empty() {
        let _ = write!(out, " No action on it in the last hour.");
    } else {
        let _ = write!(out, " In the last hour: {}.", actions.join("; "));
    }
    if let Some(last) = holds.last() {
        let _ = write!(
            out,
            " {} steps held back over it in the last hour, most recently: {last}.",
            holds.len()
        );
    }
    out
}

/// `what happened in the last …?`
fn what_happened(events: &[Value], seconds: u64, now: f64) -> String {
    let since = now - seconds as f64;
    let recent: Vec<&Value> = events
        .iter()
        .filter(|e| e["ts"].as_f64().is_some_and(|t| t >= since))
        .collect();
    let window = if seconds.is_multiple_of(3600) {
        format!("{} h", seconds / 3600)
    } else {
        format!("{} min", seconds / 60)
    };
    if recent.is_empty() {
        return format!("Nothing in the audit log in the last {window}.");
    }
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut actions = Vec::new();
    for e in &recent {
        let event = e["event"].as_str().unwrap_or("?");
        match action_of(e) {
            Some(a) if a["kind"] != "noop" => {
                let d = if event == "request" {
                    &e["decision"]
                } else {
                    *e
                };
                let result = d["result"].as_str().unwrap_or("?");
                let result = result.split(':').next().unwrap_or(result);
                *counts
                    .entry(format!("{} {result}", a["kind"].as_str().unwrap_or("?")))
                    .or_default() += 1;
                actions.push(format!(
                    "{} {}{} ({result})",
                    ago(e["ts"].as_f64().unwrap_or(now), now),
                    describe(a),
                    if event == "request" {
                        format!(", asked by {}", e["by"].as_str().unwrap_or("an operator"))
                    } else {
                        String::new()
                    }
                ));
            }
            Some(_) => {}
            None => *counts.entry(event.to_string()).or_default() += 1,
        }
    }
    let counted: Vec<String> = counts.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    let mut out = format!("In the last {window}: {}.", counted.join(", "));
    if !actions.is_empty() {
        let shown = actions.len().min(10);
        let _ = write!(
            out,
            " Latest actions: {}.",
            actions[actions.len() - shown..]
                .iter()
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(events: &[Value]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let text: String = events.iter().map(|e| format!("{e}\n")).collect();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn restart_decision(ts: f64) -> Value {
        json!({
            "ts": ts, "event": "decision", "service": "api",
            "seen": {"request_rate": 42.0, "p95_ms": 380.0, "cpu_utilization": 0.91,
                     "replicas": {"ready": 2, "starting": 0, "desired": 3}},
            "proposed": {"kind": "restart", "namespace": "shop", "service": "api", "replica": "api-7f9c"},
            "verdict": {"verdict": "allow"},
            "explanation": {"policy": "Healing-v0 PPO", "features": [],
                            "alternatives": [{"action": "restart api-7f9c", "probability": 0.81},
                                             {"action": "nothing", "probability": 0.12}],
                            "expected_effect": "api-7f9c comes back ready"},
            "approval": null, "result": "applied"
        })
    }

    #[test]
    fn why_reads_the_latest_matching_decision() {
        let now = 10_000.0;
        let f = log(&[
            json!({"ts": 9_000.0, "event": "hold", "reasons": ["prometheus: timeout"]}),
            restart_decision(9_700.0),
        ]);
        let why = |text: &str| answer(&crate::ask::parse(text).unwrap(), f.path(), now).unwrap();
        let a = why("why did you restart api-7f9c?");
        assert!(a.contains("Healing-v0 PPO decided"), "{a}");
        assert!(a.contains("5 min ago"), "{a}");
        assert!(a.contains("restart api-7f9c 81 %"), "{a}");
        assert!(a.contains("comes back ready"), "{a}");
        assert!(
            a.contains("42.0 req/s") && a.contains("2/3 replicas ready"),
            "{a}"
        );
        let a = why("why did you drain node-b?");
        assert!(a.contains("no drain of node-b"), "{a}");
    }

    #[test]
    fn what_is_wrong_and_what_happened_summarise_the_log() {
        let now = 10_000.0;
        let f = log(&[
            json!({"ts": 1_000.0, "event": "decision", "service": "api", "proposed": {"kind": "scale", "namespace": "shop", "service": "api", "replicas": 9}, "result": "applied"}),
            json!({"ts": 9_000.0, "event": "hold", "reasons": ["api: p95_ms: no sample"]}),
            restart_decision(9_650.0),
            json!({"ts": 9_900.0, "event": "request", "by": "ana", "text": "scale api to 4",
                   "decision": {"service": "api", "proposed": {"kind": "scale", "namespace": "shop", "service": "api", "replicas": 4}, "result": "blocked"}}),
        ]);
        let ask = |text: &str| answer(&crate::ask::parse(text).unwrap(), f.path(), now).unwrap();
        let a = ask("what is wrong with api?");
        assert!(
            a.contains("as last seen 6 min ago") && a.contains("CPU 91 %"),
            "{a}"
        );
        assert!(a.contains("restart") && a.contains("scale"), "{a}");
        assert!(a.contains("1 steps held back"), "{a}");
        // The scale of 2.5 hours ago is outside the hour.
        assert!(!a.contains("9 replicas") && !a.contains("to 9"), "{a}");
        let a = ask("what happened in the last hour?");
        assert!(
            a.contains("1 × hold")
                && a.contains("1 × restart applied")
                && a.contains("1 × scale blocked"),
            "{a}"
        );
        assert!(a.contains("asked by ana"), "{a}");
        let a = ask("what happened in the last 5 minutes");
        assert!(
            a.contains("1 × scale blocked") && !a.contains("restart"),
            "{a}"
        );
        let a = ask("what is wrong with cart");
        assert!(a.contains("no readings of cart"), "{a}");
        assert!(ask("help").contains("scale SERVICE to N"));
        assert_eq!(
            answer(&crate::ask::parse("scale api to 4").unwrap(), f.path(), now),
            None
        );
    }
}

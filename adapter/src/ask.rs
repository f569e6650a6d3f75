//! Requests in plain words, without a language model: a small grammar of what an
//! operator asks the adapter to do or to tell.
//!
//! | request | examples |
//! |---|---|
//! | scale | `scale api to 4`, `scale api to 4 replicas`, `set api to 4 replicas` |
//! | restart | `restart api-7f9c`, `restart pod api-7f9c` |
//! | roll back | `roll back checkout`, `rollback checkout`, `roll checkout back` |
//! | drain, cordon | `drain node-b`, `drain node node-b`, `cordon node-b` |
//! | pause, resume | `pause healing`, `resume the healer`, `unpause scaling` |
//! | mode | `switch scaling to manual`, `put healing in auto mode` |
//! | why | `why did you restart api-7f9c?`, `why did you scale api?` |
//! | what is wrong | `what is wrong with checkout?`, `what's wrong with checkout` |
//! | what happened | `what happened in the last hour?`, `… in the last 30 minutes`, `… today` |
//! | help | `help` |
//!
//! Words are case-insensitive; `please`, `can you`, `could you` and a closing `?`, `.`
//! or `!` are ignored. Agents are named by what they do or who they are: `scaling` or
//! `scaler`, `healing` or `healer`, `security` or `defender`. A request that does not
//! parse gets an error that says what was expected and, where a word is a typo of a
//! command's, the closest command ([`AskError::suggestion`]).

use serde::Serialize;

/// An agent of the adapter, by the job it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    /// Scaling-v0's policy: replica counts.
    Scaling,
    /// Healing-v0's: restarts, reschedules, roll-backs, drains.
    Healing,
    /// Security-v0's: isolations, restores, rotations.
    Security,
}

impl Agent {
    /// The word the grammar prints it with.
    pub fn word(self) -> &'static str {
        match self {
            Agent::Scaling => "scaling",
            Agent::Healing => "healing",
            Agent::Security => "security",
        }
    }

    fn parse(word: &str) -> Option<Agent> {
        match word {
            "scaling" | "scaler" | "autoscaling" | "autoscaler" => Some(Agent::Scaling),
            "healing" | "healer" | "self-healing" => Some(Agent::Healing),
            "security" | "defender" | "defence" | "defense" => Some(Agent::Security),
            _ => None,
        }
    }
}

/// How an agent's actions are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// At once, behind the guardrails.
    Auto,
    /// Proposed to a person first.
    Manual,
}

/// What was asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Set a service's replicas.
    Scale {
        /// The service.
        service: String,
        /// Desired replicas.
        replicas: u32,
    },
    /// Restart one replica (pod or task).
    Restart {
        /// Its name.
        replica: String,
    },
    /// Roll a service back to its previous version.
    Rollback {
        /// The service.
        service: String,
    },
    /// Move everything off a node.
    Drain {
        /// The node.
        node: String,
    },
    /// Stop placing work on a node.
    Cordon {
        /// The node.
        node: String,
    },
    /// Stop an agent acting (it keeps observing).
    Pause {
        /// The agent.
        agent: Agent,
    },
    /// Let a paused agent act again.
    Resume {
        /// The agent.
        agent: Agent,
    },
    /// Change an agent's mode.
    SetMode {
        /// The agent.
        agent: Agent,
        /// Its new mode.
        mode: Mode,
    },
    /// Why an action was taken on something (a replica, a service or a node).
    Why {
        /// The verb asked about (`restart`, `scale`, …).
        verb: String,
        /// What it was done to.
        subject: String,
    },
    /// What is wrong with a service: its readings and recent actions.
    WhatIsWrong {
        /// The service.
        service: String,
    },
    /// What happened lately: the audit log of the last `seconds`.
    WhatHappened {
        /// How far back.
        seconds: u64,
    },
    /// What can be asked.
    Help,
}

impl std::fmt::Display for Request {
    /// The request in its canonical words (which parse back to it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Scale { service, replicas } => write!(f, "scale {service} to {replicas}"),
            Request::Restart { replica } => write!(f, "restart {replica}"),
            Request::Rollback { service } => write!(f, "roll back {service}"),
            Request::Drain { node } => write!(f, "drain {node}"),
            Request::Cordon { node } => write!(f, "cordon {node}"),
            Request::Pause { agent } => write!(f, "pause {}", agent.word()),
            Request::Resume { agent } => write!(f, "resume {}", agent.word()),
            Request::SetMode { agent, mode } => write!(
                f,
                "switch {} to {}",
                agent.word(),
                match mode {
                    Mode::Auto => "auto",
                    Mode::Manual => "manual",
                }
            ),
            Request::Why { verb, subject } if verb == "roll" => {
                write!(f, "why did you roll back {subject}?")
            }
            Request::Why { verb, subject } => write!(f, "why did you {verb} {subject}?"),
            Request::WhatIsWrong { service } => write!(f, "what is wrong with {service}?"),
            Request::WhatHappened { seconds } => {
                write!(f, "what happened in the last {} minutes?", seconds / 60)
            }
            Request::Help => write!(f, "help"),
        }
    }
}

/// A request that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct AskError {
    /// What was wrong, with the expected form.
    pub message: String,
    /// The closest command, where a word looks like a typo of one.
    pub suggestion: Option<String>,
}

/// The commands' forms, for errors and `help`.
pub const USAGE: &[(&str, &str)] = &[
    ("scale", "scale SERVICE to N"),
    ("restart", "restart REPLICA"),
    ("roll", "roll back SERVICE"),
    ("rollback", "rollback SERVICE"),
    ("drain", "drain NODE"),
    ("cordon", "cordon NODE"),
    ("pause", "pause AGENT (scaling, healing or security)"),
    ("resume", "resume AGENT"),
    ("switch", "switch AGENT to auto|manual"),
    ("why", "why did you VERB NAME?"),
    (
        "what",
        "what is wrong with SERVICE? | what happened in the last hour?",
    ),
    ("help", "help"),
];

/// Verbs a `why` question may ask about.
const VERBS: &[&str] = &[
    "restart", "scale", "drain", "cordon", "isolate", "release", "rotate", "resize", "restore",
    "roll",
];

/// Parses one request.
pub fn parse(text: &str) -> Result<Request, AskError> {
    let words = normalise(text);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.is_empty() {
        return Err(usage_error("an empty request", None));
    }
    let usage = |verb: &str| {
        let form = USAGE
            .iter()
            .find(|(v, _)| *v == verb)
            .map_or("help", |(_, u)| u);
        AskError {
            message: format!("{text:?}: expected `{form}`"),
            suggestion: None,
        }
    };
    // `set scaling to manual` is a mode; `set api to 4 replicas` a scale.
    if let [first @ ("switch" | "set" | "put"), rest @ ..] = w.as_slice() {
        match set_mode(rest) {
            Some(r) => return Ok(r),
            None if *first != "set" => return Err(usage("switch")),
            None => {}
        }
    }
    match w.as_slice() {
        ["help"] | ["what", "can", "i", "ask"] | ["commands"] => Ok(Request::Help),
        // scale api to 4 [replicas] | scale api up/down to 4 | set api to 4 replicas
        ["scale", service, rest @ ..] | ["set", service, rest @ ..] if !is_agent(service) => {
            let rest = match rest {
                ["up" | "down", rest @ ..] => rest,
                rest => rest,
            };
            match rest {
                ["to", n] | ["to", n, "replicas" | "replica"] => Ok(Request::Scale {
                    service: service.to_string(),
                    replicas: count(n).ok_or_else(|| AskError {
                        message: format!("{text:?}: {n:?} is not a replica count"),
                        suggestion: None,
                    })?,
                }),
                _ => Err(usage("scale")),
            }
        }
        ["restart", "pod" | "replica" | "task", replica] | ["restart", replica] => {
            Ok(Request::Restart {
                replica: replica.to_string(),
            })
        }
        ["roll", "back", service] | ["rollback", service] | ["roll", service, "back"] => {
            Ok(Request::Rollback {
                service: service.to_string(),
            })
        }
        ["roll", ..] => Err(usage("roll")),
        ["drain", "node", node] | ["drain", node] => Ok(Request::Drain {
            node: node.to_string(),
        }),
        ["cordon", "node", node] | ["cordon", node] => Ok(Request::Cordon {
            node: node.to_string(),
        }),
        ["pause" | "stop", rest @ ..] => agent_of(rest)
            .map(|agent| Request::Pause { agent })
            .ok_or_else(|| usage("pause")),
        ["resume" | "unpause" | "start", rest @ ..] => agent_of(rest)
            .map(|agent| Request::Resume { agent })
            .ok_or_else(|| usage("resume")),
        ["why", "did", "you", verb, rest @ ..] | ["why", "was", rest @ .., verb]
            if VERBS.contains(&stem(verb)) =>
        {
            let subject = rest
                .iter()
                .copied()
                .find(|s| !matches!(*s, "the" | "pod" | "replica" | "node" | "service" | "back" | "up" | "down"));
            match subject {
                Some(subject) => Ok(Request::Why {
                    verb: stem(verb).to_string(),
                    subject: subject.to_string(),
                }),
                None => Err(usage("why")),
            }
        }
        ["why", ..] => Err(usage("why")),
        ["what", "is", "wrong", "with", service]
        | ["whats", "wrong", "with", service]
        | ["what", "is", "the", "matter", "with", service] => Ok(Request::WhatIsWrong {
            service: service.to_string(),
        }),
        ["what", "happened", rest @ ..] | ["what", "has", "happened", rest @ ..] => {
            window(rest).map(|seconds| Request::WhatHappened { seconds }).ok_or_else(|| {
                AskError {
                    message: format!(
                        "{text:?}: expected `what happened in the last hour?` (or `in the last N minutes`, `hours`, `today`)"
                    ),
                    suggestion: None,
                }
            })
        }
        ["what", ..] => Err(usage("what")),
        [first, rest @ ..] => Err(usage_error(
            &format!("{text:?}: no request starts with {first:?}"),
            closest(first).map(|verb| {
                std::iter::once(verb)
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        )),
        [] => Err(usage_error("an empty request", None)),
    }
}

fn usage_error(message: &str, suggestion: Option<String>) -> AskError {
    let forms: Vec<&str> = USAGE.iter().map(|(_, u)| *u).collect();
    AskError {
        message: format!("{message}; ask one of: {}", forms.join("; ")),
        suggestion,
    }
}

/// Lower-cased words without politeness or closing punctuation (`what's` → `whats`).
fn normalise(text: &str) -> Vec<String> {
    let lowered = text.trim().to_lowercase().replace(['’', '\''], "");
    let mut words: Vec<String> = lowered
        .split_whitespace()
        .map(|w| w.trim_end_matches(['?', '.', '!', ',']).to_string())
        .filter(|w| !w.is_empty())
        .collect();
    loop {
        match words.as_slice() {
            [p, ..] if p == "please" => {
                words.remove(0);
            }
            [c, y, ..] if (c == "can" || c == "could" || c == "would") && y == "you" => {
                words.drain(..2);
            }
            _ => break,
        }
    }
    if words.last().is_some_and(|w| w == "please") {
        words.pop();
    }
    words
}

fn is_agent(word: &str) -> bool {
    Agent::parse(word).is_some()
}

/// The agent named by `words` (`healing`, `the healer`, `healing agent`).
fn agent_of(words: &[&str]) -> Option<Agent> {
    match words {
        [a] | ["the", a] | [a, "agent"] | ["the", a, "agent"] => Agent::parse(a),
        _ => None,
    }
}

/// `AGENT to|in|into MODE [mode]`.
fn set_mode(words: &[&str]) -> Option<Request> {
    match words {
        [a @ .., "to" | "in" | "into", m] | [a @ .., "to" | "in" | "into", m, "mode"] => {
            Some(Request::SetMode {
                agent: agent_of(a)?,
                mode: mode_of(m)?,
            })
        }
        _ => None,
    }
}

fn mode_of(word: &str) -> Option<Mode> {
    match word {
        "auto" | "automatic" | "autopilot" => Some(Mode::Auto),
        "manual" => Some(Mode::Manual),
        _ => None,
    }
}

/// A replica count: digits, or a number word up to twelve.
fn count(word: &str) -> Option<u32> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    word.parse()
        .ok()
        .or_else(|| WORDS.iter().position(|w| *w == word).map(|i| i as u32))
}

/// A verb's base form (`restarted` → `restart`, `rolled` → `roll`).
fn stem(verb: &str) -> &str {
    [
        "restart", "scale", "drain", "cordon", "isolate", "release", "rotate", "resize", "restore",
        "roll",
    ]
    .into_iter()
    .find(|v| verb.starts_with(v))
    .unwrap_or(verb)
}

/// How far back `in the last hour`, `in the last 30 minutes`, `in the past 2 hours`,
/// `today` (24 hours) or nothing (an hour) reach, in seconds.
fn window(words: &[&str]) -> Option<u64> {
    let unit = |u: &str| match u.trim_end_matches('s') {
        "minute" | "min" => Some(60),
        "hour" | "hr" => Some(3600),
        "day" => Some(86_400),
        _ => None,
    };
    match words {
        [] => Some(3600),
        ["today"] | ["in", "the", "last", "day"] => Some(86_400),
        ["in", "the", "last" | "past", u] | ["over", "the", "last" | "past", u] => unit(u),
        ["in", "the", "last" | "past", n, u] | ["over", "the", "last" | "past", n, u] => {
            Some(u64::from(count(n)?) * unit(u)?)
        }
        _ => None,
    }
}

/// The command verb closest to a word that is none (at most two edits away).
fn closest(word: &str) -> Option<&'static str> {
    USAGE
        .iter()
        .map(|(verb, _)| *verb)
        .map(|verb| (strsim::damerau_levenshtein(word, verb), verb))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, verb)| verb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Request {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn the_issue_s_examples_parse() {
        assert_eq!(
            ok("scale api to 4"),
            Request::Scale {
                service: "api".into(),
                replicas: 4
            }
        );
        assert_eq!(
            ok("restart api-7f9c"),
            Request::Restart {
                replica: "api-7f9c".into()
            }
        );
        assert_eq!(
            ok("roll back checkout"),
            Request::Rollback {
                service: "checkout".into()
            }
        );
        assert_eq!(
            ok("drain node-b"),
            Request::Drain {
                node: "node-b".into()
            }
        );
        assert_eq!(
            ok("pause healing"),
            Request::Pause {
                agent: Agent::Healing
            }
        );
        assert_eq!(
            ok("switch scaling to manual"),
            Request::SetMode {
                agent: Agent::Scaling,
                mode: Mode::Manual
            }
        );
        assert_eq!(
            ok("why did you restart api-7f9c?"),
            Request::Why {
                verb: "restart".into(),
                subject: "api-7f9c".into()
            }
        );
        assert_eq!(
            ok("what is wrong with checkout?"),
            Request::WhatIsWrong {
                service: "checkout".into()
            }
        );
        assert_eq!(
            ok("what happened in the last hour?"),
            Request::WhatHappened { seconds: 3600 }
        );
    }

    #[test]
    fn other_wordings_mean_the_same() {
        for (a, b) in [
            ("Please scale API to 4 replicas.", "scale api to 4"),
            ("can you scale api up to four", "scale api to 4"),
            ("set api to 4 replicas", "scale api to 4"),
            ("restart pod api-7f9c", "restart api-7f9c"),
            ("rollback checkout", "roll back checkout"),
            ("roll checkout back", "roll back checkout"),
            ("drain node node-b", "drain node-b"),
            ("stop the healer", "pause healing"),
            ("unpause the healing agent", "resume healing"),
            ("put scaling in manual mode", "switch scaling to manual"),
            ("set the defender to auto", "switch security to auto"),
            (
                "why did you restart pod api-7f9c",
                "why did you restart api-7f9c?",
            ),
            (
                "Why did you roll back checkout?",
                "why did you roll checkout?",
            ),
            ("what's wrong with checkout", "what is wrong with checkout?"),
            (
                "what happened in the last 60 minutes",
                "what happened in the last hour?",
            ),
            ("what happened", "what happened in the last hour"),
        ] {
            assert_eq!(ok(a), ok(b), "{a:?} and {b:?}");
        }
        assert_eq!(
            ok("what happened today"),
            Request::WhatHappened { seconds: 86_400 }
        );
        assert_eq!(
            ok("what happened in the past 2 hours"),
            Request::WhatHappened { seconds: 7200 }
        );
    }

    #[test]
    fn typos_get_the_closest_command_and_wrong_forms_their_usage() {
        let e = parse("scael api to 4").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("scale api to 4"));
        assert!(
            e.to_string().contains("did you mean `scale api to 4`"),
            "{e}"
        );
        let e = parse("restrat api-7f9c").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("restart api-7f9c"));
        let e = parse("dran node-b").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("drain node-b"));
        // Nothing close: the forms, no guess.
        let e = parse("delete everything").unwrap_err();
        assert_eq!(e.suggestion, None);
        assert!(e.to_string().contains("scale SERVICE to N"), "{e}");
        // The right verb, the wrong shape: that command's form.
        for (bad, form) in [
            ("scale api", "scale SERVICE to N"),
            ("scale api to many", "not a replica count"),
            ("pause everything", "pause AGENT"),
            ("switch scaling to fast", "switch AGENT to auto|manual"),
            (
                "what happened last tuesday",
                "what happened in the last hour",
            ),
            ("why", "why did you VERB NAME"),
            ("", "an empty request"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains(form), "{bad:?}: {e}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,12}".prop_filter("not a grammar word", |s| {
            !matches!(
                s.as_str(),
                "to" | "up"
                    | "down"
                    | "back"
                    | "pod"
                    | "replica"
                    | "task"
                    | "node"
                    | "the"
                    | "service"
                    | "agent"
                    | "mode"
            ) && Agent::parse(s).is_none()
        })
    }

    fn request() -> impl Strategy<Value = Request> {
        let agent = prop_oneof![
            Just(Agent::Scaling),
            Just(Agent::Healing),
            Just(Agent::Security)
        ];
        prop_oneof![
            (name(), 0u32..10_000)
                .prop_map(|(service, replicas)| Request::Scale { service, replicas }),
            name().prop_map(|replica| Request::Restart { replica }),
            name().prop_map(|service| Request::Rollback { service }),
            name().prop_map(|node| Request::Drain { node }),
            name().prop_map(|node| Request::Cordon { node }),
            agent.clone().prop_map(|agent| Request::Pause { agent }),
            agent.clone().prop_map(|agent| Request::Resume { agent }),
            (agent, prop_oneof![Just(Mode::Auto), Just(Mode::Manual)])
                .prop_map(|(agent, mode)| Request::SetMode { agent, mode }),
            (prop::sample::select(VERBS.to_vec()), name()).prop_map(|(verb, subject)| {
                Request::Why {
                    verb: verb.to_string(),
                    subject,
                }
            }),
            name().prop_map(|service| Request::WhatIsWrong { service }),
            (1u64..1000).prop_map(|m| Request::WhatHappened { seconds: m * 60 }),
            Just(Request::Help),
        ]
    }

    proptest! {
        /// Every request's canonical words parse back to it.
        #[test]
        fn canonical_words_parse_back(r in request()) {
            prop_assert_eq!(parse(&r.to_string()), Ok(r));
        }

        /// Nothing typed makes the parser panic.
        #[test]
        fn any_text_parses_or_errs(text in "\\PC{0,60}") {
            let _ = parse(&text);
        }
    }
}

//! The adapter's HTTP endpoint (bound to loopback by default): `/metrics` for
//! Prometheus, and in manual mode the proposals waiting for a person.
//!
//! - `GET /metrics`: the [`Metrics`](crate::metrics::Metrics), no token (like any exporter).
//! - `GET /proposals`: the pending proposals with their explanations (JSON).
//! - `POST /proposals/ID` with `{"decision": "accept"}`, `{"decision": "decline"}` or
//!   `{"decision": "modify", "replicas": N}` (and optionally `"by": "NAME"`).
//!
//! - `POST /ask` with `{"text": "scale api to 4", "by": "NAME"}`: a request in plain
//!   words ([`crate::ask`]). Questions are answered from the audit log at once;
//!   actions, pauses and mode switches go to the decision loop, and the answer comes
//!   back when it has carried them out (within [`ASK_WAIT`]; after that `202` and the
//!   audit log has the outcome). A request that does not parse gets `400` with the
//!   expected form and, for a typo, `suggestion`; one the adapter refuses (an agent
//!   it does not run, an unknown service) `422`.
//!
//! The proposal and request routes need `Authorization: Bearer TOKEN` (in auto mode
//! the request route is served when the token is set). Every other path goes to the
//! web console ([`crate::console`]), which takes the token or a session.

use crate::approval::{Answer, Reply, Shared};
use crate::field::FieldError;
use serde::Deserialize;
use std::sync::Arc;

/// A running endpoint; stops when dropped.
pub struct Server {
    http: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long `POST /ask` waits for the loop to carry a request out.
pub const ASK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    text: String,
    #[serde(default)]
    by: Option<String>,
}

/// `POST /ask`.
fn ask(mut request: tiny_http::Request, method: tiny_http::Method, shared: &Shared) {
    let Some(token) = &shared.token else {
        return json(
            request,
            404,
            serde_json::json!({"error": "requests need the endpoint's bearer token: set it (server.token_env or server.token_file) and restart"}),
        );
    };
    if !authorised(&request, token) {
        return json(
            request,
            401,
            serde_json::json!({"error": "a bearer token is required (Authorization: Bearer TOKEN)"}),
        );
    }
    if method != tiny_http::Method::Post {
        return json(
            request,
            405,
            serde_json::json!({"error": "POST /ask with {\"text\": \"…\"}"}),
        );
    }
    let text = match read_body(&mut request) {
        Ok(text) => text,
        Err((status, error)) => {
            return json(request, status, serde_json::json!({ "error": error }));
        }
    };
    let body: AskBody = match serde_json::from_str(&text) {
        Ok(b) => b,
        Err(e) => {
            return json(
                request,
                400,
                serde_json::json!({"error": format!("expected {{\"text\": \"…\", \"by\": \"…\"}}: {e}")}),
            );
        }
    };
    let (status, value) = ask_text(shared, &body.text, body.by.unwrap_or_else(|| "http".into()));
    json(request, status, value)
}

/// Parses a request in plain words and answers it (a question) or hands it to the
/// loop and waits for the outcome: the HTTP status and the JSON answer. The API's
/// `POST /ask` and the console's request box both come here.
pub(crate) fn ask_text(shared: &Shared, text: &str, by: String) -> (u16, serde_json::Value) {
    let parsed = match crate::ask::parse(text) {
        Ok(r) => r,
        Err(e) => {
            return (
                400,
                serde_json::json!({"error": e.to_string(), "suggestion": e.suggestion}),
            );
        }
    };
    if let Some(answer) =
        crate::operator::answer(&parsed, &shared.audit_path, crate::run::unix_now())
    {
        return (
            200,
            serde_json::json!({"request": parsed.to_string(), "result": "answered", "answer": answer}),
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    use std::sync::atomic::Ordering;
    shared.requests_waiting.fetch_add(1, Ordering::SeqCst);
    let sent = shared.requests.lock().is_ok_and(|q| {
        q.send(crate::operator::Asked {
            request: parsed.clone(),
            by,
            reply: tx,
        })
        .is_ok()
    });
    if !sent {
        shared.requests_waiting.fetch_sub(1, Ordering::SeqCst);
        return (503, serde_json::json!({"error": "the adapter is stopping"}));
    }
    match rx.recv_timeout(ASK_WAIT) {
        Ok(Ok(reply)) => (
            200,
            serde_json::json!({"request": parsed.to_string(), "result": reply.result, "answer": reply.answer}),
        ),
        Ok(Err(refused)) => (
            422,
            serde_json::json!({"request": parsed.to_string(), "error": refused}),
        ),
        Err(_) => (
            202,
            serde_json::json!({"request": parsed.to_string(), "result": "queued",
                "answer": "queued: the adapter is busy with a step (in manual mode, waiting for answers); the audit log will have the outcome"}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    decision: String,
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    by: Option<String>,
}

impl Server {
    /// Listens on `listen` (`HOST:PORT`; port 0 picks one) and serves until dropped.
    pub fn start(listen: &str, shared: Arc<Shared>) -> Result<Server, FieldError> {
        let field = |why: String| {
            FieldError::new("server.listen", format!("server.listen {listen}: {why}"))
        };
        let http = tiny_http::Server::http(listen).map_err(|e| field(e.to_string()))?;
        let addr = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| field("not an IP address".into()))?;
        if shared.token.is_some() {
            let key = shared.sessions.link(crate::run::unix_now());
            println!(
                "console: http://{addr}/login?key={key} (one-time, {:.0} min; or sign in with the token at http://{addr}/login)",
                crate::console::LINK_TTL_S / 60.0
            );
        }
        let http = Arc::new(http);
        let serving = http.clone();
        // One thread per request, at most MAX_IN_FLIGHT at once: a slow client holds
        // its own thread only, never /metrics or another person's answer.
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let thread = std::thread::spawn(move || {
            use std::sync::atomic::Ordering;
            for request in serving.incoming_requests() {
                if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    json(
                        request,
                        503,
                        serde_json::json!({"error": "too many requests in flight"}),
                    );
                    continue;
                }
                let (shared, in_flight) = (shared.clone(), in_flight.clone());
                std::thread::spawn(move || {
                    serve(request, &shared);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Server {
            http,
            thread: Some(thread),
            addr,
        })
    }
}

fn respond(request: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let header =
        tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
    let _ = request.respond(
        tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header),
    );
}

pub(crate) fn json(request: tiny_http::Request, status: u16, value: serde_json::Value) {
    respond(request, status, "application/json", value.to_string());
}

pub(crate) fn authorised(request: &tiny_http::Request, token: &str) -> bool {
    request.headers().iter().any(|h| {
        h.field.equiv("Authorization")
            && h.value.as_str().strip_prefix("Bearer ").is_some_and(|t| {
                crate::console::constant_time_eq(t.trim().as_bytes(), token.as_bytes())
            })
    })
}

/// Requests served at once; more are answered 503 at once.
const MAX_IN_FLIGHT: usize = 32;

/// The longest a request body may take to arrive.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// The largest body read (a decision is a few dozen bytes).
const MAX_BODY: usize = 64 * 1024;

/// Reads the body in chunks until it ends, is too large, or has taken longer than
/// [`BODY_DEADLINE`] (a client trickling bytes gets 408 rather than a thread for ever).
pub(crate) fn read_body(request: &mut tiny_http::Request) -> Result<String, (u16, String)> {
    let started = std::time::Instant::now();
    let reader = request.as_reader();
    let mut body = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| (400, format!("unreadable body: {e}")))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
        if body.len() > MAX_BODY {
            return Err((413, format!("the body is larger than {MAX_BODY} bytes")));
        }
        if started.elapsed() > BODY_DEADLINE {
            return Err((408, format!("the body took longer than {BODY_DEADLINE:?}")));
        }
    }
    String::from_utf8(body).map_err(|_| (400, "the body is not UTF-8".to_string()))
}

fn serve(mut request: tiny_http::Request, shared: &Shared) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    if path == "/metrics" && method == tiny_http::Method::Get {
        return respond(
            request,
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.encode(),
        );
    }
    if path == "/ask" {
        return ask(request, method, shared);
    }
    let Some(rest) = path.strip_prefix("/proposals") else {
        if crate::console::handles(&path) {
            return crate::console::serve(request, &path, shared);
        }
        return json(request, 404, serde_json::json!({"error": "no such route"}));
    };
    let Some(token) = &shared.token else {
        return json(
            request,
            404,
            serde_json::json!({"error": "no proposals: the adapter is not in manual mode"}),
        );
    };
    if !authorised(&request, token) {
        return json(
            request,
            401,
            serde_json::json!({"error": "a bearer token is required (Authorization: Bearer TOKEN)"}),
        );
    }
    match (method, rest) {
        (tiny_http::Method::Get, "" | "/") => {
            let pending = shared.pending.lock().map(|p| p.clone()).unwrap_or_default();
            json(request, 200, serde_json::json!({ "proposals": pending }))
        }
        (tiny_http::Method::Post, id) => {
            let Ok(id) = id.trim_start_matches('/').parse::<u64>() else {
                return json(
                    request,
                    404,
                    serde_json::json!({"error": format!("no proposal {id:?}")}),
                );
            };
            let known = shared
                .pending
                .lock()
                .is_ok_and(|p| p.iter().any(|p| p.id == id));
            if !known {
                return json(
                    request,
                    404,
                    serde_json::json!({"error": format!("no pending proposal {id} (decided or expired?)")}),
                );
            }
            let text = match read_body(&mut request) {
                Ok(text) => text,
                Err((status, error)) => {
                    return json(request, status, serde_json::json!({ "error": error }));
                }
            };
            let answer = serde_json::from_str::<Body>(&text)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    let answer = match (b.decision.as_str(), b.replicas) {
                        ("accept", None) => Answer::Accept,
                        ("decline", None) => Answer::Decline,
                        ("modify", Some(replicas)) => Answer::Modify { replicas },
                        ("modify", None) => return Err("modify needs \"replicas\"".into()),
                        ("accept" | "decline", Some(_)) => {
                            return Err("\"replicas\" goes with \"modify\" only".into());
                        }
                        (other, _) => {
                            return Err(format!(
                                "decision {other:?}: expected accept, decline or modify"
                            ));
                        }
                    };
                    Ok((answer, b.by.unwrap_or_else(|| "http".into())))
                });
            match answer {
                Err(e) => json(request, 400, serde_json::json!({ "error": e })),
                Ok((answer, by)) => match shared.answer(Reply { id, answer, by }) {
                    Ok(()) => json(request, 202, serde_json::json!({"accepted_for": id})),
                    Err(e) if e.contains("stopping") => {
                        json(request, 503, serde_json::json!({ "error": e }))
                    }
                    Err(e) => json(request, 404, serde_json::json!({ "error": e })),
                },
            }
        }
        _ => json(
            request,
            405,
            serde_json::json!({"error": "use GET /proposals or POST /proposals/ID"}),
        ),
    }
}

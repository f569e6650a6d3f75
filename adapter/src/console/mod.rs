//! The web console the adapter serves beside its JSON API (same listener, loopback
//! by default): the agents with their modes (switchable), the proposals waiting
//! with their explanations (accept, decline, modify), the recent actions with
//! their explanation and outcome and a place for feedback, each service's health
//! charted from Prometheus' `query_range`, the audit history (searchable) and a
//! box for requests in plain words. Server-rendered HTML with one small script
//! (embedded, no CDN) that refreshes the sections and posts the forms; without
//! script every form still works.
//!
//! Access: the bearer token (`Authorization: Bearer TOKEN`, for scripts), or a
//! session cookie (`HttpOnly`, `SameSite=Strict`) from a one-time login link (printed
//! at start, or minted with `POST /login/link` and the token, valid
//! [`LINK_TTL_S`]) or from the login page, where the token is pasted. Without either,
//! nothing answers but `/metrics`, the login page and the script and style it uses.
//! A form posted with a session must carry the session's CSRF token (a hidden field,
//! or the `X-Hale-CSRF` header the script sends), and a request whose `Origin` is not
//! this host is refused, so another site cannot make a signed-in browser act.
//!
//! Routes: `GET /login[?key=K]`, `POST /login` (form `token`), `POST /login/link`,
//! `POST /logout`; `GET /console`, `/console/part/{agents,proposals,actions,health}`,
//! `/console/audit?q=…`, `/console/audit.jsonl?q=…`, `/console/feedback.jsonl`;
//! `POST /console/ask` (`text`), `/console/proposals/ID` (`decision`, `replicas`),
//! `/console/feedback` (`ref`, `rating` good|bad, `comment`).

mod chart;
mod page;

use crate::approval::{Answer, Reply, Shared};
use std::collections::HashMap;
use std::sync::Mutex;

/// Seconds a login link stays valid.
pub const LINK_TTL_S: f64 = 600.0;
/// Seconds a console session lasts.
pub const SESSION_TTL_S: f64 = 12.0 * 3600.0;
const COOKIE: &str = "hale_session";

/// The login links not yet used and the sessions open.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// One-time key → expiry (Unix seconds).
    links: HashMap<String, f64>,
    /// Session id → (CSRF token, expiry).
    open: HashMap<String, (String, f64)>,
}

/// 32 random bytes in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // The kernel's generator; without it no secret can be made, and serving the
    // console with a guessable one would be worse than stopping.
    getrandom::fill(&mut bytes).expect("the OS random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// A new one-time login key, valid [`LINK_TTL_S`] from `now`.
    pub fn link(&self, now: f64) -> String {
        let key = random_hex();
        if let Ok(mut inner) = self.inner.lock() {
            inner.links.retain(|_, until| *until > now);
            inner.links.insert(key.clone(), now + LINK_TTL_S);
        }
        key
    }

    /// Uses a login key up: a new session (id, CSRF token), or `None` for an unknown,
    /// used or expired key.
    fn redeem(&self, key: &str, now: f64) -> Option<(String, String)> {
        let mut inner = self.inner.lock().ok()?;
        let until = inner.links.remove(key)?;
        (until > now).then(|| Self::open_in(&mut inner, now))
    }

    /// A new session (id, CSRF token).
    fn open(&self, now: f64) -> Option<(String, String)> {
        let mut inner = self.inner.lock().ok()?;
        Some(Self::open_in(&mut inner, now))
    }

    fn open_in(inner: &mut Inner, now: f64) -> (String, String) {
        inner.open.retain(|_, (_, until)| *until > now);
        let (id, csrf) = (random_hex(), random_hex());
        inner
            .open
            .insert(id.clone(), (csrf.clone(), now + SESSION_TTL_S));
        (id, csrf)
    }

    /// The CSRF token of a live session.
    fn csrf(&self, id: &str, now: f64) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        inner
            .open
            .iter()
            .find(|(k, (_, until))| constant_time_eq(k.as_bytes(), id.as_bytes()) && *until > now)
            .map(|(_, (csrf, _))| csrf.clone())
    }

    fn close(&self, id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.open.remove(id);
        }
    }
}

/// Compares without stopping at the first difference, so response time says nothing
/// about how much of a guessed secret was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Escapes text for HTML (element content and quoted attributes).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How a request is signed in.
enum Who {
    /// The bearer token (scripts; no CSRF risk: browsers do not add it by themselves).
    Bearer,
    /// A session cookie, with the session's CSRF token.
    Session { id: String, csrf: String },
}

fn header<'a>(request: &'a tiny_http::Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

fn cookie(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .flat_map(|h| h.value.as_str().split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

fn who(request: &tiny_http::Request, shared: &Shared, now: f64) -> Option<Who> {
    let token = shared.token.as_deref()?;
    if crate::server::authorised(request, token) {
        return Some(Who::Bearer);
    }
    let id = cookie(request, COOKIE)?;
    let csrf = shared.sessions.csrf(&id, now)?;
    Some(Who::Session { id, csrf })
}

/// A posted form's fields.
fn form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// Whether a request comes from another site: an `Origin` that is not this host.
fn cross_site(request: &tiny_http::Request) -> bool {
    match (header(request, "Origin"), header(request, "Host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => {
            origin != format!("http://{host}") && origin != format!("https://{host}")
        }
        (Some(_), None) => true,
    }
}

fn html(request: tiny_http::Request, status: u16, body: String) {
    respond(request, status, "text/html; charset=utf-8", body, &[]);
}

/// Responds with the headers every console answer carries: no caching, no framing,
/// no referrer (a login link's key stays out of other sites' logs), and a content
/// policy that runs this origin's script only.
fn respond(
    request: tiny_http::Request,
    status: u16,
    content_type: &str,
    body: String,
    extra: &[(&str, String)],
) {
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    let fixed = [
        ("Content-Type", content_type.to_string()),
        ("Cache-Control", "no-store".into()),
        ("X-Frame-Options", "DENY".into()),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Referrer-Policy", "no-referrer".into()),
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                .into(),
        ),
    ];
    for (k, v) in fixed.iter().chain(extra) {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn redirect(request: tiny_http::Request, to: &str, extra: &[(&str, String)]) {
    let mut headers = vec![("Location", to.to_string())];
    headers.extend(extra.iter().cloned());
    respond(
        request,
        303,
        "text/plain; charset=utf-8",
        format!("see {to}"),
        &headers,
    );
}

fn session_cookie(id: &str) -> (&'static str, String) {
    (
        "Set-Cookie",
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL_S as u64
        ),
    )
}

/// The answer to a form: JSON for the script (it sent `X-Hale-CSRF`), otherwise
/// back to the console with the message shown.
fn answered(request: tiny_http::Request, status: u16, value: serde_json::Value) {
    if header(&request, "X-Hale-CSRF").is_some() {
        return respond(request, status, "application/json", value.to_string(), &[]);
    }
    let said = value["answer"]
        .as_str()
        .or(value["error"].as_str())
        .or(value["result"].as_str())
        .unwrap_or("done")
        .to_string();
    let said: String = form_urlencoded::byte_serialize(said.as_bytes()).collect();
    redirect(request, &format!("/console?said={said}"), &[]);
}

/// Whether `path` is one of the console's.
pub fn handles(path: &str) -> bool {
    matches!(path, "/" | "/login" | "/login/link" | "/logout")
        || path == "/console"
        || path.starts_with("/console/")
}

/// Serves one of the console's routes ([`handles`]).
pub fn serve(mut request: tiny_http::Request, path: &str, shared: &Shared) {
    let method = request.method().clone();
    let now = crate::run::unix_now();
    let get = method == tiny_http::Method::Get;
    let post = method == tiny_http::Method::Post;
    match path {
        "/console/app.js" if get => {
            return respond(
                request,
                200,
                "text/javascript; charset=utf-8",
                include_str!("app.js").into(),
                &[],
            );
        }
        "/console/style.css" if get => {
            return respond(
                request,
                200,
                "text/css; charset=utf-8",
                include_str!("style.css").into(),
                &[],
            );
        }
        "/" if get => return redirect(request, "/console", &[]),
        "/login" if get => return login_get(request, shared, now),
        "/login" if post => return login_post(request, shared, now),
        "/login/link" if post => {
            let ok = shared
                .token
                .as_deref()
                .is_some_and(|t| crate::server::authorised(&request, t));
            if !ok {
                return crate::server::json(
                    request,
                    401,
                    serde_json::json!({"error": "a bearer token is required (Authorization: Bearer TOKEN)"}),
                );
            }
            let key = shared.sessions.link(now);
            return crate::server::json(
                request,
                200,
                serde_json::json!({"link": format!("/login?key={key}"), "expires_in_s": LINK_TTL_S}),
            );
        }
        "/logout" if post => {
            if let Some(Who::Session { id, csrf }) = who(&request, shared, now) {
                let body = crate::server::read_body(&mut request).unwrap_or_default();
                if form(&body).get("csrf") == Some(&csrf) && !cross_site(&request) {
                    shared.sessions.close(&id);
                }
            }
            return redirect(
                request,
                "/login",
                &[(
                    "Set-Cookie",
                    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
                )],
            );
        }
        _ => {}
    }
    let Some(who) = who(&request, shared, now) else {
        if get && !path.starts_with("/console/part/") && !path.ends_with(".jsonl") {
            return redirect(request, "/login", &[]);
        }
        return crate::server::json(
            request,
            401,
            serde_json::json!({"error": "sign in: a session from /login, or Authorization: Bearer TOKEN"}),
        );
    };
    let csrf = match &who {
        Who::Session { csrf, .. } => csrf.clone(),
        Who::Bearer => String::new(),
    };
    if get {
        let query = request.url().split_once('?').map_or("", |(_, q)| q);
        let q = form(query);
        let body = match path {
            "/console" => page::console(shared, &csrf, q.get("said").map(String::as_str), now),
            "/console/part/agents" => page::agents(shared, &csrf),
            "/console/part/proposals" => page::proposals(shared, &csrf, now),
            "/console/part/actions" => page::actions(shared, &csrf, now),
            "/console/part/health" => page::health(shared, now),
            "/console/audit" => page::audit(shared, q.get("q").map_or("", String::as_str), now),
            "/console/audit.jsonl" => {
                let lines = page::audit_lines(shared, q.get("q").map_or("", String::as_str));
                return respond(request, 200, "application/x-ndjson", lines, &[]);
            }
            "/console/feedback.jsonl" => {
                return respond(
                    request,
                    200,
                    "application/x-ndjson",
                    page::feedback_lines(shared),
                    &[(
                        "Content-Disposition",
                        "attachment; filename=\"hale-feedback.jsonl\"".into(),
                    )],
                );
            }
            _ => {
                return crate::server::json(
                    request,
                    404,
                    serde_json::json!({"error": "no such page"}),
                );
            }
        };
        return html(request, 200, body);
    }
    if !post {
        return crate::server::json(
            request,
            405,
            serde_json::json!({"error": "the console's forms are POSTed"}),
        );
    }
    if cross_site(&request) {
        return crate::server::json(
            request,
            403,
            serde_json::json!({"error": "a request from another site"}),
        );
    }
    let body = match crate::server::read_body(&mut request) {
        Ok(body) => body,
        Err((status, error)) => {
            return crate::server::json(request, status, serde_json::json!({ "error": error }));
        }
    };
    let fields = form(&body);
    if let Who::Session { csrf, .. } = &who {
        let sent = header(&request, "X-Hale-CSRF")
            .map(str::to_string)
            .or_else(|| fields.get("csrf").cloned());
        if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), csrf.as_bytes())) {
            return crate::server::json(
                request,
                403,
                serde_json::json!({"error": "the form's CSRF token is missing or wrong: reload the console"}),
            );
        }
    }
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let by = match who {
        Who::Bearer => "console (token)".to_string(),
        Who::Session { .. } => "console".to_string(),
    };
    if path == "/console/ask" {
        let (status, value) = crate::server::ask_text(shared, field("text"), by);
        return answered(request, status, value);
    }
    if path == "/console/feedback" {
        let (status, value) = feedback(shared, field("ref"), field("rating"), field("comment"));
        return answered(request, status, value);
    }
    if let Some(id) = path.strip_prefix("/console/proposals/") {
        let answer = match (field("decision"), field("replicas")) {
            ("accept", _) => Ok(Answer::Accept),
            ("decline", _) => Ok(Answer::Decline),
            ("modify", n) => n
                .trim()
                .parse()
                .map(|replicas| Answer::Modify { replicas })
                .map_err(|_| format!("modify needs a replica count, not {n:?}")),
            (other, _) => Err(format!(
                "decision {other:?}: expected accept, decline or modify"
            )),
        };
        let (status, value) = match (id.parse::<u64>(), answer) {
            (Err(_), _) => (
                404,
                serde_json::json!({"error": format!("no proposal {id:?}")}),
            ),
            (_, Err(e)) => (400, serde_json::json!({ "error": e })),
            (Ok(id), Ok(answer)) => match shared.answer(Reply { id, answer, by }) {
                Ok(()) => (
                    202,
                    serde_json::json!({"accepted_for": id, "answer": format!("proposal {id}: answer sent")}),
                ),
                Err(e) => (404, serde_json::json!({ "error": e })),
            },
        };
        return answered(request, status, value);
    }
    crate::server::json(request, 404, serde_json::json!({"error": "no such form"}))
}

fn login_get(request: tiny_http::Request, shared: &Shared, now: f64) {
    let query = request.url().split_once('?').map_or("", |(_, q)| q);
    if let Some(key) = form(query).get("key") {
        return match shared.sessions.redeem(key, now) {
            Some((id, _)) => redirect(request, "/console", &[session_cookie(&id)]),
            None => html(
                request,
                403,
                page::login(
                    shared,
                    Some(
                        "This login link is unknown, used or expired: ask for a new one, or paste the token.",
                    ),
                ),
            ),
        };
    }
    html(request, 200, page::login(shared, None))
}

fn login_post(mut request: tiny_http::Request, shared: &Shared, now: f64) {
    let body = match crate::server::read_body(&mut request) {
        Ok(body) => body,
        Err((status, error)) => return html(request, status, page::login(shared, Some(&error))),
    };
    let token = form(&body).get("token").cloned().unwrap_or_default();
    let right = shared
        .token
        .as_deref()
        .is_some_and(|t| constant_time_eq(token.trim().as_bytes(), t.as_bytes()));
    if !right || cross_site(&request) {
        return html(
            request,
            401,
            page::login(shared, Some("That is not the token.")),
        );
    }
    match shared.sessions.open(now) {
        Some((id, _)) => redirect(request, "/console", &[session_cookie(&id)]),
        None => html(
            request,
            500,
            page::login(shared, Some("sessions unavailable")),
        ),
    }
}

/// Keeps a person's feedback on an action (the audit event at Unix time `reference`)
/// in the audit log.
fn feedback(
    shared: &Shared,
    reference: &str,
    rating: &str,
    comment: &str,
) -> (u16, serde_json::Value) {
    if !matches!(rating, "good" | "bad") {
        return (
            400,
            serde_json::json!({"error": format!("rating {rating:?}: expected good or bad")}),
        );
    }
    if comment.chars().count() > 2000 {
        return (
            413,
            serde_json::json!({"error": "a comment is at most 2000 characters"}),
        );
    }
    let Some(event) = page::event_at(shared, reference) else {
        return (
            404,
            serde_json::json!({"error": format!("no action at {reference:?} in the audit log")}),
        );
    };
    let fields = serde_json::json!({
        "ref": reference,
        "rating": rating,
        "comment": comment,
        "agent": event.get("agent"),
        "service": event.get("service").or(event.pointer("/decision/service")),
        "action": page::action_words(&event),
        "by": "console",
    });
    // The loop holds its own handle on the log; appends of whole lines under
    // O_APPEND do not interleave.
    let appended = crate::audit::AuditLog::open(&shared.audit_path)
        .and_then(|mut log| log.append("feedback", &fields));
    match appended {
        Ok(()) => (
            200,
            serde_json::json!({"result": "kept", "answer": format!("feedback kept: {rating}")}),
        ),
        Err(e) => (
            500,
            serde_json::json!({"error": format!("the audit log {}: {e}", shared.audit_path.display())}),
        ),
    }
}

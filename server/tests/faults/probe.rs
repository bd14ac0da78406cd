//! Probes of a server whose database is in trouble: one REST request or
//! socket command each, what it answered and how long it took, and the
//! checks of docs/protocol.md's `UNAVAILABLE` (Errors: `503`, `Retry-After: 1`, an answer
//! soon enough to be useful). Problems are collected rather than asserted
//! one by one, so that one run shows everything the server did.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use syncscript_testkit::{Api, TestUser};

use crate::commander::Commander;

/// How soon a refusal must come while the database is unusable: the client
/// library gives up on an ack after 5 s, and an answer that takes a pool's
/// 30 s default acquire timeout is not one a client or load balancer waits
/// for.
pub const PROMPT: Duration = Duration::from_secs(5);

/// The contract's message for `UNAVAILABLE`.
pub const UNAVAILABLE_MESSAGE: &str = "Database unavailable, try again later";

/// What one request or command got.
#[derive(Debug)]
pub struct Probe {
    pub what: String,
    /// The HTTP status; `None` for a socket command, or no answer at all.
    pub status: Option<StatusCode>,
    /// The JSON body, or the ack.
    pub body: Value,
    pub retry_after: Option<String>,
    pub took: Duration,
    /// REST (else a socket command).
    rest: bool,
}

impl Probe {
    /// The `error.code` of the answer.
    pub fn code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }

    pub fn line(&self) -> String {
        let status = self
            .status
            .map_or_else(|| "-".to_owned(), |s| s.as_u16().to_string());
        format!(
            "{:<44} {status:>4} {:<12} {:>7.2} s  {}",
            self.what,
            self.code().unwrap_or(""),
            self.took.as_secs_f64(),
            truncate(&self.body.to_string(), 160)
        )
    }
}

/// One REST request.
pub async fn rest(
    api: &Api,
    method: Method,
    path: &str,
    user: Option<&TestUser>,
    body: Option<Value>,
) -> Probe {
    let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
    let mut request = api
        .request(method, path, user)
        .timeout(Duration::from_secs(40));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let started = Instant::now();
    let (status, body, retry_after) = match request.send().await {
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (Some(status), body, retry_after)
        }
        Err(error) => (None, Value::String(format!("no answer: {error}")), None),
    };
    Probe {
        what,
        status,
        body,
        retry_after,
        took: started.elapsed(),
        rest: true,
    }
}

/// One socket command with an ack.
pub async fn socket(commander: &Commander, event: &str, payload: Value) -> Probe {
    let answer = commander
        .command(event, payload, Duration::from_secs(40))
        .await;
    Probe {
        what: format!("socket {event}"),
        status: None,
        body: answer
            .ack
            .unwrap_or_else(|| Value::String("no ack within 40 s".into())),
        retry_after: None,
        took: answer.took,
        rest: false,
    }
}

/// Problems found, with the table of every probe for the report.
#[derive(Default)]
pub struct Findings {
    pub problems: Vec<String>,
    lines: Vec<String>,
}

impl Findings {
    /// Records the probe's line.
    fn note(&mut self, probe: &Probe) {
        self.lines.push(probe.line());
    }

    /// The probe must be refused as docs/protocol.md (Errors) says: `503 UNAVAILABLE`
    /// "Database unavailable, try again later" with `Retry-After: 1` (REST),
    /// or an ack `{ok: false, error: {code: UNAVAILABLE}}`, within
    /// [`PROMPT`].
    pub fn unavailable(&mut self, probe: &Probe) {
        self.note(probe);
        let mut wrong = Vec::new();
        if probe.rest && probe.status != Some(StatusCode::SERVICE_UNAVAILABLE) {
            wrong.push(format!("status {:?}, not 503", probe.status));
        }
        if probe.code() != Some("UNAVAILABLE") {
            wrong.push(format!("code {:?}, not UNAVAILABLE", probe.code()));
        } else if probe.body["error"]["message"] != UNAVAILABLE_MESSAGE {
            wrong.push(format!("message {}", probe.body["error"]["message"]));
        }
        if !probe.rest && probe.body["ok"] != Value::Bool(false) {
            wrong.push("ack without ok: false".into());
        }
        if probe.rest
            && probe.code() == Some("UNAVAILABLE")
            && probe.retry_after.as_deref() != Some("1")
        {
            wrong.push(format!("Retry-After {:?}, not 1", probe.retry_after));
        }
        if probe.took > PROMPT {
            wrong.push(format!(
                "answered after {:.1} s (more than {} s)",
                probe.took.as_secs_f64(),
                PROMPT.as_secs()
            ));
        }
        if !wrong.is_empty() {
            self.problems
                .push(format!("{}: {}", probe.what, wrong.join("; ")));
        }
    }

    /// The REST probe must succeed with `status`.
    pub fn succeeds(&mut self, probe: &Probe, status: StatusCode) {
        self.note(probe);
        if probe.status != Some(status) {
            self.problems.push(format!(
                "{}: expected {status}, got {:?} {}",
                probe.what,
                probe.status,
                truncate(&probe.body.to_string(), 200)
            ));
        }
    }

    /// The socket command must be acked `ok: true`.
    pub fn acked(&mut self, probe: &Probe) {
        self.note(probe);
        if probe.body["ok"] != Value::Bool(true) {
            self.problems.push(format!(
                "{}: expected an ack with ok: true, got {}",
                probe.what,
                truncate(&probe.body.to_string(), 200)
            ));
        }
    }

    /// Only recorded, not judged.
    pub fn report(&mut self, probe: &Probe) {
        self.note(probe);
    }

    /// Prints the table under `title`.
    pub fn print(&self, title: &str) {
        eprintln!("---- {title} ----\n{}", self.lines.join("\n"));
        for problem in &self.problems {
            eprintln!("PROBLEM: {problem}");
        }
    }

    /// Panics with every problem found, if any.
    pub fn assert_none(&self, title: &str) {
        assert!(
            self.problems.is_empty(),
            "{title}: {} problem(s):\n  {}\nprobes:\n{}",
            self.problems.len(),
            self.problems.join("\n  "),
            self.lines.join("\n")
        );
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

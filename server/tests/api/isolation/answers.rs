//! The answers an operation may get: ok, or a refusal with its code and
//! message, as REST and socket commands give them; and the REST call
//! that reads one.

use super::*;

/// What an operation was answered: `OK`, or the error's code and message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Answer {
    pub(super) code: String,
    pub(super) message: String,
}

impl Answer {
    pub(super) fn ok() -> Answer {
        Answer {
            code: "OK".into(),
            message: String::new(),
        }
    }

    pub(super) fn refused(code: &str, message: &str) -> Answer {
        Answer {
            code: code.into(),
            message: message.into(),
        }
    }

    pub(super) fn is_ok(&self) -> bool {
        self.code == "OK"
    }

    /// A socket command's ack.
    pub(super) fn of_ack(ack: &Value) -> Answer {
        if ack["ok"] == true {
            Answer::ok()
        } else {
            Answer::refused(
                ack["error"]["code"].as_str().unwrap_or("<no code>"),
                ack["error"]["message"].as_str().unwrap_or("<no message>"),
            )
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_ok() {
            f.write_str("OK")
        } else {
            write!(f, "{} {:?}", self.code, self.message)
        }
    }
}

pub(super) const NOT_A_MEMBER_VAULT: (&str, &str) = ("NOT_FOUND", "Vault not found");
pub(super) const NOT_A_MEMBER_SOURCE: (&str, &str) = ("NOT_FOUND", "Source not found");
pub(super) const NO_SUCH_MEMBER: (&str, &str) = ("NOT_FOUND", "Member not found");
pub(super) const NO_RIGHT: (&str, &str) = ("FORBIDDEN", "Insufficient permissions");
pub(super) const JOIN_REFUSED: (&str, &str) = ("FORBIDDEN", "Access denied to vault");
pub(super) const LAST_OWNER: (&str, &str) = ("CONFLICT", "A vault must keep at least one owner");
pub(super) const ALREADY_MEMBER: (&str, &str) =
    ("CONFLICT", "This user is already a member of the vault");
pub(super) const REVOKED: (&str, &str) = ("UNAUTHORIZED", "Invalid or expired session");

pub(super) fn refusal((code, message): (&str, &str)) -> Answer {
    Answer::refused(code, message)
}

/// The HTTP status the contract gives an error code.
pub(super) fn status_of(code: &str) -> StatusCode {
    match code {
        "BAD_REQUEST" => StatusCode::BAD_REQUEST,
        "UNAUTHORIZED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "CONFLICT" => StatusCode::CONFLICT,
        "VALIDATION" => StatusCode::UNPROCESSABLE_ENTITY,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A REST call with a bearer token; the answer (an error whose HTTP status
/// is not its code's shows both, so it matches no expectation) and the body.
pub(super) async fn rest(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (Answer, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let answer = if status.is_success() {
        Answer::ok()
    } else {
        let code = body["error"]["code"].as_str().unwrap_or("<no code>");
        let message = body["error"]["message"].as_str().unwrap_or("<no message>");
        if status_of(code) == status {
            Answer::refused(code, message)
        } else {
            Answer::refused(&format!("{code} (HTTP {status})"), message)
        }
    };
    (answer, body)
}

/// What an operation may be answered.
pub(super) struct Expected {
    pub(super) answer: BTreeSet<Answer>,
    /// A reconnect's joins, by vault.
    pub(super) rejoins: BTreeMap<usize, BTreeSet<Answer>>,
}

pub(super) fn alternatives(answers: &BTreeSet<Answer>) -> String {
    answers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

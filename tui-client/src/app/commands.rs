//! Source commands' outcomes, and the rule that keeps a change sent again
//! after "no answer" retry-safe (the same `opId`).

use syncscript_client::ClientError;
use syncscript_protocol::{ErrorCode, ErrorDetail};

use super::{App, Mode};
use crate::action::Command;

impl App {
    /// Reports a command's outcome on the status line and in the form
    /// waiting for it, and remembers whether it went unanswered.
    pub(super) fn on_command_done(
        &mut self,
        command: Command,
        result: Result<String, ClientError>,
    ) {
        let form_waiting = matches!(&self.mode, Mode::Form(form) if form.sending);
        match &result {
            Err(error) if error.is_unanswered() => self.unanswered = Some(command.clone()),
            // An answer settles that opId: the next change gets a new one.
            _ if self
                .unanswered
                .as_ref()
                .is_some_and(|previous| previous.op_id() == command.op_id()) =>
            {
                self.unanswered = None;
            }
            _ => {}
        }
        match result {
            Ok(id) => {
                let text = match &command {
                    Command::Create { title, .. } => {
                        self.selected = Some(id);
                        format!("Added “{title}”")
                    }
                    Command::Update { title, .. } => format!("Saved “{title}”"),
                    Command::Delete { title, .. } => format!("Deleted “{title}”"),
                };
                if form_waiting && !matches!(command, Command::Delete { .. }) {
                    self.mode = Mode::Normal;
                }
                self.info(text);
            }
            Err(error) => {
                let mut text = describe_error(&error);
                let outcome = if error.is_unanswered() {
                    text.push_str(" (sending it again applies it at most once)");
                    "Not confirmed"
                } else {
                    "Refused"
                };
                match &mut self.mode {
                    Mode::Form(form)
                        if form_waiting && !matches!(command, Command::Delete { .. }) =>
                    {
                        form.fail(text.clone());
                    }
                    _ => {}
                }
                self.error(format!("{outcome}: {text}"));
            }
        }
    }
}

/// `command`, with the `opId` of the `unanswered` command when it asks for
/// the same change (a person trying again after "no answer").
pub(super) fn retry_safe(unanswered: Option<&Command>, command: Command) -> Command {
    match unanswered {
        Some(previous) if previous.same_change(&command) => {
            command.with_op_id(previous.op_id().clone())
        }
        _ => command,
    }
}

/// A failure as one readable line: the server's message and code when it
/// sent them, else what went wrong on the way.
fn describe_error(error: &ClientError) -> String {
    match error.detail() {
        Some(detail) => describe_detail(&detail),
        None => error.to_string(),
    }
}

/// A server error as one readable line.
pub(super) fn describe_detail(detail: &ErrorDetail) -> String {
    match detail.code {
        ErrorCode::Forbidden | ErrorCode::Validation | ErrorCode::NotFound => {
            format!("{} ({})", detail.message, detail.code)
        }
        _ => format!("{}: {}", detail.code, detail.message),
    }
}

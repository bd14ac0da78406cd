//! Command-line arguments and who the client acts as: a direct login
//! (`--email/--password`), a token (`--token`), or the session stored by
//! `syncscript-cli login` for this server.

use anyhow::{Context, bail};
use clap::Parser;
use syncscript_client::ClientError;
use syncscript_client::api::ApiClient;
use syncscript_client::store::LoginStore;
use syncscript_protocol::ErrorCode;

use crate::app::Identity;

/// Watch (and, by role, edit) a SyncScript vault live in the terminal.
#[derive(Debug, Clone, Parser)]
#[command(name = "syncscript-tui", version)]
pub struct Args {
    /// The server's URL.
    #[arg(
        long,
        env = "SYNCSCRIPT_SERVER",
        default_value = "http://127.0.0.1:3000"
    )]
    pub server: String,

    /// The vault to open; without it, a list of your vaults to pick from.
    #[arg(long)]
    pub vault: Option<String>,

    /// A session token (default: the session stored by `syncscript-cli login`).
    /// Tokens are URL-safe base64 and may start with `-`.
    #[arg(
        long,
        env = "SYNCSCRIPT_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,

    /// Log in with this email instead of using a stored session.
    #[arg(long, requires = "password")]
    pub email: Option<String>,

    /// The password for `--email`.
    #[arg(
        long,
        env = "SYNCSCRIPT_PASSWORD",
        hide_env_values = true,
        requires = "email",
        allow_hyphen_values = true
    )]
    pub password: Option<String>,
}

/// An authenticated API client and the user it acts for.
#[derive(Debug, Clone)]
pub struct Login {
    pub api: ApiClient,
    pub token: String,
    pub identity: Identity,
}

/// Finds the credentials to use and checks them with `GET /api/me`.
pub async fn resolve(args: &Args) -> anyhow::Result<Login> {
    let anonymous = ApiClient::new(&args.server, None)?;
    let token = match (&args.email, &args.password, &args.token) {
        (Some(email), Some(password), _) => {
            anonymous
                .login(email, password)
                .await
                .with_context(|| format!("cannot log in as {email}"))?
                .token
        }
        (_, _, Some(token)) => token.clone(),
        _ => {
            let store = LoginStore::open().context("cannot read the stored sessions")?;
            match store.get(&args.server) {
                Some(stored) => stored.token,
                None => bail!(
                    "not logged in to {}: run `syncscript-cli login` first, or pass --token or \
                     --email/--password",
                    args.server
                ),
            }
        }
    };
    let api = anonymous.with_token(Some(token.clone()));
    let user = match api.me().await {
        Ok(user) => user,
        Err(error) if error.code() == Some(ErrorCode::Unauthorized) => bail!(
            "the session for {} is no longer valid: log in again with `syncscript-cli login`",
            args.server
        ),
        Err(error @ ClientError::Transport { .. }) => {
            return Err(error).context("is the server running? (start it with `syncscript serve`)");
        }
        Err(error) => return Err(error.into()),
    };
    Ok(Login {
        identity: Identity {
            server: api.server_url(),
            user_id: user.id,
            name: user.name,
        },
        api,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_passwords_may_start_with_a_hyphen() {
        let args = Args::try_parse_from(["syncscript-tui", "--token", "-Ab3_x-9"]).unwrap();
        assert_eq!(args.token.as_deref(), Some("-Ab3_x-9"));
        let args = Args::try_parse_from([
            "syncscript-tui",
            "--email",
            "ada@example.org",
            "--password",
            "-secret",
        ])
        .unwrap();
        assert_eq!(args.password.as_deref(), Some("-secret"));
    }
}

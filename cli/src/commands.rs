//! Runs one parsed command line: resolves the server and the session, calls
//! the API and prints the answer.

use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::json;
use syncscript_client::api::{ApiClient, Mutate};
use syncscript_client::store::{LoginStore, StoredLogin, server_key};
use syncscript_client::{ClientError, IdempotencyKey};
use syncscript_protocol::{LoginResponse, SESSION_COOKIE, UpdateSourceRequest};

use crate::bench;
use crate::cli::{
    Cli, Command, Credentials, EventsArgs, MemberCommand, MintArgs, SessionCommand,
    UpdateSourceArgs, VaultCommand,
};
use crate::output::{events_table, members_table, print_json, sources_table, table, vaults_table};
use crate::seed;
use crate::watch::{self, WatchOptions};

/// Runs `cli` to completion; errors are for `main` to print.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let server = server_key(&cli.server);
    let anonymous = ApiClient::new(&server, None)?;
    let ctx = Invocation {
        server,
        json: cli.json,
        token: cli.token,
        anonymous,
    };
    match cli.command {
        Command::Seed(args) => seed::seed(&ctx.anonymous, &args.password, ctx.json).await?,
        Command::Login(credentials) => ctx.login(&credentials).await?,
        Command::Logout => ctx.logout().await?,
        Command::Whoami => ctx.whoami().await?,
        Command::Session(SessionCommand::Mint(args)) => ctx.mint(&args).await?,
        Command::Vault(command) => ctx.vault(command).await?,
        Command::Member(command) => ctx.member(command).await?,
        Command::AddSource(args) => {
            let key = args.key.key();
            let source = keyed(
                ctx.authed()?
                    .create_source(
                        &args.vault,
                        &args.title,
                        &args.url,
                        Mutate::with_key(key.clone()),
                    )
                    .await,
                &key,
            )?;
            if ctx.json {
                print_json(&json!({ "source": source }))?;
            } else {
                println!("Added source {} ({:?})", source.id, source.title);
            }
        }
        Command::UpdateSource(args) => ctx.update_source(args).await?,
        Command::DeleteSource(args) => {
            let key = args.key.key();
            keyed(
                ctx.authed()?
                    .delete_source(&args.source, Mutate::with_key(key.clone()))
                    .await,
                &key,
            )?;
            if ctx.json {
                print_json(&json!({ "deleted": args.source }))?;
            } else {
                println!("Deleted source {}", args.source);
            }
        }
        Command::Events(args) => ctx.events(args).await?,
        Command::Bench(args) => return bench::run(&ctx.server, &args, ctx.json).await,
        Command::Watch(args) => {
            let token = ctx.token()?;
            let api = ctx.anonymous.with_token(Some(token.clone()));
            let options = WatchOptions {
                vault_id: args.vault,
                since: args.since,
                pretty: args.pretty,
            };
            return watch::watch(&api, &token, options).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What every command shares.
struct Invocation {
    server: String,
    json: bool,
    token: Option<String>,
    anonymous: ApiClient,
}

impl Invocation {
    /// `--token`, else the session stored for this server.
    fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let store = LoginStore::open()?;
        store.get(&self.server).map(|s| s.token).ok_or_else(|| {
            anyhow!(
                "not logged in to {}: run `syncscript-cli login --email … --password …` or pass --token",
                self.server
            )
        })
    }

    fn authed(&self) -> anyhow::Result<ApiClient> {
        Ok(self.anonymous.with_token(Some(self.token()?)))
    }

    async fn login(&self, credentials: &Credentials) -> anyhow::Result<()> {
        let login = self
            .anonymous
            .login(&credentials.email, &credentials.password)
            .await?;
        let mut store = LoginStore::open()?;
        store.put(
            &self.server,
            StoredLogin {
                token: login.token.clone(),
                user_id: login.user.id.clone(),
                email: login.user.email.clone(),
                name: login.user.name.clone(),
                expires_at: login.expires_at.clone(),
            },
        )?;
        if self.json {
            print_json(&json!({
                "server": self.server,
                "user": login.user,
                "expiresAt": login.expires_at,
                "sessionsFile": store.path(),
            }))
        } else {
            println!(
                "Logged in to {} as {} <{}>; session kept in {} until {}",
                self.server,
                login.user.name,
                login.user.email,
                store.path().display(),
                login.expires_at
            );
            Ok(())
        }
    }

    async fn logout(&self) -> anyhow::Result<()> {
        let mut store = LoginStore::open()?;
        let token = match &self.token {
            Some(token) => token.clone(),
            None => self.token()?,
        };
        let revoked = self
            .anonymous
            .with_token(Some(token.clone()))
            .logout()
            .await;
        // Forget the stored session even when the server no longer knows it.
        if store.get(&self.server).is_some_and(|s| s.token == token) {
            store.remove(&self.server)?;
        }
        revoked?;
        if self.json {
            print_json(&json!({ "server": self.server, "loggedOut": true }))
        } else {
            println!("Logged out of {}", self.server);
            Ok(())
        }
    }

    async fn whoami(&self) -> anyhow::Result<()> {
        let user = self.authed()?.me().await?;
        if self.json {
            print_json(&json!({ "server": self.server, "user": user }))
        } else {
            println!(
                "{} <{}> (user {}) on {}",
                user.name, user.email, user.id, self.server
            );
            Ok(())
        }
    }

    async fn mint(&self, args: &MintArgs) -> anyhow::Result<()> {
        let LoginResponse {
            token,
            user,
            expires_at,
        } = self
            .anonymous
            .login(&args.credentials.email, &args.credentials.password)
            .await?;
        let cookie = format!("{SESSION_COOKIE}={token}");
        let mut page = format!("{}/test/realtime", self.server);
        if let Some(vault) = &args.vault {
            page = format!("{page}?vaultId={vault}");
        }
        if self.json {
            print_json(&json!({
                "server": self.server,
                "token": token,
                "cookie": cookie,
                "header": format!("Cookie: {cookie}"),
                "testPageUrl": page,
                "user": user,
                "expiresAt": expires_at,
            }))
        } else {
            println!("user:      {} <{}>", user.name, user.email);
            println!("expires:   {expires_at}");
            println!("token:     {token}");
            println!("header:    Cookie: {cookie}");
            println!("bearer:    Authorization: Bearer {token}");
            println!("test page: {page}");
            Ok(())
        }
    }

    async fn vault(&self, command: VaultCommand) -> anyhow::Result<()> {
        let api = self.authed()?;
        match command {
            VaultCommand::List => {
                let vaults = api.list_vaults().await?;
                if self.json {
                    print_json(&json!({ "vaults": vaults }))
                } else if vaults.is_empty() {
                    println!("No vaults yet: `syncscript-cli vault create --name …`");
                    Ok(())
                } else {
                    println!("{}", vaults_table(&vaults));
                    Ok(())
                }
            }
            VaultCommand::Create { name, key } => {
                let key = key.key();
                let vault = keyed(
                    api.create_vault(&name, Mutate::with_key(key.clone())).await,
                    &key,
                )?;
                if self.json {
                    print_json(&json!({ "vault": vault }))
                } else {
                    println!("Created vault {:?} with id {}", vault.name, vault.id);
                    Ok(())
                }
            }
            VaultCommand::Show(args) => {
                let detail = api.get_vault(&args.vault).await?;
                let members = api.list_members(&args.vault).await?;
                let sources = api.list_sources(&args.vault).await?;
                if self.json {
                    print_json(&json!({
                        "vault": detail.vault,
                        "role": detail.role,
                        "seq": detail.seq,
                        "members": members,
                        "sources": sources.sources,
                    }))
                } else {
                    let mut about = table(&["vault", "name", "your role", "seq", "created"]);
                    about.add_row([
                        detail.vault.id.clone(),
                        detail.vault.name.clone(),
                        detail.role.to_string(),
                        detail.seq.to_string(),
                        detail.vault.created_at.clone(),
                    ]);
                    println!("{about}");
                    println!("Members\n{}", members_table(&members));
                    println!("Sources\n{}", sources_table(&sources.sources));
                    Ok(())
                }
            }
            VaultCommand::Rename { vault, name, key } => {
                let key = key.key();
                let renamed = keyed(
                    api.rename_vault(&vault.vault, &name, Mutate::with_key(key.clone()))
                        .await,
                    &key,
                )?;
                if self.json {
                    print_json(&json!({ "vault": renamed }))
                } else {
                    println!("Renamed vault {} to {:?}", renamed.id, renamed.name);
                    Ok(())
                }
            }
            VaultCommand::Delete { vault, key } => {
                let key = key.key();
                keyed(
                    api.delete_vault(&vault.vault, Mutate::with_key(key.clone()))
                        .await,
                    &key,
                )?;
                if self.json {
                    print_json(&json!({ "deleted": vault.vault }))
                } else {
                    println!("Deleted vault {}", vault.vault);
                    Ok(())
                }
            }
        }
    }

    async fn member(&self, command: MemberCommand) -> anyhow::Result<()> {
        let api = self.authed()?;
        let (member, verb) = match command {
            MemberCommand::List(args) => {
                let members = api.list_members(&args.vault).await?;
                return if self.json {
                    print_json(&json!({ "members": members }))
                } else {
                    println!("{}", members_table(&members));
                    Ok(())
                };
            }
            MemberCommand::Add {
                vault,
                email,
                role,
                key,
            } => {
                let key = key.key();
                let added = api
                    .add_member(
                        &vault.vault,
                        &email,
                        role.into(),
                        Mutate::with_key(key.clone()),
                    )
                    .await;
                (keyed(added, &key)?, "Added")
            }
            MemberCommand::SetRole {
                vault,
                user,
                role,
                key,
            } => {
                let key = key.key();
                let updated = api
                    .update_member(
                        &vault.vault,
                        &user,
                        role.into(),
                        Mutate::with_key(key.clone()),
                    )
                    .await;
                (keyed(updated, &key)?, "Updated")
            }
            MemberCommand::Remove { vault, user, key } => {
                let key = key.key();
                keyed(
                    api.remove_member(&vault.vault, &user, Mutate::with_key(key.clone()))
                        .await,
                    &key,
                )?;
                return if self.json {
                    print_json(&json!({ "removed": user, "vaultId": vault.vault }))
                } else {
                    println!("Removed user {user} from vault {}", vault.vault);
                    Ok(())
                };
            }
        };
        if self.json {
            print_json(&json!({ "member": member }))
        } else {
            println!(
                "{verb} {} <{}> (user {}) as {}",
                member.name, member.email, member.user_id, member.role
            );
            Ok(())
        }
    }

    async fn update_source(&self, args: UpdateSourceArgs) -> anyhow::Result<()> {
        let changes = UpdateSourceRequest {
            title: args.title,
            file_url: args.url,
        };
        let key = args.key.key();
        let source = keyed(
            self.authed()?
                .update_source(&args.source, &changes, Mutate::with_key(key.clone()))
                .await,
            &key,
        )?;
        if self.json {
            print_json(&json!({ "source": source }))
        } else {
            println!(
                "Updated source {}: {:?} {}",
                source.id, source.title, source.file_url
            );
            Ok(())
        }
    }

    async fn events(&self, args: EventsArgs) -> anyhow::Result<()> {
        let page = self
            .authed()?
            .list_events(&args.vault, args.since, args.limit)
            .await?;
        if self.json {
            print_json(&page)
        } else {
            println!("{}", events_table(&page.events));
            println!("head seq: {}", page.seq);
            Ok(())
        }
    }
}

/// The outcome of a change sent with `key`. When no answer came even after
/// the retries, nobody knows whether the server applied it: the error says
/// how to try again without applying it twice.
fn keyed<T>(result: Result<T, ClientError>, key: &IdempotencyKey) -> anyhow::Result<T> {
    result.map_err(|error| {
        if error.is_unanswered() {
            let hint = format!(
                "no answer from the server, so the change may or may not be applied: run the \
                 same command again with --idempotency-key {key} to apply it at most once"
            );
            anyhow::Error::new(error).context(hint)
        } else {
            error.into()
        }
    })
}

//! `seed`: the demo accounts, vaults and sources, created only where missing
//! so that running it again changes nothing.

use anyhow::Context as _;
use serde::Serialize;
use syncscript_protocol::{ErrorCode, Member, Role, User};

use syncscript_client::api::{ApiClient, Mutate};

use crate::output::{print_json, table};

/// Name of the vault shared by the three demo roles.
pub const DEMO_VAULT: &str = "Demo Vault";
/// Name of the vault the demo roles cannot see.
pub const OUTSIDER_VAULT: &str = "Outsider's Vault";

/// A demo account: email, display name, and role in the demo vault (`None`
/// for the outsider).
struct DemoUser {
    email: &'static str,
    name: &'static str,
    role: Option<Role>,
}

const USERS: [DemoUser; 4] = [
    DemoUser {
        email: "owner@demo.com",
        name: "Olivia Owner",
        role: Some(Role::Owner),
    },
    DemoUser {
        email: "contributor@demo.com",
        name: "Carl Contributor",
        role: Some(Role::Contributor),
    },
    DemoUser {
        email: "viewer@demo.com",
        name: "Vera Viewer",
        role: Some(Role::Viewer),
    },
    DemoUser {
        email: "outsider@demo.com",
        name: "Oscar Outsider",
        role: None,
    },
];

/// Sources put in an empty demo vault: (title, URL, added by the contributor).
const SOURCES: [(&str, &str, bool); 3] = [
    (
        "Attention Is All You Need",
        "https://arxiv.org/pdf/1706.03762",
        false,
    ),
    (
        "Time, Clocks, and the Ordering of Events in a Distributed System",
        "https://lamport.azurewebsites.net/pubs/time-clocks.pdf",
        false,
    ),
    (
        "Conflict-free Replicated Data Types",
        "https://inria.hal.science/inria-00609399/document",
        true,
    ),
];

/// A seeded account, as reported.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeededUser {
    user_id: String,
    email: String,
    name: String,
    /// Role in the demo vault (`none` for the outsider).
    role: String,
    password: String,
    created: bool,
}

/// A seeded vault, as reported.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeededVault {
    id: String,
    name: String,
    owner: String,
    created: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedReport {
    server: String,
    users: Vec<SeededUser>,
    demo_vault: SeededVault,
    outsider_vault: SeededVault,
    sources_created: usize,
}

/// An account logged in by the seed.
struct Account {
    user: User,
    api: ApiClient,
    created: bool,
}

/// Signs up the account, or logs in when it exists (409 on signup).
async fn account(api: &ApiClient, user: &DemoUser, password: &str) -> anyhow::Result<Account> {
    let created = match api.signup(user.email, user.name, password).await {
        Ok(_) => true,
        Err(error) if error.code() == Some(ErrorCode::Conflict) => false,
        Err(error) => return Err(error).context(format!("cannot sign up {}", user.email)),
    };
    let login = api
        .login(user.email, password)
        .await
        .with_context(|| format!("cannot log in as {}", user.email))?;
    Ok(Account {
        user: login.user,
        api: api.with_token(Some(login.token)),
        created,
    })
}

/// The owner's vault called `name`, created when missing.
async fn owned_vault(owner: &Account, name: &str) -> anyhow::Result<SeededVault> {
    let existing = owner
        .api
        .list_vaults()
        .await?
        .into_iter()
        .find(|v| v.name == name && v.role == Role::Owner);
    let (id, created) = match existing {
        Some(vault) => (vault.id, false),
        None => (
            owner.api.create_vault(name, Mutate::default()).await?.id,
            true,
        ),
    };
    Ok(SeededVault {
        id,
        name: name.to_owned(),
        owner: owner.user.email.clone(),
        created,
    })
}

/// Adds `account` with `role`, or fixes its role, unless already so.
async fn ensure_member(
    owner: &Account,
    vault_id: &str,
    members: &[Member],
    account: &Account,
    role: Role,
) -> anyhow::Result<()> {
    match members.iter().find(|m| m.user_id == account.user.id) {
        Some(member) if member.role == role => {}
        Some(_) => {
            owner
                .api
                .update_member(vault_id, &account.user.id, role, Mutate::default())
                .await?;
        }
        None => {
            owner
                .api
                .add_member(vault_id, &account.user.email, role, Mutate::default())
                .await?;
        }
    }
    Ok(())
}

/// Runs the seed against `api`'s server and prints what exists.
pub async fn seed(api: &ApiClient, password: &str, json: bool) -> anyhow::Result<()> {
    let [owner_user, contributor_user, viewer_user, outsider_user] = &USERS;
    let owner = &account(api, owner_user, password).await?;
    let contributor = &account(api, contributor_user, password).await?;
    let viewer = &account(api, viewer_user, password).await?;
    let outsider = &account(api, outsider_user, password).await?;
    let accounts = [owner, contributor, viewer, outsider];

    let demo = owned_vault(owner, DEMO_VAULT).await?;
    let members = owner.api.list_members(&demo.id).await?;
    ensure_member(owner, &demo.id, &members, contributor, Role::Contributor).await?;
    ensure_member(owner, &demo.id, &members, viewer, Role::Viewer).await?;
    let outsider_vault = owned_vault(outsider, OUTSIDER_VAULT).await?;

    let mut sources_created = 0;
    if owner.api.list_sources(&demo.id).await?.sources.is_empty() {
        for (title, url, by_contributor) in SOURCES {
            let author = if by_contributor { contributor } else { owner };
            author
                .api
                .create_source(&demo.id, title, url, Mutate::default())
                .await?;
            sources_created += 1;
        }
    }

    let report = SeedReport {
        server: api.server_url(),
        users: USERS
            .iter()
            .zip(accounts)
            .map(|(demo_user, account)| SeededUser {
                user_id: account.user.id.clone(),
                email: account.user.email.clone(),
                name: account.user.name.clone(),
                role: demo_user.role.map_or("none", Role::as_str).to_owned(),
                password: password.to_owned(),
                created: account.created,
            })
            .collect(),
        demo_vault: demo,
        outsider_vault,
        sources_created,
    };
    if json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

fn print_report(report: &SeedReport) {
    let mut users = table(&["email", "name", "role in Demo Vault", "password", "new"]);
    for user in &report.users {
        users.add_row([
            user.email.clone(),
            user.name.clone(),
            user.role.clone(),
            user.password.clone(),
            yes_no(user.created).to_owned(),
        ]);
    }
    let mut vaults = table(&["vault", "id", "owner", "new"]);
    for vault in [&report.demo_vault, &report.outsider_vault] {
        vaults.add_row([
            vault.name.clone(),
            vault.id.clone(),
            vault.owner.clone(),
            yes_no(vault.created).to_owned(),
        ]);
    }
    let server = &report.server;
    let id = &report.demo_vault.id;
    let password = report.users.first().map_or("", |u| u.password.as_str());
    println!("Seeded {server}\n{users}\n{vaults}");
    println!("Sources added to {DEMO_VAULT}: {}", report.sources_created);
    println!();
    println!("Watch the demo vault:");
    println!(
        "  syncscript-cli --server {server} login --email owner@demo.com --password {password}"
    );
    println!("  syncscript-cli --server {server} watch --vault {id} --pretty");
    println!("  syncscript-tui --server {server} --vault {id}");
    println!("  {server}/test/realtime?vaultId={id}");
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

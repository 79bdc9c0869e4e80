//! `porthole user …`: the console's users from the command line: the first
//! owner on a new server, and a way back in when every password is lost.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::accounts;
use crate::store::Store;
use crate::store::accounts::ConsoleRole;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a console user. The password is read from
    /// PORTHOLE_USER_PASSWORD, or asked for (twice, not echoed).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role, default_value = "viewer")]
        role: ConsoleRole,
    },
    /// Lists the console's users.
    List,
    /// Sets a user's password (from PORTHOLE_USER_PASSWORD or asked for) and
    /// signs them out everywhere.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// Changes a user's role.
    SetRole {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: ConsoleRole,
    },
    /// Removes a user and ends their sessions.
    Remove {
        #[arg(long)]
        email: String,
    },
}

fn parse_role(s: &str) -> Result<ConsoleRole, String> {
    ConsoleRole::parse(s).ok_or_else(|| format!("{s:?} is not a role: owner, editor or viewer"))
}

/// The new password: from the environment, or typed twice at a prompt.
fn new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PORTHOLE_USER_PASSWORD") {
        return Ok(p);
    }
    let first = rpassword::prompt_password("Password: ")
        .context("no terminal to ask for the password; set PORTHOLE_USER_PASSWORD")?;
    let again = rpassword::prompt_password("Again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

async fn user_id(store: &dyn Store, email: &str) -> anyhow::Result<String> {
    let email = accounts::normalize_email(email)?;
    match store.user_by_email(&email).await? {
        Some(c) => Ok(c.user.id),
        None => bail!("no console user {email}"),
    }
}

pub async fn run(store: Arc<dyn Store>, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create { email, role } => {
            accounts::normalize_email(&email)?;
            let password = new_password()?;
            let user = accounts::create_user(&*store, &email, &password, role).await?;
            store
                .audit(
                    "cli",
                    "POST",
                    &format!("/api/v1/console/users/{}", user.id),
                    201,
                )
                .await?;
            println!("{}", user.id);
            eprintln!(
                "Console user {} created ({}). Sign in at /console.",
                user.email,
                user.role.as_str()
            );
        }
        UserCommand::List => {
            for u in store.users().await? {
                println!("{}\t{}\t{}", u.id, u.email, u.role.as_str());
            }
        }
        UserCommand::SetPassword { email } => {
            let id = user_id(&*store, &email).await?;
            let password = new_password()?;
            accounts::set_password(&*store, &id, &password).await?;
            store
                .audit(
                    "cli",
                    "PUT",
                    &format!("/api/v1/console/users/{id}/password"),
                    204,
                )
                .await?;
            eprintln!("Password set; {email} is signed out everywhere.");
        }
        UserCommand::SetRole { email, role } => {
            let id = user_id(&*store, &email).await?;
            store.set_role(&id, role).await?;
            store
                .audit("cli", "PATCH", &format!("/api/v1/console/users/{id}"), 204)
                .await?;
            eprintln!("{email} is now {}.", role.as_str());
        }
        UserCommand::Remove { email } => {
            let id = user_id(&*store, &email).await?;
            store.delete_user(&id).await?;
            store
                .audit("cli", "DELETE", &format!("/api/v1/console/users/{id}"), 204)
                .await?;
            eprintln!("{email} removed.");
        }
    }
    Ok(())
}

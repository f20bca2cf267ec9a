//! `icp keys`: create, list and revoke API keys in the configured database, and show or rotate
//! the webhook signing secret of each.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use icp_server::auth::key;
use icp_server::webhook_secret::WebhookSecret;
use icp_store::Store;
use time::format_description::well_known::Rfc3339;

use crate::DatabaseArgs;

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a key and print it (on stdout, once: only a hash of it is kept).
    Create {
        /// What the key is for, shown by `list`.
        #[arg(long)]
        name: Option<String>,
        /// Make the key only if no key exists yet (for a first start); prints nothing otherwise.
        #[arg(long)]
        if_none: bool,
    },
    /// Show every key: id, name, when made, when revoked.
    List,
    /// Revoke a key: requests with it are refused within seconds; its jobs stay until expiry.
    Revoke {
        /// The key's id (the 16 hex digits after `icp_`, as `list` shows it).
        id: String,
    },
    /// Print the key's webhook signing secret (`whsec_…`, on stdout), which signs the webhooks
    /// of its jobs; with `--rotate`, replace it first (messages not yet delivered are signed
    /// with the new one).
    WebhookSecret {
        /// The key's id, as `list` shows it.
        id: String,
        #[arg(long)]
        rotate: bool,
    },
}

pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.database_url)
        .await
        .context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    match args.command {
        KeysCommand::Create { name, if_none } => {
            if if_none && store.count_active_api_keys().await? > 0 {
                eprintln!("an API key exists already; none created");
                return Ok(());
            }
            let issued = key::issue();
            store
                .create_api_key(&issued.id, name.as_deref(), &issued.secret_hash)
                .await
                .context("storing the key")?;
            let webhook_secret = WebhookSecret::generate().expose();
            store
                .set_webhook_secret(&issued.id, &webhook_secret)
                .await
                .context("storing the key's webhook secret")?;
            println!("{}", issued.token);
            eprintln!(
                "API key {} created. It is shown this once; send it as \
                 `Authorization: Bearer <key>`.\nThe webhooks of its jobs are signed with \
                 {webhook_secret} (`icp keys webhook-secret {0}` shows it again).",
                issued.id
            );
        }
        KeysCommand::List => {
            println!("{:<16}  {:<25}  {:<25}  name", "id", "created", "revoked");
            for k in store.list_api_keys().await? {
                let revoked = match k.revoked_at {
                    Some(at) => at.format(&Rfc3339)?,
                    None => "-".to_owned(),
                };
                println!(
                    "{:<16}  {:<25}  {:<25}  {}",
                    k.id,
                    k.created_at.format(&Rfc3339)?,
                    revoked,
                    k.name.unwrap_or_default()
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if !store
                .revoke_api_key(&id, time::OffsetDateTime::now_utc())
                .await?
            {
                bail!("no key {id:?} that is not revoked already (see `icp keys list`)");
            }
            eprintln!("API key {id} revoked");
        }
        KeysCommand::WebhookSecret { id, rotate } => {
            let secret = if rotate {
                let secret = WebhookSecret::generate().expose();
                if !store.set_webhook_secret(&id, &secret).await? {
                    bail!("no key {id:?} (see `icp keys list`)");
                }
                secret
            } else {
                let candidate = WebhookSecret::generate().expose();
                store
                    .webhook_secret_or_init(&id, &candidate)
                    .await?
                    .with_context(|| format!("no key {id:?} (see `icp keys list`)"))?
            };
            println!("{secret}");
        }
    }
    store.close().await;
    Ok(())
}

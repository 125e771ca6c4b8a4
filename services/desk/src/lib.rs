//! The `desk` binary's library: the composition root of every mode.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`run`]: dispatches a command: `up` (monolithic), `serve` (microservices), `migrate`, `token`.
//! - [`nats`]: the nats-server `desk up` starts when no NATS URL is given.
//! - [`demo`]: the demo tenant `desk up --demo` seeds through the public API.
//! - [`SERVICES`]: the services this binary can run (each crate's `ENTRY`), started through
//!   `desk_kit::host::run`, the same start-up the service tests use.

pub mod cli;
pub mod demo;
pub mod nats;

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use desk_kit::{
    ServiceEntry,
    clock::SystemClock,
    settings::{Secret, Settings},
};
use tokio::net::TcpListener;

use cli::{Cli, Command};

/// The services this binary runs, in start-up order; `desk serve --target` names them by
/// `ServiceEntry::name`. The other services join here as they land. The gateway is a layer
/// around every call of its process: in `desk up` around the in-process services, with
/// `desk serve --target gateway` around its forwarding to the others.
pub const SERVICES: &[ServiceEntry] = &[
    desk_tickets::ENTRY,
    desk_cmdb::ENTRY,
    desk_directory::ENTRY,
    desk_change::ENTRY,
    desk_sla::ENTRY,
    desk_catalog::ENTRY,
    desk_gateway::ENTRY,
];

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            let mut settings = Settings::load(cli.config.as_deref())?;
            settings.data_dir = args.data_dir.clone();
            if let Some(listen) = args.listen {
                settings.grpc.listen = listen;
            }
            // Bind first and say where: the address is the first thing a user (or a script) reads.
            let listener = TcpListener::bind(settings.grpc.listen)
                .await
                .with_context(|| format!("binding {}", settings.grpc.listen))?;
            let address = listener.local_addr()?;
            println!("desk listening on {address} (gRPC, gRPC-Web, health, reflection)");
            let _telemetry = desk_kit::telemetry::init("desk")?;
            std::fs::create_dir_all(&settings.data_dir)?;
            ensure_dev_secret(&mut settings)?;
            let _nats_child = match args.nats_url.clone().filter(|u| !u.is_empty()) {
                Some(url) => {
                    settings.nats.url = url;
                    None
                }
                None => {
                    let child = nats::start_local(&settings.data_dir.join("nats")).await?;
                    settings.nats.url = child.url();
                    Some(child)
                }
            };
            let demo = args.demo;
            let secret = settings
                .auth
                .dev_hs256_secret
                .as_ref()
                .map(|s| s.expose().clone())
                .unwrap_or_default();
            let auth = settings.auth.clone();
            let data_dir = settings.data_dir.clone();
            serve_targets(listener, settings, SERVICES, move || {
                if demo {
                    tokio::spawn(async move {
                        if let Err(error) = demo::seed(address, &auth, &secret).await {
                            tracing::error!(error = %format!("{error:#}"), "demo seeding failed");
                        }
                    });
                } else {
                    // The last thing on screen: that it is ready, and the first thing to do.
                    let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
                    println!("desk ready at {address} ({})", names.join(", "));
                    println!(
                        "a token: desk token --data-dir {} --tenant acme --sub ada --role admin",
                        data_dir.display()
                    );
                }
            })
            .await
        }
        Command::Serve(args) => {
            let mut settings = Settings::load(cli.config.as_deref())?;
            if let Some(listen) = args.listen {
                settings.grpc.listen = listen;
            }
            let targets = check_targets(&args.target)?;
            let listener = TcpListener::bind(settings.grpc.listen)
                .await
                .with_context(|| format!("binding {}", settings.grpc.listen))?;
            let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
            println!(
                "desk listening on {} (targets: {})",
                listener.local_addr()?,
                names.join(",")
            );
            let _telemetry = desk_kit::telemetry::init("desk")?;
            serve_targets(listener, settings, &targets, || {}).await
        }
        Command::Migrate(args) => {
            let mut settings = Settings::load(cli.config.as_deref())?;
            if let Some(dir) = args.data_dir {
                settings.data_dir = dir;
            }
            let targets = if args.target.is_empty() {
                SERVICES.to_vec()
            } else {
                check_targets(&args.target)?
            };
            for target in targets {
                (target.migrate)(&settings)
                    .await
                    .with_context(|| format!("migrating {}", target.name))?;
                println!("migrated {}", target.name);
            }
            Ok(())
        }
        Command::Token(args) => {
            let mut settings = Settings::load(cli.config.as_deref())?;
            settings.data_dir = args.data_dir.clone();
            if settings.auth.dev_hs256_secret.is_none() {
                let path = dev_secret_path(&settings.data_dir);
                let secret = std::fs::read_to_string(&path)
                    .with_context(|| format!("no development secret at {} (run `desk up` once, or set DESK_AUTH__DEV_HS256_SECRET)", path.display()))?;
                settings.auth.dev_hs256_secret = Some(Secret::new(secret.trim().to_owned()));
            }
            let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
            let mut claims = desk_kit::auth::dev_claims(
                &settings.auth,
                &args.sub,
                &args.tenant,
                &roles,
                args.ttl_hours * 3600,
            );
            claims.groups = args.groups;
            claims.name = args.name;
            let secret = settings
                .auth
                .dev_hs256_secret
                .as_ref()
                .map(|s| s.expose().clone())
                .unwrap_or_default();
            println!("{}", desk_kit::auth::mint_dev_token(&secret, &claims)?);
            Ok(())
        }
    }
}

fn check_targets(targets: &[String]) -> anyhow::Result<Vec<ServiceEntry>> {
    targets
        .iter()
        .map(|t| {
            SERVICES
                .iter()
                .find(|s| s.name == t.trim())
                .copied()
                .ok_or_else(|| {
                    let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
                    anyhow::anyhow!(
                        "unknown target {t:?}; this build runs: {}",
                        names.join(", ")
                    )
                })
        })
        .collect()
}

/// Serves `targets` on `listener` until SIGTERM or Ctrl-C, on the wall clock.
async fn serve_targets(
    listener: TcpListener,
    settings: Settings,
    targets: &[ServiceEntry],
    on_ready: impl FnOnce(),
) -> anyhow::Result<()> {
    desk_kit::host::run(
        listener,
        settings,
        Arc::new(SystemClock),
        targets,
        on_ready,
        desk_kit::host::shutdown_signal(),
    )
    .await
}

fn dev_secret_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("dev-hs256-secret")
}

/// Monolithic mode signs development tokens with a secret kept in the data folder, made on first use.
fn ensure_dev_secret(settings: &mut Settings) -> anyhow::Result<()> {
    if settings.auth.dev_hs256_secret.is_some() || settings.auth.jwks_file.is_some() {
        return Ok(());
    }
    let path = dev_secret_path(&settings.data_dir);
    let secret = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => text.trim().to_owned(),
        _ => {
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            std::fs::write(&path, &secret)
                .with_context(|| format!("writing {}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            secret
        }
    };
    settings.auth.dev_hs256_secret = Some(Secret::new(secret));
    Ok(())
}

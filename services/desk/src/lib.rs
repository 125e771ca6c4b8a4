//! The `desk` binary's library: the composition root of every mode.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`run`]: dispatches a command: `up` (monolithic), `serve` (microservices), `migrate`, `token`.
//! - [`nats`]: the nats-server `desk up` starts when no NATS URL is given.
//! - [`demo`]: the demo tenant `desk up --demo` seeds through the public API.
//! - [`SERVICES`]: the services this binary can run, by target name.

pub mod cli;
pub mod demo;
pub mod nats;

use std::{path::Path, sync::Arc};

use anyhow::Context as _;
use desk_kit::{
    Platform, ServiceParts,
    clock::SystemClock,
    settings::{Secret, Settings},
};
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

use cli::{Cli, Command};

/// Target names `desk serve --target` accepts; the other services join here as they land.
pub const SERVICES: &[&str] = &[
    desk_tickets::SERVICE,
    desk_cmdb::SERVICE,
    desk_directory::SERVICE,
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
            serve_targets(listener, settings, SERVICES, move || {
                if demo {
                    tokio::spawn(async move {
                        if let Err(error) = demo::seed(address, &auth, &secret).await {
                            tracing::error!(error = %format!("{error:#}"), "demo seeding failed");
                        }
                    });
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
            println!(
                "desk listening on {} (targets: {})",
                listener.local_addr()?,
                targets.join(",")
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
                migrate(target, &settings).await?;
                println!("migrated {target}");
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

fn check_targets(targets: &[String]) -> anyhow::Result<Vec<&'static str>> {
    targets
        .iter()
        .map(|t| {
            SERVICES
                .iter()
                .find(|s| **s == t.trim())
                .copied()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown target {t:?}; this build runs: {}",
                        SERVICES.join(", ")
                    )
                })
        })
        .collect()
}

async fn migrate(target: &str, settings: &Settings) -> anyhow::Result<()> {
    match target {
        desk_tickets::SERVICE => {
            desk_tickets::open_database(settings).await?;
        }
        desk_cmdb::SERVICE => {
            desk_cmdb::open_database(settings).await?;
        }
        desk_directory::SERVICE => {
            desk_directory::open_database(settings).await?;
        }
        other => anyhow::bail!("no migrations for {other}"),
    }
    Ok(())
}

async fn build_target(
    target: &str,
    platform: &Platform,
    routes: &mut RoutesBuilder,
) -> anyhow::Result<ServiceParts> {
    match target {
        desk_tickets::SERVICE => desk_tickets::build(platform, routes).await,
        desk_cmdb::SERVICE => desk_cmdb::build(platform, routes).await,
        desk_directory::SERVICE => desk_directory::build(platform, routes).await,
        other => anyhow::bail!("unknown target {other}"),
    }
}

/// Connects the platform, builds each target and serves them until SIGTERM or Ctrl-C.
async fn serve_targets(
    listener: TcpListener,
    mut settings: Settings,
    targets: &[&str],
    on_ready: impl FnOnce(),
) -> anyhow::Result<()> {
    // Services call each other at this process's address unless `services.<name>.url` says
    // otherwise: the bound address, also when `--listen` asked for port 0.
    settings.grpc.listen = listener.local_addr()?;
    let platform = Platform::connect(settings, Arc::new(SystemClock)).await?;
    let mut routes = RoutesBuilder::default();
    let mut parts = Vec::new();
    for target in targets {
        parts.push(
            build_target(target, &platform, &mut routes)
                .await
                .with_context(|| format!("starting {target}"))?,
        );
        tracing::info!(service = %target, "service ready");
    }
    on_ready();
    desk_kit::host::serve(
        listener,
        &platform,
        routes,
        parts,
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

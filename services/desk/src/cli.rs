//! The command line: `desk up`, `desk serve`, `desk migrate`, `desk token`.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "desk",
    version,
    about = "An ITIL 4 service desk: tickets, CMDB and more, as gRPC services over NATS events"
)]
pub struct Cli {
    /// A TOML settings file (defaults, then this file, then DESK_* environment variables).
    #[arg(long, global = true, env = "DESK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Monolithic mode: every service in one process, SQLite under --data-dir, and a nats-server
    /// started for you when no NATS URL is given.
    Up(UpArgs),
    /// Microservices mode: the given services only, against PostgreSQL and a NATS cluster.
    Serve(ServeArgs),
    /// Applies the database migrations of the given services and exits.
    Migrate(MigrateArgs),
    /// Mints a development token signed with the local development secret.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where SQLite files, the NATS store and the development secret live.
    #[arg(long, default_value = ".desk-data")]
    pub data_dir: PathBuf,
    /// A running NATS server (>= 2.10, JetStream on); without it, desk starts its own.
    #[arg(long, env = "DESK_NATS__URL")]
    pub nats_url: Option<String>,
    /// The gRPC address to listen on.
    #[arg(long, env = "DESK_GRPC__LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Seed a demo tenant with users and tickets, and print their tokens.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Comma-separated services to run: tickets, cmdb, gateway.
    #[arg(long, value_delimiter = ',', required = true)]
    pub target: Vec<String>,
    #[arg(long, env = "DESK_GRPC__LISTEN")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Comma-separated services to migrate (all when not given).
    #[arg(long, value_delimiter = ',')]
    pub target: Vec<String>,
    /// For monolithic mode's SQLite files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long)]
    pub sub: String,
    #[arg(long)]
    pub tenant: String,
    /// Repeat for several roles: requester, agent, manager, change_manager, cab_member, catalog_admin, admin, integrator;
    /// `service` (with `--sub <service name>`) mints a service token, accepted only by methods open to services.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Team ids (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 12)]
    pub ttl_hours: i64,
    /// Where `desk up` keeps its development secret.
    #[arg(long, default_value = ".desk-data")]
    pub data_dir: PathBuf,
}

//! The `clearhire` command: runs the server (default), applies migrations, prints the schema,
//! and manages partners, API tokens and candidates' disputes as an operator.
#![forbid(unsafe_code)]

use anyhow::Context;
use api::{Application, Config};
use clap::{Parser, Subcommand};
use entity::Role;
use service::adverse::DisputeOutcome;

#[derive(Parser)]
#[command(
    name = "clearhire",
    version,
    about = "Screening and onboarding platform: GraphQL API server"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Run the relay and job workers only, as the `worker` binary does (scale-out: beside api
    /// processes, with REDIS_URL).
    Worker {
        /// Also run the outbox relay, the sweeper and the task scheduler in this process.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        relay: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    PrintSchema,
    /// Partners (tenants).
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Candidates' disputes of their reports, which the agency reinvestigates and resolves.
    #[command(subcommand)]
    Dispute(DisputeCmd),
}

#[derive(Subcommand)]
enum DisputeCmd {
    /// Open disputes of every partner, oldest first: check id, partner id, disputed at,
    /// business days left in the waiting period, the candidate's reason, the dispute's id.
    List,
    /// Ends a dispute after its reinvestigation: `upheld` (the report stands; the waiting period
    /// resumes with the days it had left) or `corrected` (adverse action cancelled, the check
    /// approved). The candidate is told in writing; the partner by webhook.
    Resolve {
        /// The check whose dispute this ends.
        check: String,
        /// The dispute (its id from `dispute list`); needed only when the check has more
        /// than one open.
        #[arg(long)]
        dispute: Option<String>,
        #[arg(long, value_parser = ["upheld", "corrected"])]
        outcome: String,
        /// What the reinvestigation found (the candidate's mail and the partner's
        /// `adverse_action.resumed` webhook quote it).
        #[arg(long)]
        resolution: String,
    },
}

#[derive(Subcommand)]
enum PartnerCmd {
    /// Create a partner with a super_admin team member, a default package and a token for them.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
    /// List partners.
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Mint an API token for a partner; prints it once.
    Create {
        #[arg(long)]
        partner: String,
        #[arg(long)]
        name: String,
        /// super_admin, admin, team_member or limited_team_member.
        #[arg(long, default_value = "super_admin")]
        role: String,
        #[arg(long, default_value_t = 90)]
        days: i64,
    },
    /// Revoke an API token by id.
    Revoke { id: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    worker::setup::init_tracing(&cli.config);
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Worker { relay } => worker::setup::run_worker(&config, relay).await,
        Command::Migrate => {
            worker::setup::service_from(&config).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", api::graphql::sdl());
            Ok(())
        }
        Command::Partner(PartnerCmd::Create {
            name,
            admin_email,
            days,
        }) => {
            let svc = worker::setup::service_from(&config).await?;
            let p = svc
                .provision_partner(&name, &admin_email, days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "partner_id={}\nadmin_email={}\ntoken={}",
                p.partner_id, p.admin_email, p.token
            );
            Ok(())
        }
        Command::Partner(PartnerCmd::List) => {
            let svc = worker::setup::service_from(&config).await?;
            for p in svc
                .all_partners()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!("{}\t{}", p.id, p.name);
            }
            Ok(())
        }
        Command::Token(TokenCmd::Create {
            partner,
            name,
            role,
            days,
        }) => {
            let role = Role::parse(&role)
                .context("role must be super_admin, admin, team_member or limited_team_member")?;
            let svc = worker::setup::service_from(&config).await?;
            let t = svc
                .operator_mint_token(&partner, &name, role, days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("token_id={}\ntoken={}", t.record.id, t.token);
            Ok(())
        }
        Command::Dispute(DisputeCmd::List) => {
            let svc = worker::setup::service_from(&config).await?;
            for d in svc
                .open_disputes()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    d.check_id,
                    d.partner_id,
                    d.disputed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    d.remaining_days.unwrap_or_default(),
                    d.dispute_reason
                        .unwrap_or_default()
                        .replace(['\t', '\n'], " "),
                    d.id
                );
            }
            Ok(())
        }
        Command::Dispute(DisputeCmd::Resolve {
            check,
            dispute,
            outcome,
            resolution,
        }) => {
            let outcome = if outcome == "corrected" {
                DisputeOutcome::Corrected
            } else {
                DisputeOutcome::Upheld
            };
            let svc = worker::setup::service_from(&config).await?;
            let c = svc
                .agency_resolve_dispute(&check, dispute.as_deref(), outcome, &resolution)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}\t{}", c.id, c.status.as_api_str());
            Ok(())
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            let svc = worker::setup::service_from(&config).await?;
            svc.operator_revoke_token(&id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("revoked {id}");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        database_url = %redact_url(&config.database_url()),
        listen = %config.listen,
        public_base_url = %config.public_base_url(),
        data_dir = %config.data_dir.display(),
        db_max_connections = config.db_pool_size(),
        max_page_size = config.max_page_size,
        max_query_depth = config.max_query_depth,
        max_query_complexity = config.max_query_complexity,
        "starting clearhire"
    );
    if config.agency_address.is_none() || config.agency_phone.is_none() {
        tracing::warn!(
            "CLEARHIRE_AGENCY_ADDRESS or CLEARHIRE_AGENCY_PHONE is not set: adverse-action notices \
             must give the consumer reporting agency's address and telephone number (FCRA §615); \
             set both before screening real candidates"
        );
    }
    let app = Application::build(config.clone()).await?;
    let url = format!("http://{}/graphql", app.addr);
    if let Some(p) = &app.bootstrapped {
        // Printed once, on the start that created the demo partner.
        println!(
            "\nCreated the demo partner {} with super_admin {}.\nAPI token (valid 30 days, shown only now):\n\n  {}\n\n\
             Open {url} and set the header  Authorization: Bearer <token>\n",
            p.partner_id, p.admin_email, p.token
        );
    }
    tracing::info!("GraphiQL at {url}");
    app.run_until(worker::setup::shutdown_signal()).await
}

fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((creds, rest)) if creds.contains(':') && creds.contains("//") => {
            let scheme_end = creds.find("//").map(|i| i + 2).unwrap_or(0);
            let user = creds[scheme_end..].split(':').next().unwrap_or("");
            format!("{}{user}:***@{rest}", &creds[..scheme_end])
        }
        _ => url.to_string(),
    }
}

//! One module per command; [`run`] dispatches and turns errors into messages and exit codes.

mod audit;
mod config;
mod decide;
mod report;
mod request;
mod show;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::api::{ApiError, Change, Client, Decision};
use crate::cli::{AuditCommand, Cli, Command, ConfigCommand};
use crate::output::Out;
use crate::settings::{self, UserConfig};

/// Exit statuses other than 0; see [`crate::cli::EXIT_CODES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Denied = 3,
    Cancelled = 4,
    TimedOut = 5,
    Failed = 6,
    Ended = 7,
    WaitTimeout = 8,
    Tampered = 9,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// Runs a parsed command line to its exit status.
pub fn run(cli: Cli) -> ExitCode {
    let out = Out {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return Exit::Error.into();
        }
    };
    match runtime.block_on(dispatch(cli, out)) {
        Ok(exit) => exit.into(),
        Err(err) => {
            report(&err);
            Exit::Error.into()
        }
    }
}

/// `error: ...` and, when there is one, `hint: ...`.
fn report(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
    if let Some(hint) = err.downcast_ref::<ApiError>().and_then(ApiError::hint) {
        eprintln!("hint: {hint}");
    }
}

async fn dispatch(cli: Cli, out: Out) -> anyhow::Result<Exit> {
    let global = &cli.global;
    match cli.command {
        Command::Request(args) => request::request(&connect(global).await?, args, out).await,
        Command::Approve(args) => {
            let client = connect(global).await?;
            let decision = if args.extension {
                Decision::ApproveExtension
            } else {
                Decision::Approve
            };
            decide::decide(&client, Change::Decide(decision), args.id, args.reason, out).await
        }
        Command::Deny(args) => {
            let client = connect(global).await?;
            let decision = if args.extension {
                Decision::DenyExtension
            } else {
                Decision::Deny
            };
            decide::decide(&client, Change::Decide(decision), args.id, args.reason, out).await
        }
        Command::Extend(args) => {
            let client = connect(global).await?;
            decide::extend(&client, args, out).await
        }
        Command::Cancel(args) => {
            let client = connect(global).await?;
            decide::decide(&client, Change::Cancel, args.id, None, out).await
        }
        Command::Revoke(args) => {
            let client = connect(global).await?;
            decide::decide(&client, Change::Revoke, args.id, args.reason, out).await
        }
        Command::Review(args) => {
            let client = connect(global).await?;
            let review = Change::Decide(Decision::Review);
            decide::decide(&client, review, args.id, args.reason, out).await
        }
        Command::List(args) => show::list(&connect(global).await?, args, out).await,
        Command::Show(args) => show::show(&connect(global).await?, args.id, out).await,
        Command::Audit(AuditCommand::Export(args)) => {
            audit::export(&connect(global).await?, args, out).await
        }
        // A file is verified offline; without one the trail is fetched (and compared with the
        // archive, read with the same profile's credentials).
        Command::Audit(AuditCommand::Verify(args)) => match (args.file, args.archive) {
            (Some(path), _) => audit::verify_file(&path, out),
            (None, Some(archive)) => audit::verify_archive(endpoint(global)?, &archive, out).await,
            (None, None) => audit::verify_api(&connect(global).await?, out).await,
        },
        Command::Report(args) => report::report(&connect(global).await?, args, out).await,
        Command::Config(ConfigCommand::Check(args)) => {
            config::check(args, global.profile.clone(), global.region.clone(), out).await
        }
        Command::Reconcile(args) => {
            if !args.dry_run {
                anyhow::bail!(
                    "reconciliation runs in the sweep every five minutes; `elevate reconcile --dry-run` shows what it would change"
                );
            }
            show::reconcile(&connect(global).await?, out).await
        }
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "elevate",
                &mut std::io::stdout(),
            );
            Ok(Exit::Ok)
        }
    }
}

async fn connect(global: &crate::cli::GlobalArgs) -> anyhow::Result<Client> {
    Ok(Client::new(endpoint(global)?).await?)
}

/// The API and the profile, from the flags, the environment and the user's config file.
fn endpoint(global: &crate::cli::GlobalArgs) -> anyhow::Result<crate::api::Endpoint> {
    let file = match UserConfig::path() {
        Some(path) => UserConfig::load(&path)?,
        None => UserConfig::default(),
    };
    settings::endpoint(global, &file)
}

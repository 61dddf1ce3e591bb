//! elevate-local: the local stack of `make dev` (docs/contracts.md, "Local stack").
//!
//! `elevate-local up` starts moto, creates the tutorial's resources in it, runs the four
//! functions in process behind the API routes, the Lambda Invoke API, the Scheduler pump and
//! the Slack stand-in with its page, writes `<state-dir>/stack.json`, prints what to run next,
//! and runs in the foreground until Ctrl-C (or SIGTERM) stops everything it started.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use elevate_local::stack::{Stack, UpOptions};
use tracing_subscriber::EnvFilter;

/// The local stack of elevate: moto, the functions, API Gateway, Scheduler and Slack stand-ins.
#[derive(Debug, Parser)]
#[command(name = "elevate-local", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the local stack in the foreground (Ctrl-C stops it)
    Up(UpArgs),
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// The flows and people (elevate.toml)
    #[arg(long, default_value = "infra/elevate.toml")]
    config: PathBuf,
    /// Where the AWS profiles and stack.json are written
    #[arg(long, default_value = ".local")]
    state_dir: PathBuf,
    /// The gateway's port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// moto's port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    moto_port: u16,
    /// Send the functions' AWS calls here instead of to moto (e.g. a fault-injecting proxy)
    #[arg(long, value_name = "URL")]
    functions_aws_endpoint: Option<String>,
    /// Also stop when standard input closes: a harness holding the other end of a pipe gets
    /// the stack (and moto) stopped however it exits
    #[arg(long)]
    stop_on_stdin_eof: bool,
    /// Leave the archive stream pump off: audit events are not delivered to the archive
    /// function (`make bench` seeds a history it does not want archived into moto's S3)
    #[arg(long)]
    no_archive_pump: bool,
    /// Make moto's IAM Identity Center ready (a user per person, the group ProdApprovers, the
    /// permission set ProdReadOnly) and serve the config with its [identity_center] and a
    /// flow prod_readonly appended (written to <state-dir>/elevate.toml)
    #[arg(long)]
    identity_center: bool,
    /// Serve the config with flows that show the workflow rules appended (two approvers, an
    /// auto-approval rule, the example hook, break-glass, reminders) and the people carol and
    /// mia (written to <state-dir>/elevate.toml)
    #[arg(long)]
    workflows: bool,
    /// A function that takes this long before it starts when invoked, e.g.
    /// `elevate-example-hook=5s` (repeatable): to see what a caller's time-out does
    #[arg(long, value_name = "FUNCTION=DURATION", value_parser = function_latency)]
    function_latency: Vec<(String, std::time::Duration)>,
}

/// `NAME=DURATION` of `--function-latency`.
fn function_latency(text: &str) -> Result<(String, std::time::Duration), String> {
    let (name, duration) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not FUNCTION=DURATION"))?;
    let duration =
        elevate_core::parse_duration(duration).map_err(|e| format!("{duration}: {e}"))?;
    if name.is_empty() {
        return Err(format!("`{text}` names no function"));
    }
    Ok((name.to_owned(), duration))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("elevate-local: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Up(args) => runtime.block_on(up(args)),
    }
}

async fn up(args: UpArgs) -> ExitCode {
    let stop_on_eof = args.stop_on_stdin_eof;
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = stdin_closed(stop_on_eof) => {}
        }
    };
    tokio::pin!(shutdown);
    let options = UpOptions {
        config: args.config,
        state_dir: args.state_dir,
        port: args.port,
        moto_port: args.moto_port,
        functions_aws_endpoint: args.functions_aws_endpoint,
        archive_pump: !args.no_archive_pump,
        identity_center: args.identity_center,
        workflows: args.workflows,
        function_latency: args.function_latency.into_iter().collect(),
    };
    let stack = tokio::select! {
        started = Stack::up(options) => match started {
            Ok(stack) => stack,
            Err(error) => {
                eprintln!("elevate-local: {error}");
                return ExitCode::FAILURE;
            }
        },
        _ = &mut shutdown => {
            eprintln!("elevate-local: stopped while starting");
            return ExitCode::from(130);
        }
    };
    println!("{}", summary(&stack));
    shutdown.await;
    eprintln!("elevate-local: stopping…");
    stack.stop().await;
    eprintln!("elevate-local: stopped");
    ExitCode::SUCCESS
}

/// What to run next, and where to click.
fn summary(stack: &Stack) -> String {
    let info = stack.info();
    let config = stack.config();
    let flow = config.flows.first();
    let requester = flow
        .and_then(|f| match &f.requesters {
            Some(names) => names.first().cloned(),
            None => config.people.first().map(|p| p.name.clone()),
        })
        .unwrap_or_else(|| "alice".into());
    let approver = flow
        .and_then(|f| {
            f.approvers
                .people
                .iter()
                .find(|p| **p != requester)
                .cloned()
        })
        .unwrap_or_else(|| "bob".into());
    let flow_name = flow.map_or("infra_access", |f| f.name.as_str());
    let group = flow
        .and_then(|f| f.targets.first())
        .map(|t| t.kind.resource())
        .unwrap_or_default();
    let bucket = match &stack.bootstrapped().demo_bucket {
        Some(bucket) => format!("demo bucket {bucket}"),
        None => "no demo bucket (moto refused it; see the log)".to_owned(),
    };
    let path_hint = elevate_binary()
        .map(|dir| format!("  export PATH=\"{}:$PATH\"\n", dir.display()))
        .unwrap_or_default();
    let people = config
        .people
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let lines = [
        String::new(),
        "elevate local stack is up (Ctrl-C stops it)".to_owned(),
        format!("  API          {}", info.api_url),
        format!("  Slack page   {}", info.slack_page),
        format!("  moto         {}", info.moto_endpoint),
        format!(
            "  archive      {} (elevate audit verify --archive {})",
            info.archive_bucket, info.archive_url
        ),
        format!(
            "  created      SymDemoAdmins, SymDemoEscalated, {bucket}, table {}, schedule group {},",
            info.table, info.schedule_group
        ),
        format!(
            "               users {} (profiles in {})",
            people, info.aws_config_file
        ),
        String::new(),
        "In another terminal, from this directory:".to_owned(),
        format!(
            "{path_hint}  export AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={} ELEVATE_API_URL={}",
            from_anywhere(&info.aws_config_file),
            from_anywhere(&info.aws_credentials_file),
            info.api_url
        ),
        format!(
            "  elevate --profile {requester} request {flow_name} --duration 2m --reason \"try the local stack\" --wait"
        ),
        String::new(),
        format!(
            "Then open {} to approve as {approver}: {requester} joins {group} until the time is up.",
            info.slack_page
        ),
        format!(
            "Or, without the CLI: on that page, run /elevate as {requester}, fill in the form, approve as {approver}."
        ),
    ];
    let mut lines = lines.to_vec();
    if config.flow(elevate_local::workflows::FLOWS[0].0).is_some() {
        lines.extend([
            String::new(),
            "Workflow rules (--workflows), each a flow:".to_owned(),
        ]);
        for (name, shows) in elevate_local::workflows::FLOWS {
            lines.push(format!("  {name:<11} {shows}"));
        }
        lines.extend([
            "  elevate --profile mia request on_call --duration 15m --reason \"paged\" --wait".to_owned(),
            format!("  elevate --profile {requester} request urgent --duration 10m --reason \"INC-1\" --break-glass"),
            format!("  elevate --profile {requester} extend <id> --by 30m --reason \"not done yet\""),
        ]);
    }
    if let Some(center) = &info.identity_center {
        lines.extend([
            String::new(),
            format!(
                "Identity Center (moto): permission set {} in accounts {}; approvers: the group {}.",
                center.permission_set_arn,
                center.accounts.join(", "),
                center.approvers_group
            ),
            format!(
                "  elevate --profile {requester} request {} --account {} --duration 10m --reason \"read prod\" --wait",
                elevate_local::identity_center::FLOW,
                center.accounts.first().map_or("111111111111", String::as_str)
            ),
            format!("  (the config served is {})", info.config_path),
        ]);
    }
    lines.join("\n")
}

/// A relative path as `$PWD/<path>`, so the exports still work after a `cd`.
fn from_anywhere(path: &str) -> String {
    if Path::new(path).is_relative() {
        format!("$PWD/{path}")
    } else {
        path.to_owned()
    }
}

/// The directory of the `elevate` binary built next to this one, when there is one.
fn elevate_binary() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .map(|rel| PathBuf::from("$PWD").join(rel));
    dir.join("elevate")
        .is_file()
        .then(|| relative.unwrap_or(dir))
}

/// Human-readable logs on stderr: `RUST_LOG`, else elevate at info and the SDKs at warn.
fn init_tracing() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_sts=warn,hyper=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .compact()
        .try_init();
}

/// Completes when standard input reaches its end, if `enabled`; never otherwise.
async fn stdin_closed(enabled: bool) {
    if !enabled {
        return std::future::pending().await;
    }
    let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
    // A thread, not the runtime: tokio's stdin reads on a thread it cannot cancel anyway.
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut sink = std::io::sink();
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
            let _ = closed.send(());
        });
    if spawned.is_err() {
        return std::future::pending().await;
    }
    let _ = on_close.await;
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

//! The `dota-orchestrator` binary: parses the command line, sets up logging and runs either
//! the service (`serve`) or the fixture upstream (`fixture-upstream`, only in builds with the
//! cargo feature of that name, on by default) until a signal, or prints the OpenAPI document
//! (`openapi`, what `GET /api/openapi.json` serves; the TypeScript client is generated from it).

// Release builds only: monomorphizing the nested warp filter futures of the HTTP and
// fixture routes overflows rustc's default trait-evaluation depth of 128 (E0275 on `Unpin`, see
// rust-lang/rust#147967). Compile-time only; no effect on the generated code.
#![recursion_limit = "256"]

#[cfg(feature = "fixture-upstream")]
use std::net::SocketAddr;
#[cfg(feature = "fixture-upstream")]
use std::path::PathBuf;
#[cfg(feature = "fixture-upstream")]
use std::time::Duration;

use std::io::IsTerminal;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::config::{ConfigFile, ServeArgs};
#[cfg(feature = "fixture-upstream")]
use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureUpstream};
use dota_orchestrator::http::request_id::RequestSpans;

#[derive(Parser)]
#[command(
    name = "dota-orchestrator",
    version,
    about = "Keeps a Dota 2 analytics dashboard fed with OpenDota/Dotabuff data"
)]
struct Cli {
    /// Log format.
    #[arg(long, env = "DOTA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: HTTP API, background fetchers, embedded or external NATS.
    Serve(Box<ServeArgs>),
    /// Print the AsyncAPI 3.0 document of the NATS events (what GET /api/asyncapi.json serves).
    Asyncapi,
    /// Serve recorded-shape OpenDota/Dotabuff responses from a directory (tests, demos, benchmarks).
    #[cfg(feature = "fixture-upstream")]
    FixtureUpstream(FixtureArgs),
    /// Print the OpenAPI document that `GET /api/openapi.json` serves (pretty JSON), without
    /// starting anything.
    Openapi,
}

#[cfg(feature = "fixture-upstream")]
#[derive(clap::Args)]
struct FixtureArgs {
    /// Data directory (opendota/*.json, dotabuff/*.html).
    #[arg(long, default_value = "fixtures/demo")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    addr: SocketAddr,
    /// Latency added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// OpenDota requests allowed per calendar minute (unlimited when absent).
    #[arg(long)]
    rate_limit_per_min: Option<u32>,
    /// OpenDota requests allowed per UTC day (unlimited when absent).
    #[arg(long)]
    daily_limit: Option<u32>,
    /// Share of requests answered with HTTP 500 (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
}

/// Parses the command line. With `serve --config FILE` it parses it a second time with the file's
/// values as the defaults of `serve`'s flags, so flags and their environment variables still win.
fn parse_cli() -> anyhow::Result<Cli> {
    let cli = Cli::parse();
    let Command::Serve(args) = &cli.command else {
        return Ok(cli);
    };
    let Some(path) = &args.config else {
        return Ok(cli);
    };
    let file = ConfigFile::read(path)?;
    let matches = Cli::command()
        .mut_subcommand("serve", |serve| file.apply(serve))
        .get_matches();
    Ok(Cli::from_arg_matches(&matches)?)
}

/// Log lines at the level `RUST_LOG` says (default `info`). Requests log nothing at info: each
/// runs in an `http` span that every line it logs carries, its fields formatted only when a line
/// needs them (`http::request_id::RequestSpans`, installed before the log layer, whose field
/// format it shares); `RUST_LOG=debug` adds each request's `answered` line with its status.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::fmt::format::{DefaultFields, JsonFields};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::registry().with(filter);
    // Logs go to stderr; stdout carries only the one-line address announcement. Colours only on
    // a terminal: in a file or a journal the escape codes are noise.
    let ansi = std::io::stderr().is_terminal();
    match format {
        LogFormat::Text => logs
            .with(RequestSpans::new(DefaultFields::new()))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => logs
            .with(RequestSpans::new(JsonFields::new()))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    tracing::info!("signal received; shutting down");
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.into_settings().context("invalid settings")?;
    let app = Application::build(settings, Hooks::default())
        .await
        .context("start-up failed")?;
    println!("dota-orchestrator listening on http://{}", app.http_addr());
    wait_for_signal().await?;
    app.stop().await;
    Ok(())
}

#[cfg(feature = "fixture-upstream")]
async fn fixture(args: FixtureArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        anyhow::bail!("--fail-rate must be between 0 and 1");
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let upstream = FixtureUpstream::start(
        FixtureConfig {
            dir: args.dir,
            latency: Duration::from_millis(args.latency_ms),
            rate_limit_per_min: args.rate_limit_per_min,
            daily_limit: args.daily_limit,
            fail_rate: args.fail_rate,
            ..FixtureConfig::default()
        },
        listener,
    )
    .await
    .context("starting the fixture upstream")?;
    println!("fixture upstream on http://{}", upstream.addr());
    wait_for_signal().await?;
    upstream.stop().await;
    Ok(())
}

/// Writes the served OpenAPI document as pretty JSON: the same value as
/// `/api/openapi.json` (which is compact), laid out so the committed copy in
/// `clients/typescript/` diffs line by line.
fn write_openapi(mut out: impl std::io::Write) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut out, dota_orchestrator::http::openapi::document())
        .context("encoding the OpenAPI document")?;
    writeln!(out).context("writing the OpenAPI document")?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // Before any other thread starts, so none keeps an arena of its own (see app::memory).
    dota_orchestrator::app::limit_malloc_arenas();
    let cli = parse_cli()?;
    init_tracing(cli.log_format);
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot build the tokio runtime: {e}"))
    });
    system.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Asyncapi => {
                let doc = dota_orchestrator::events::asyncapi::document();
                println!("{}", serde_json::to_string_pretty(&doc)?);
                Ok(())
            }
            #[cfg(feature = "fixture-upstream")]
            Command::FixtureUpstream(args) => fixture(args).await,
            // Starts nothing; logs go to stderr, so stdout carries only the document.
            Command::Openapi => write_openapi(std::io::stdout().lock()),
        }
    })
}

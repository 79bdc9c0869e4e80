//! The `porthole` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use porthole::{Application, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "porthole",
    version,
    about = "An embeddable AI chat widget server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the chat API, widget and docs.
    Serve {
        /// Address to listen on (overrides the config file and PORTHOLE_ADDR).
        #[arg(long)]
        addr: Option<String>,
        /// TOML config file.
        #[arg(long, env = "PORTHOLE_CONFIG")]
        config: Option<PathBuf>,
        /// Also serve the demo widget (id `demo`, key `pk_demo`).
        #[arg(long)]
        demo: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Serve { addr, config, demo } = cli.command;
    let env = |name: &str| {
        if name == "PORTHOLE_ADDR" && addr.is_some() {
            return addr.clone();
        }
        std::env::var(name).ok()
    };
    let settings = match Settings::load(config.as_deref(), &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("porthole: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    porthole::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porthole: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings, demo)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porthole: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let deadline = settings.shutdown_deadline();
    let app = Application::build(settings, demo).await?;
    // Tests and scripts read this line to find the port when --addr ends in :0.
    println!("porthole listening on http://{}", app.addr());
    let lifecycle = app.lifecycle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received");
        lifecycle.begin_shutdown();
        // A backstop: whatever is stuck, the process ends shortly after the deadline.
        tokio::time::sleep(deadline + std::time::Duration::from_secs(1)).await;
        tracing::error!("shutdown deadline passed; exiting");
        std::process::exit(1);
    });
    app.run().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

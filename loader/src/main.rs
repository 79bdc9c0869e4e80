//! Writes `widget.js` for hosting on a CDN. Only the first stage: it fetches
//! its second, `/loader/panel.<hash>.js`, from the Porthole server at
//! `--origin`, which always serves the one that matches its own panel.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Writes Porthole's loader (widget.js)")]
struct Args {
    /// Where to write it.
    #[arg(long)]
    out: std::path::PathBuf,
    /// The Porthole server's origin, e.g. https://chat.example.com.
    #[arg(long)]
    origin: String,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match std::fs::write(&args.out, loader::script(&args.origin)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loader: cannot write {}: {e}", args.out.display());
            std::process::ExitCode::FAILURE
        }
    }
}

//! Runs the mock upstream on its own, e.g. to point `porthole serve` at it by
//! hand: `cargo run -p mock-upstream -- --tokens 50 --delay-ms 20`.

use clap::Parser;
use mock_upstream::{MockUpstream, Script};

#[derive(Debug, Parser)]
#[command(about = "An OpenAI-compatible streaming mock with scripted tokens")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// Answer with this text, split into words (instead of numbered tokens).
    #[arg(long)]
    text: Option<String>,
    /// Number of numbered tokens per answer.
    #[arg(long, default_value_t = 20)]
    tokens: usize,
    /// Delay before each token, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let script = match &args.text {
        Some(text) => Script::words(text, args.delay_ms),
        None => Script::numbered(args.tokens, args.delay_ms),
    };
    let mock = MockUpstream::bind(&args.addr, script).await?;
    println!(
        "mock upstream listening; OPENAI_BASE_URL={}",
        mock.base_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

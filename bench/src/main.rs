//! Drives concurrent chat streams through the release `porthole` binary
//! against the mock upstream on loopback, and prints each figure next to its
//! goal. Run it with `scripts/bench` (which builds both in release mode).
//!
//! The load generator, the mock and the server share this machine, so the
//! figures are a floor for what the server does on its own cores.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use mock_upstream::{MockUpstream, Script};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

#[derive(Debug, Parser)]
#[command(about = "Porthole load benchmark")]
struct Args {
    /// The server binary to measure.
    #[arg(long, default_value = "target/release/porthole")]
    server: PathBuf,
    /// Seconds each throughput run lasts.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Fewer rounds and shorter runs, for a quick look.
    #[arg(long)]
    quick: bool,
    /// Run only the memory measurement.
    #[arg(long)]
    memory_only: bool,
    /// Run only the soak.
    #[arg(long)]
    soak_only: bool,
    /// Streams the soak opens and drops.
    #[arg(long, default_value_t = 10_000)]
    soak_streams: usize,
}

/// A running server process.
struct Server {
    _child: Child,
    base: String,
    session: String,
    pid: u32,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    async fn start(binary: &PathBuf, upstream: &str) -> anyhow::Result<(Self, Duration)> {
        let dir = std::env::temp_dir().join(format!(
            "porthole-bench-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("porthole.toml");
        std::fs::write(
            &config,
            format!(
                "addr = \"127.0.0.1:0\"\n[store]\npath = \"{db}\"\n[log]\nfilter = \"warn\"\n[upstream]\nprovider = \"openai\"\n\
                 base_url = \"{upstream}\"\napi_key = \"sk-bench\"\nidle_timeout_ms = 900000\n\
                 [limits]\nrequests_per_minute_per_key = 1000000\nrequests_per_minute_per_session = 1000000\n\
                 requests_per_minute_per_ip = 1000000\nconcurrent_streams_per_session = 1000000\ndaily_tokens = 0\nmonthly_tokens = 0\n\
                 [[widgets]]\nid = \"bench\"\npublic_key = \"pk_bench\"\nsystem_prompt = \"Be brief.\"\n",
                db = dir.join("porthole.db").display()
            ),
        )?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = lines.next_line().await?.context("server printed nothing")?;
        let base = line.rsplit(' ').next().context("no address")?.to_owned();
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{base}/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("server not healthy after 10 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let startup = started.elapsed();
        let pid = child.id().context("server pid")?;
        // The session a visitor's widget page carries.
        let page = client
            .get(format!("{base}/widget/bench?key=pk_bench"))
            .send()
            .await?
            .text()
            .await?;
        let session = page
            .split("\"session\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("no session in the widget page: is the widget built (scripts/build-widget)?")?
            .to_owned();
        Ok((
            Self {
                _child: child,
                base,
                session,
                pid,
                _dir: TempDir(dir),
            },
            startup,
        ))
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(4_096)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// Where a stream goes: through Porthole, or straight to the mock.
#[derive(Clone)]
enum Target {
    /// Base URL and a visitor's session token.
    Porthole(String, String),
    Mock(String),
}

impl Target {
    fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        match self {
            Target::Porthole(base, session) => client
                .post(format!("{base}/api/v1/chat"))
                .header("x-api-key", "pk_bench")
                .bearer_auth(session)
                .json(&serde_json::json!({"message": "How fast are you?"})),
            Target::Mock(base) => {
                client
                    .post(format!("{base}/chat/completions"))
                    .json(&serde_json::json!({
                        "model": "bench", "stream": true,
                        "messages": [{"role": "user", "content": "How fast are you?"}]
                    }))
            }
        }
    }
}

/// One stream: time to its first answer chunk, and whether it completed.
async fn one_stream(client: &reqwest::Client, target: &Target) -> Option<Duration> {
    let started = Instant::now();
    let mut response = target.request(client).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let mut first = None;
    let mut parser = protocol::SseParser::new();
    let mut done = false;
    while let Ok(Some(bytes)) = response.chunk().await {
        for msg in parser.push(&bytes) {
            let is_chunk = match target {
                Target::Porthole(..) => msg.event == "message",
                Target::Mock(_) => msg.data.contains("\"content\""),
            };
            if is_chunk && first.is_none() {
                first = Some(started.elapsed());
            }
            done |= msg.event == "done" || msg.data == "[DONE]";
        }
    }
    if done { first } else { None }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `rounds` bursts of `n` simultaneous streams; first-chunk latencies sorted.
async fn burst_latency(target: &Target, n: usize, rounds: usize) -> (Vec<Duration>, usize) {
    let client = client();
    let mut all = Vec::new();
    let mut failed = 0;
    for _ in 0..rounds {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (client, target) = (client.clone(), target.clone());
                tokio::spawn(async move { one_stream(&client, &target).await })
            })
            .collect();
        for t in tasks {
            match t.await.ok().flatten() {
                Some(d) => all.push(d),
                None => failed += 1,
            }
        }
    }
    all.sort();
    (all, failed)
}

struct Throughput {
    streams_per_sec: f64,
    failed: usize,
    peak_rss_kib: u64,
    first_chunk: Vec<Duration>,
}

/// Seconds of ramp-up before a throughput window opens: every worker's
/// first stream has to finish before the rate is steady.
const WARM_UP: Duration = Duration::from_millis(2_500);

/// `workers` loops open streams back to back; streams finishing in a window
/// of `secs` after the warm-up are counted.
async fn closed_loop(
    target: &Target,
    workers: usize,
    secs: u64,
    server: Option<&Server>,
) -> Throughput {
    let client = client();
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let window = (
        started + WARM_UP,
        started + WARM_UP + Duration::from_secs(secs),
    );
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            let (client, target, stop, completed, failed) = (
                client.clone(),
                target.clone(),
                stop.clone(),
                completed.clone(),
                failed.clone(),
            );
            // Stagger the starts over a second so that completions do not
            // arrive in waves that the window edges would cut.
            let offset = Duration::from_secs(1).mul_f64(i as f64 / workers as f64);
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut firsts = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match one_stream(&client, &target).await {
                        Some(d) => {
                            firsts.push(d);
                            let now = Instant::now();
                            if now >= window.0 && now < window.1 {
                                completed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                firsts
            })
        })
        .collect();
    let mut peak_rss_kib = 0;
    while Instant::now() < window.1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(s) = server {
            peak_rss_kib = peak_rss_kib.max(s.rss_kib());
        }
    }
    let done_in_window = completed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let mut first_chunk = Vec::new();
    for t in tasks {
        if let Ok(f) = t.await {
            first_chunk.extend(f);
        }
    }
    first_chunk.sort();
    Throughput {
        streams_per_sec: done_in_window as f64 / secs as f64,
        failed: failed.load(Ordering::Relaxed),
        peak_rss_kib,
        first_chunk,
    }
}

/// Opens `n` streams that stay open on a fresh server, returns its RSS
/// growth per stream in KiB.
async fn rss_per_open_stream(
    binary: &PathBuf,
    mock: &MockUpstream,
    n: usize,
) -> anyhow::Result<f64> {
    let (server, _) = Server::start(binary, &mock.base_url()).await?;
    let client = client();
    let target = Target::Porthole(server.base.clone(), server.session.clone());
    // Warm up pools and the allocator with a few whole answers, then hold
    // answers open mid-stream.
    mock.set_script(Script::numbered(3, 1));
    let (_, _) = burst_latency(&target, 10, 1).await;
    let mut script = Script::numbered(3, 10);
    script.token_delay = Duration::from_secs(600);
    mock.set_script(script);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let opened = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::new();
    for _ in 0..n {
        let (client, target, opened) = (client.clone(), target.clone(), opened.clone());
        held.push(tokio::spawn(async move {
            let Ok(mut r) = target.request(&client).send().await else {
                return;
            };
            if r.chunk().await.is_ok() {
                opened.fetch_add(1, Ordering::SeqCst);
            }
            // Hold the stream open until aborted.
            while let Ok(Some(_)) = r.chunk().await {}
        }));
    }
    let wait_started = Instant::now();
    while opened.load(Ordering::SeqCst) < n {
        if wait_started.elapsed() > Duration::from_secs(30) {
            bail!(
                "only {} of {n} streams opened",
                opened.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = server.rss_kib();
    for h in &held {
        h.abort();
    }
    for h in held {
        let _ = h.await;
    }
    Ok((during.saturating_sub(before)) as f64 / n as f64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secs = if args.quick { 3 } else { args.seconds };
    let rounds = if args.quick { 2 } else { 5 };
    if !args.server.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p porthole`",
            args.server.display()
        );
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "Porthole benchmark: release server vs. mock upstream on loopback, {cores} cores shared by all three\n"
    );

    let mock = MockUpstream::start(Script::numbered(50, 20)).await?;
    if !args.memory_only && !args.soak_only {
        speed(&args, &mock, secs, rounds).await?;
    }
    if !args.soak_only {
        println!("\nmemory per open stream (a fresh server each; streams held open mid-answer)");
        for n in [100, 1_000] {
            let kib = rss_per_open_stream(&args.server, &mock, n).await?;
            println!("  {n:>5} open: {kib:.1} KiB RSS per stream   goal < 40 KB");
        }
    }
    if !args.memory_only {
        soak(&args.server, &mock, args.soak_streams).await?;
    }
    Ok(())
}

/// The server's gauges from `/metrics`.
async fn gauges(client: &reqwest::Client, base: &str) -> anyhow::Result<(u64, u64, u64)> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let g = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        g("porthole_open_streams"),
        g("porthole_runtime_alive_tasks"),
        g("porthole_resident_memory_bytes") / 1024,
    ))
}

/// Opens `total` streams, 200 at a time, and drops each at a random point
/// (before the first chunk, mid-answer, or after the end); then checks that
/// open streams, live tasks and RSS return to where they were.
async fn soak(binary: &PathBuf, mock: &MockUpstream, total: usize) -> anyhow::Result<()> {
    println!(
        "\nsoak: {total} streams opened and dropped at random points, 200 at a time (100 tokens 2 ms apart)"
    );
    mock.set_script(Script::numbered(100, 2));
    let (server, _) = Server::start(binary, &mock.base_url()).await?;
    let client = client();
    let target = Target::Porthole(server.base.clone(), server.session.clone());
    let run = |n: usize, seed: u64| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            let next = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for w in 0..200u64 {
                let (client, target, next) = (client.clone(), target.clone(), next.clone());
                workers.push(tokio::spawn(async move {
                    // xorshift: cheap, reproducible randomness per worker.
                    let mut x = seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    while next.fetch_add(1, Ordering::SeqCst) < n {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let keep = (x % 130) as usize; // chunks to read; >= 100 reads to the end
                        let Ok(mut r) = target.request(&client).send().await else {
                            continue;
                        };
                        let mut read = 0;
                        while read < keep {
                            match r.chunk().await {
                                Ok(Some(_)) => read += 1,
                                _ => break,
                            }
                        }
                        drop(r);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        }
    };
    // Warm up pools, the allocator and SQLite's page caches, then take the baseline.
    run(3_000, 1).await;
    let settle = |what: &'static str| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            let started = Instant::now();
            loop {
                let g = gauges(&client, &base).await?;
                if g.0 == 0 || started.elapsed() > Duration::from_secs(10) {
                    if g.0 != 0 {
                        println!("  {what}: {} streams still open after 10 s", g.0);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return gauges(&client, &base).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (_, tasks_before, rss_before) = settle("baseline").await?;
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (peak, pid) = (peak.clone(), server.pid);
        tokio::spawn(async move {
            loop {
                let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmRSS:"))
                            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
                    })
                    .unwrap_or(0);
                peak.fetch_max(rss, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  baseline (after a 3,000-stream warm-up): {tasks_before} live tasks, RSS {:.1} MiB",
        mib(rss_before)
    );
    let mut previous = rss_before;
    for round in 1..=2 {
        let started = Instant::now();
        run(total, 1 + round).await;
        let elapsed = started.elapsed();
        let (open_after, tasks_after, rss_after) = settle("after").await?;
        println!(
            "  round {round}: {total} streams in {:.1} s -> open streams {open_after} (goal 0), live tasks {tasks_after} \
             (baseline {tasks_before}), RSS {:.1} MiB ({:+.1}% of baseline, {:+.1}% of the round before)",
            elapsed.as_secs_f64(),
            mib(rss_after),
            (rss_after as f64 / rss_before.max(1) as f64 - 1.0) * 100.0,
            (rss_after as f64 / previous.max(1) as f64 - 1.0) * 100.0,
        );
        previous = rss_after;
    }
    sampler.abort();
    println!(
        "  RSS peak {:.1} MiB; goal: open streams and live tasks back to baseline, RSS flat from round to round (no leak)",
        mib(peak.load(Ordering::SeqCst) as u64)
    );
    Ok(())
}

async fn speed(args: &Args, mock: &MockUpstream, secs: u64, rounds: usize) -> anyhow::Result<()> {
    // Start-up to the first successful /health.
    let mut startups = Vec::new();
    for _ in 0..10 {
        let (server, startup) = Server::start(&args.server, &mock.base_url()).await?;
        startups.push(startup);
        drop(server);
    }
    startups.sort();
    println!(
        "start-up to first /health     median {}  (min {}, max {})   goal < 50 ms",
        ms(percentile(&startups, 0.5)),
        ms(startups[0]),
        ms(startups[startups.len() - 1])
    );

    let (server, _) = Server::start(&args.server, &mock.base_url()).await?;
    let through = Target::Porthole(server.base.clone(), server.session.clone());
    let direct = Target::Mock(mock.base_url());

    // Added first-chunk latency: the same bursts straight to the mock and
    // through Porthole; the mock waits 20 ms before its first token.
    mock.set_script(Script::numbered(10, 20));
    println!(
        "\nfirst-chunk latency, bursts of simultaneous streams (mock's first token after 20 ms)"
    );
    for (n, rounds) in [(100, rounds * 4), (1_000, rounds)] {
        let (mock_lat, mock_failed) = burst_latency(&direct, n, rounds).await;
        let (lat, failed) = burst_latency(&through, n, rounds).await;
        let added50 = percentile(&lat, 0.5).saturating_sub(percentile(&mock_lat, 0.5));
        let added99 = percentile(&lat, 0.99).saturating_sub(percentile(&mock_lat, 0.99));
        println!(
            "  {rounds:>2} x {n:>5} streams: mock p50 {} p99 {} | via porthole p50 {} p99 {} | added p50 {} p99 {}{}   {}",
            ms(percentile(&mock_lat, 0.5)),
            ms(percentile(&mock_lat, 0.99)),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(added50),
            ms(added99),
            if failed + mock_failed > 0 {
                format!(" ({failed} + {mock_failed} failed)")
            } else {
                String::new()
            },
            if n == 100 {
                "goal: added p99 < 5 ms"
            } else {
                ""
            }
        );
    }

    // Throughput against the ceiling the mock's pacing allows: each stream
    // is 50 tokens 20 ms apart (1.0 s), so w workers can finish at most w
    // streams per second.
    mock.set_script(Script::numbered(50, 20));
    println!("\nthroughput, closed loop for {secs} s, 50 tokens 20 ms apart (1.0 s a stream)");
    for workers in [100, 500, 1_000] {
        let ceiling = workers as f64 / 1.0;
        let t = closed_loop(&through, workers, secs, Some(&server)).await;
        let p = |q| ms(percentile(&t.first_chunk, q));
        println!(
            "  {workers:>5} concurrent: {:.0} streams/s = {:.1}% of the {ceiling:.0}/s ceiling; first chunk p50 {} p99 {}; peak RSS {:.1} MiB{}{}",
            t.streams_per_sec,
            100.0 * t.streams_per_sec / ceiling,
            p(0.5),
            p(0.99),
            t.peak_rss_kib as f64 / 1024.0,
            if t.failed > 0 {
                format!("; {} failed", t.failed)
            } else {
                String::new()
            },
            if workers == 500 {
                "   goal: >= 90% of ceiling"
            } else {
                ""
            }
        );
    }

    println!(
        "\nserver RSS at rest after the runs: {:.1} MiB",
        server.rss_kib() as f64 / 1024.0
    );
    drop(server);
    Ok(())
}

//! Debian's nginx with the example configuration (deploy/nginx/porthole.conf)
//! in front of the real server: the answer's deltas still arrive one by one.

use std::time::Duration;

use mock_upstream::Script;
use protocol::StreamEvent;
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{EventReader, KEY, page_session, spawn_with_mock, temp_dir};

/// nginx in the foreground with the example server block, proxying to
/// `backend`; killed when dropped.
pub(crate) struct Nginx {
    child: tokio::process::Child,
    pub(crate) base: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM to the master, which ends its workers (a KILL would orphan them).
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
}

/// nginx with the example configuration in front of the servers on
/// `backends` (round robin, as the example says for several replicas).
pub(crate) async fn start_nginx(backends: &[u16]) -> Nginx {
    let binary = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
    assert!(
        std::path::Path::new(&binary).exists(),
        "nginx is not installed ({binary}); scripts/test installs it (apt-get install nginx-light)"
    );
    let dir = temp_dir("nginx");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/nginx/porthole.conf"
    ))
    .expect("the example config");
    // The example as an operator would adapt it: their ports.
    let servers: Vec<String> = backends
        .iter()
        .map(|port| format!("server 127.0.0.1:{port};"))
        .collect();
    let site = example
        .replace("server 127.0.0.1:8080;", &servers.join("\n    "))
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(site, example, "the example's ports were not found");
    std::fs::write(dir.join("porthole.conf"), site).expect("site written");
    let d = dir.display();
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "worker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               gzip on;\n  gzip_types text/event-stream application/json;\n\
               include {d}/porthole.conf;\n}}\n"
        ),
    )
    .expect("nginx.conf written");
    let child = tokio::process::Command::new(&binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .spawn()
        .expect("nginx starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Nginx { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "nginx did not listen: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

/// Arrival times of the chunks of one answer asked at `base`.
async fn chunk_times(client: &reqwest::Client, base: &str, session: &str) -> Vec<Instant> {
    let response = client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", KEY)
        .header("accept-encoding", "gzip")
        .bearer_auth(session)
        .json(&json!({"message": "Tell me a story."}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-encoding").is_none(),
        "the stream must not be compressed"
    );
    let events = EventReader::new(response).collect_timed().await;
    assert!(matches!(events.last(), Some((StreamEvent::Done(_), _))));
    events
        .into_iter()
        .filter(|(e, _)| matches!(e, StreamEvent::Chunk(_)))
        .map(|(_, t)| t)
        .collect()
}

#[tokio::test]
async fn through_nginx_with_the_example_config_deltas_arrive_as_they_are_made() {
    // 20 words, one every 60 ms.
    let words: Vec<String> = (1..=20).map(|i| format!("w{i} ")).collect();
    let app = spawn_with_mock(Script::words(&words.concat(), 60), |_| {}).await;
    let port: u16 = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let nginx = start_nginx(&[port]).await;
    // Raw responses: the workspace's reqwest has gzip on (the crawler uses
    // it), which would otherwise decode a gzipped stream and hide it.
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    // The widget page and its session come through the proxy too.
    let session = page_session(&client, &nginx.base, "test", KEY).await;

    let times = chunk_times(&client, &nginx.base, &session).await;
    assert_eq!(times.len(), 20, "every delta arrives");
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    let spread = (times[19] - times[0]).as_millis();
    println!("through nginx: 20 deltas over {spread} ms; gaps between deltas (ms): {gaps:?}");
    // Made 60 ms apart, they arrive about 60 ms apart: not in one lump at the end.
    assert!(spread >= 19 * 60 * 8 / 10, "spread {spread} ms");
    let paced = gaps.iter().filter(|g| **g >= 30).count();
    assert!(paced >= 15, "only {paced} of 19 gaps >= 30 ms: {gaps:?}");
}

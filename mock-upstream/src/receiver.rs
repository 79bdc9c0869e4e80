//! A webhook receiver on loopback for tests: plain HTTP/1.1 over TCP, it
//! answers 500 to its first `fail` requests and 204 after, and keeps every
//! request it got (headers lower-cased, the body as sent) for the test to
//! check. It verifies nothing itself: the tests do, with the spec's
//! algorithm.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status it answered.
    pub answered: u16,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Whether it verifies under `secret` as the Standard Webhooks spec
    /// says, written out here apart from Porthole's own signing: among the
    /// `webhook-signature` header's space-separated `v1,` signatures is the
    /// base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`,
    /// keyed with the bytes the secret's base64 (after `whsec_`) encodes.
    pub fn signed_with(&self, secret: &str) -> bool {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        use hmac::{Hmac, Mac};
        let Ok(key) = STANDARD.decode(secret.trim().trim_start_matches("whsec_")) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&key) else {
            return false;
        };
        mac.update(
            format!(
                "{}.{}.{}",
                self.header("webhook-id"),
                self.header("webhook-timestamp"),
                self.body
            )
            .as_bytes(),
        );
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        self.header("webhook-signature")
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    }
}

/// The running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Where to send: `http://127.0.0.1:PORT/hooks/porthole`.
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Listens on a free loopback port.
    pub async fn start(fail: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hooks/porthole", listener.local_addr()?);
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, seen.clone(), fail));
            }
        });
        Ok(Self { url, got })
    }

    /// What it got so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits up to `within` for `done` to hold over what it got.
    pub async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>, Vec<Received>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if done(&got) {
                return Ok(got);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(got);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(mut conn: tokio::net::TcpStream, seen: Arc<Mutex<Vec<Received>>>, fail: usize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head, body_start) = loop {
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&buf[..at]).into_owned(), at + 4);
        }
    };
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < body_start + length {
        let n = conn.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[body_start..]).into_owned();
    let answered = {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        let answered = if seen.len() < fail { 500 } else { 204 };
        seen.push(Received {
            headers,
            body,
            answered,
        });
        answered
    };
    let reply = format!("HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = conn.write_all(reply.as_bytes()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(signature: &str) -> Received {
        Received {
            headers: vec![
                ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("webhook-timestamp".into(), "1614265330".into()),
                ("webhook-signature".into(), signature.into()),
            ],
            body: r#"{"test": 2432232314}"#.into(),
            answered: 204,
        }
    }

    #[test]
    fn the_check_accepts_the_specs_test_vector_and_nothing_else() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(vector(good).signed_with(secret));
        assert!(vector(&format!("v1,bm9wZQ== {good}")).signed_with(secret));
        assert!(!vector("v1,bm9wZQ==").signed_with(secret));
        assert!(!vector(good).signed_with("whsec_bm9wZQ=="));
        let mut changed = vector(good);
        changed.body.push(' ');
        assert!(!changed.signed_with(secret));
    }
}

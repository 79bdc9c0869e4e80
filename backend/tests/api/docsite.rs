//! A documentation site on loopback for the crawler: pages, robots.txt and
//! sitemaps served over real HTTP/1.1, with ETags (and 304s) and counters
//! of what was asked, so tests can see which pages were fetched again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone)]
pub struct Doc {
    pub content_type: String,
    pub body: Vec<u8>,
    /// A redirect target instead of a body.
    pub location: Option<String>,
}

#[derive(Debug, Default)]
struct Site {
    docs: HashMap<String, Doc>,
    /// Path -> full responses (200) sent.
    fetched: HashMap<String, usize>,
    /// Path -> 304s sent.
    not_modified: HashMap<String, usize>,
    /// A pause before every HTML page (a slow site).
    delay_ms: u64,
}

/// A running site; it stops when dropped.
#[derive(Debug)]
pub struct DocSite {
    pub base: String,
    site: Arc<Mutex<Site>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn etag(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:x}\"", h.finish())
}

impl DocSite {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("doc site binds");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let site: Arc<Mutex<Site>> = Arc::default();
        let shared = site.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { base, site, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn put(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.site.lock().expect("site").docs.insert(
            path.to_owned(),
            Doc {
                content_type: content_type.to_owned(),
                body: body.into(),
                location: None,
            },
        );
    }

    pub fn html(&self, path: &str, body: &str) {
        self.put(path, "text/html; charset=utf-8", body);
    }

    pub fn redirect(&self, path: &str, to: &str) {
        self.site.lock().expect("site").docs.insert(
            path.to_owned(),
            Doc {
                content_type: String::new(),
                body: Vec::new(),
                location: Some(to.to_owned()),
            },
        );
    }

    /// Makes every HTML page take `ms` to answer.
    pub fn slow(&self, ms: u64) {
        self.site.lock().expect("site").delay_ms = ms;
    }

    pub fn remove(&self, path: &str) {
        self.site.lock().expect("site").docs.remove(path);
    }

    /// A sitemap at `path` listing `pages` (paths on this site).
    pub fn sitemap(&self, path: &str, pages: &[&str]) {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
        );
        for p in pages {
            xml.push_str(&format!("  <url><loc>{}</loc></url>\n", self.url(p)));
        }
        xml.push_str("</urlset>\n");
        self.put(path, "application/xml", xml);
    }

    /// Full responses sent for `path`.
    pub fn fetched(&self, path: &str) -> usize {
        let site = self.site.lock().expect("site");
        site.fetched.get(path).copied().unwrap_or(0)
    }

    /// 304s sent for `path`.
    pub fn not_modified(&self, path: &str) -> usize {
        let site = self.site.lock().expect("site");
        site.not_modified.get(path).copied().unwrap_or(0)
    }
}

async fn serve(mut socket: tokio::net::TcpStream, site: Arc<Mutex<Site>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let path = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let if_none_match = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("if-none-match")
            .then(|| value.trim().to_owned())
    });
    let delay = {
        let site = site.lock().expect("site");
        let html = site
            .docs
            .get(&path)
            .is_some_and(|d| d.content_type.starts_with("text/html"));
        if html { site.delay_ms } else { 0 }
    };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let response: Vec<u8> = {
        let mut site = site.lock().expect("site");
        match site.docs.get(&path).cloned() {
            None => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
            Some(Doc {
                location: Some(to), ..
            }) => format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_bytes(),
            Some(doc) => {
                let tag = etag(&doc.body);
                if if_none_match.as_deref() == Some(tag.as_str()) {
                    *site.not_modified.entry(path).or_default() += 1;
                    format!("HTTP/1.1 304 Not Modified\r\netag: {tag}\r\nconnection: close\r\n\r\n")
                        .into_bytes()
                } else {
                    *site.fetched.entry(path).or_default() += 1;
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\netag: {tag}\r\nconnection: close\r\n\r\n",
                        doc.content_type,
                        doc.body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&doc.body);
                    out
                }
            }
        }
    };
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

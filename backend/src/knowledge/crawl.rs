//! A polite, safe crawler: robots.txt (texting_robots), sitemaps and
//! sitemap indexes (quick-xml), conditional re-fetch (ETag and
//! Last-Modified), a pause between requests to one host, and limits on
//! size, redirects and time.
//!
//! Safety: every address the client connects to goes through a resolver
//! that refuses loopback, private, link-local (169.254.169.254, the cloud
//! metadata address, among them), shared, multicast and unspecified
//! addresses, so neither a URL, a redirect nor a DNS answer can make the
//! server fetch from its own network, unless `allow_private_addresses` is
//! set. URLs naming an IP address are checked before the request, as the
//! resolver never sees them. A body is read as a stream and cut off at
//! `max_page_bytes` after decompression, so a gzip bomb costs at most that.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Url;
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::KnowledgeSettings;

/// Why a URL could not be fetched; shown on its page or source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not an http(s) URL: {0}")]
    BadUrl(String),
    #[error(
        "{0} is a private or local address; set [knowledge] allow_private_addresses to crawl it"
    )]
    Private(String),
    #[error("robots.txt does not allow {0}")]
    Disallowed(String),
    #[error("{0} is on another host than the source")]
    OtherHost(String),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("timed out")]
    Timeout,
    #[error("too many redirects, or a redirect loop")]
    Redirects,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("the sitemap could not be read: {0}")]
    Sitemap(String),
    #[error("the crawl's download limit of {0} bytes is reached")]
    TotalTooLarge(u64),
}

/// Whether `ip` is one the crawler must not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // 100.64.0.0/10, shared (carrier-grade NAT) space.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                // 0.0.0.0/8 and 240.0.0.0/4.
                || o[0] == 0
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                // 64:ff9b::/96 can reach IPv4 through NAT64.
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

/// A DNS resolver that drops private answers (and fails when none is left).
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    Box::new(FetchError::Private(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A validator pair from an earlier fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a fetch brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the page is as it was.
    NotModified,
    Page(Page),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Where the body came from, after redirects.
    pub url: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub validators: Validators,
}

/// robots.txt of one host, as far as this crawler is concerned.
#[derive(Debug)]
pub struct Robots {
    robot: Option<texting_robots::Robot>,
}

impl Robots {
    pub fn allowed(&self, url: &str) -> bool {
        self.robot.as_ref().is_none_or(|r| r.allowed(url))
    }

    pub fn sitemaps(&self) -> Vec<String> {
        self.robot
            .as_ref()
            .map(|r| r.sitemaps.clone())
            .unwrap_or_default()
    }

    /// The host's `Crawl-delay`, capped at 30 s.
    pub fn delay(&self) -> Option<Duration> {
        self.robot
            .as_ref()
            .and_then(|r| r.delay)
            .filter(|d| d.is_finite() && *d > 0.0)
            .map(|d| Duration::from_secs_f32(d.min(30.0)))
    }
}

/// One crawl: the client, its limits, and the pacing of its requests.
#[derive(Debug, Clone)]
pub struct Crawler {
    client: reqwest::Client,
    settings: KnowledgeSettings,
    /// When the next request may start (the per-host pause; a crawl stays
    /// on one host unless told otherwise).
    next_slot: Arc<Mutex<Instant>>,
    delay: Duration,
    /// Bytes downloaded by this crawl.
    downloaded: Arc<std::sync::atomic::AtomicU64>,
}

impl Crawler {
    pub fn new(settings: &KnowledgeSettings) -> Result<Self, FetchError> {
        let max_redirects = settings.max_redirects as usize;
        let allow_private = settings.allow_private_addresses;
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            match redirect_allowed(
                attempt.url(),
                attempt.previous(),
                max_redirects,
                allow_private,
            ) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(settings.user_agent.clone())
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .timeout(Duration::from_millis(settings.request_timeout_ms))
            .connect_timeout(Duration::from_millis(
                settings.request_timeout_ms.min(10_000),
            ))
            .build()
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        Ok(Self {
            client,
            settings: settings.clone(),
            next_slot: Arc::new(Mutex::new(Instant::now())),
            delay: Duration::from_millis(settings.crawl_delay_ms),
            downloaded: Arc::default(),
        })
    }

    /// Honours a slower `Crawl-delay` from robots.txt.
    pub fn respect(&mut self, robots: &Robots) {
        if let Some(d) = robots.delay() {
            self.delay = self.delay.max(d);
        }
    }

    /// Waits for this request's turn: one request per `delay`.
    async fn pace(&self) {
        let start = {
            let mut next = self.next_slot.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + self.delay;
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// robots.txt of `url`'s host; a missing or unreadable one allows all.
    pub async fn robots(&self, url: &Url) -> Robots {
        let Ok(robots_url) = url.join("/robots.txt") else {
            return Robots { robot: None };
        };
        let robot = match self.fetch(&robots_url, None).await {
            Ok(Fetched::Page(page)) => {
                texting_robots::Robot::new(&self.settings.user_agent, &page.body).ok()
            }
            _ => None,
        };
        Robots { robot }
    }

    /// Fetches `url` (conditionally when `validators` are given).
    pub async fn fetch(
        &self,
        url: &Url,
        validators: Option<&Validators>,
    ) -> Result<Fetched, FetchError> {
        check_url(url, self.settings.allow_private_addresses)?;
        let total = self.downloaded.load(std::sync::atomic::Ordering::Relaxed);
        if total >= self.settings.max_total_bytes {
            return Err(FetchError::TotalTooLarge(self.settings.max_total_bytes));
        }
        self.pace().await;
        let mut headers = HeaderMap::new();
        if let Some(v) = validators {
            if let Some(etag) = v.etag.as_deref().and_then(|e| e.parse().ok()) {
                headers.insert(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = v.last_modified.as_deref().and_then(|e| e.parse().ok()) {
                headers.insert(IF_MODIFIED_SINCE, lm);
            }
        }
        let response = self
            .client
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max = self.settings.max_page_bytes;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(FetchError::TooLarge(max));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let final_url = response.url().to_string();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(request_error)?;
            if body.len() as u64 + piece.len() as u64 > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&piece);
        }
        self.downloaded
            .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(Fetched::Page(Page {
            url: final_url,
            content_type,
            body,
            validators,
        }))
    }

    /// The pages of a site source: from a sitemap URL, or from a site root
    /// whose robots.txt `Sitemap:` lines and `/sitemap.xml` are read.
    /// Sitemap indexes are followed; a sitemap listed twice (a loop) is read
    /// once; pages on other hosts, pages robots.txt disallows, and pages
    /// past `max_pages` are left out. Without any sitemap, the root alone.
    pub async fn discover(&self, start: &Url, robots: &Robots) -> Result<Vec<Url>, FetchError> {
        let mut queue: Vec<Url> = Vec::new();
        let looks_like_sitemap = start.path().ends_with(".xml") || start.path().contains("sitemap");
        if looks_like_sitemap {
            queue.push(start.clone());
        } else {
            for s in robots.sitemaps() {
                if let Ok(u) = Url::parse(&s) {
                    queue.push(u);
                }
            }
            if let Ok(u) = start.join("/sitemap.xml") {
                queue.push(u);
            }
        }
        let mut seen_maps = HashSet::new();
        let mut pages: Vec<Url> = Vec::new();
        let mut seen_pages = HashSet::new();
        let mut read_any = false;
        let mut last_error = None;
        // At most this many sitemap files per crawl: an index that lists
        // thousands of sitemaps is cut off.
        let mut budget = 50;
        while let Some(map) = queue.pop() {
            if !seen_maps.insert(map.to_string()) || budget == 0 {
                continue;
            }
            budget -= 1;
            if !self.same_host(start, &map) {
                continue;
            }
            let body = match self.fetch(&map, None).await {
                Ok(Fetched::Page(p)) => p.body,
                Ok(Fetched::NotModified) => continue,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let (is_index, locs) = parse_sitemap(&body).map_err(FetchError::Sitemap)?;
            read_any = true;
            for loc in locs {
                let Ok(u) = Url::parse(loc.trim()) else {
                    continue;
                };
                if is_index {
                    queue.push(u);
                } else if pages.len() < self.settings.max_pages as usize
                    && self.same_host(start, &u)
                    && robots.allowed(u.as_str())
                    && seen_pages.insert(u.to_string())
                {
                    pages.push(u);
                }
            }
        }
        if !read_any {
            if looks_like_sitemap {
                return Err(last_error.unwrap_or(FetchError::Sitemap("empty".into())));
            }
            pages.push(start.clone());
        }
        Ok(pages)
    }

    /// Whether `url` may be crawled from a source that starts at `start`.
    pub fn same_host(&self, start: &Url, url: &Url) -> bool {
        self.settings.allow_other_hosts || start.host_str() == url.host_str()
    }
}

/// Whether a redirect to `next` may be followed after `previous` URLs: not
/// past `max` redirects, not back to a URL already visited (a loop), and
/// never to a URL that names a private address.
pub fn redirect_allowed(
    next: &Url,
    previous: &[Url],
    max: usize,
    allow_private: bool,
) -> Result<(), FetchError> {
    // `previous` holds the first URL too: n URLs mean n - 1 redirects.
    if previous.len() > max || previous.contains(next) {
        return Err(FetchError::Redirects);
    }
    check_url(next, allow_private)
}

/// An http(s) URL that names no private address.
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::BadUrl(url.to_string()));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(FetchError::Private(d));
            }
            None
        }
        None => return Err(FetchError::BadUrl(url.to_string())),
    };
    match ip {
        Some(ip) if !allow_private && is_private(ip) => Err(FetchError::Private(ip.to_string())),
        _ => Ok(()),
    }
}

fn request_error(e: reqwest::Error) -> FetchError {
    // The guard's own errors come back wrapped: find them.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<FetchError>() {
            return f.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_redirect() {
        FetchError::Redirects
    } else {
        FetchError::Connect(e.to_string())
    }
}

/// The `<loc>`s of a sitemap, and whether it is an index of sitemaps.
pub fn parse_sitemap(xml: &[u8]) -> Result<(bool, Vec<String>), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut root: Option<String> = None;
    // The text of the `<loc>` being read: quick-xml hands entity
    // references (`&amp;`) over apart from the text around them.
    let mut loc: Option<String> = None;
    let mut locs = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                loc = (name == "loc").then(String::new);
            }
            Ok(Event::Text(t)) => {
                if let Some(loc) = loc.as_mut() {
                    loc.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(loc) = loc.as_mut() {
                    let c = super::xml_char(&r)?.ok_or_else(|| {
                        format!("unknown entity &{};", String::from_utf8_lossy(&r))
                    })?;
                    loc.push(c);
                }
            }
            Ok(Event::End(_)) => {
                if let Some(text) = loc.take() {
                    locs.push(text.trim().to_owned());
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(e.to_string()),
            _ => {}
        }
        buf.clear();
    }
    match root.as_deref() {
        Some("sitemapindex") => Ok((true, locs)),
        Some("urlset") => Ok((false, locs)),
        _ => Err("not a sitemap (no <urlset> or <sitemapindex>)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_naming_private_hosts_are_refused_unless_allowed() {
        let check = |u: &str, allow| check_url(&Url::parse(u).unwrap(), allow);
        assert!(matches!(
            check("http://169.254.169.254/latest/meta-data", false),
            Err(FetchError::Private(_))
        ));
        assert!(matches!(
            check("http://[::1]:8080/", false),
            Err(FetchError::Private(_))
        ));
        assert!(matches!(
            check("http://localhost/", false),
            Err(FetchError::Private(_))
        ));
        assert!(matches!(
            check("http://0x7f.1/", false),
            Err(FetchError::Private(_))
        ));
        assert!(matches!(
            check("file:///etc/passwd", true),
            Err(FetchError::BadUrl(_))
        ));
        assert!(matches!(
            check("javascript:alert(1)", true),
            Err(FetchError::BadUrl(_))
        ));
        assert_eq!(check("http://127.0.0.1:9/", true), Ok(()));
        assert_eq!(check("https://docs.example.com/", false), Ok(()));
    }

    #[test]
    fn redirects_to_private_addresses_loops_and_long_chains_are_not_followed() {
        let u = |s: &str| Url::parse(s).unwrap();
        let start = vec![u("https://docs.example.com/a")];
        assert_eq!(
            redirect_allowed(&u("https://docs.example.com/b"), &start, 5, false),
            Ok(())
        );
        assert!(matches!(
            redirect_allowed(
                &u("http://169.254.169.254/latest/meta-data/"),
                &start,
                5,
                false
            ),
            Err(FetchError::Private(_))
        ));
        assert!(matches!(
            redirect_allowed(&u("http://127.0.0.1:8080/admin"), &start, 5, false),
            Err(FetchError::Private(_))
        ));
        assert_eq!(
            redirect_allowed(&u("https://docs.example.com/a"), &start, 5, false),
            Err(FetchError::Redirects)
        );
        let chain: Vec<Url> = (0..6)
            .map(|i| u(&format!("https://docs.example.com/{i}")))
            .collect();
        assert_eq!(
            redirect_allowed(&u("https://docs.example.com/next"), &chain, 5, false),
            Err(FetchError::Redirects)
        );
    }

    #[tokio::test]
    async fn a_dns_answer_that_leads_home_is_refused() {
        use reqwest::dns::Resolve;
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = guarded.resolve(name).await.err().map(|e| e.to_string());
        assert!(
            err.is_some_and(|e| e.contains("private")),
            "localhost resolved"
        );
        let open = GuardedResolver {
            allow_private: true,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }

    #[test]
    fn sitemaps_and_indexes_are_read() {
        let urlset = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://a.test/one</loc><lastmod>2026-01-01</lastmod></url>
  <url><loc> https://a.test/two?x=1&amp;y=2 </loc></url>
</urlset>"#;
        assert_eq!(
            parse_sitemap(urlset).unwrap(),
            (
                false,
                vec![
                    "https://a.test/one".into(),
                    "https://a.test/two?x=1&y=2".into()
                ]
            )
        );
        let index = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><sitemap><loc>https://a.test/s1.xml</loc></sitemap></sitemapindex>"#;
        assert_eq!(
            parse_sitemap(index).unwrap(),
            (true, vec!["https://a.test/s1.xml".into()])
        );
        assert!(parse_sitemap(b"<html><body>no</body></html>").is_err());
    }
}

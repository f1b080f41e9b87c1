//! The HTTP side of an attempt: POST, time it, keep the start of the answer.
use crate::transform::Request;
use hookhub_store::domain::signer::SignatureHeaders;
use std::time::{Duration, Instant};

/// Bytes of the response body kept in the attempts log.
pub const RESPONSE_BODY_LIMIT: usize = 4096;

/// What one POST observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    /// The status code, if a response came.
    pub status_code: Option<u16>,
    /// Time to the response headers, or to the error.
    pub latency: Duration,
    /// Why no response came, or why the response counts as a failure.
    pub error: Option<String>,
    /// The first 4 KiB of the response body, lossily decoded.
    pub response_body: Option<String>,
    /// How long the endpoint asked us to wait (`Retry-After` on 429 or 503).
    pub retry_after: Option<Duration>,
}

/// What the outcome means for the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver asks us to stop.
    Gone,
    /// Anything else (timeout, connection error, 3xx, 4xx, 5xx): retry.
    Retry,
}

impl SendOutcome {
    /// An attempt that got no response at all.
    fn no_response(started: Instant, error: String) -> Self {
        Self {
            status_code: None,
            latency: started.elapsed(),
            error: Some(error),
            response_body: None,
            retry_after: None,
        }
    }

    /// 2xx succeeds, 410 disables, everything else is retried.
    pub fn verdict(&self) -> Verdict {
        match self.status_code {
            Some(code) if (200..300).contains(&code) => Verdict::Delivered,
            Some(410) => Verdict::Gone,
            _ => Verdict::Retry,
        }
    }
}

/// POSTs signed webhooks over a shared, pooled HTTP client.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    guard: bool,
}

impl Sender {
    /// The `user-agent` every delivery carries.
    pub const USER_AGENT: &'static str = concat!("Hookhub/", env!("CARGO_PKG_VERSION"));

    /// A sender whose attempts time out after `timeout`; with `guard`,
    /// only public addresses are reached (see `hookhub_store::domain::target_guard`).
    pub fn new(timeout: Duration, guard: bool) -> Self {
        let mut builder = reqwest::Client::builder();
        if guard {
            // A proxy from HTTP(S)_PROXY would resolve the name itself and
            // connect wherever it points, past the guard's resolver.
            builder = builder.dns_resolver(std::sync::Arc::new(crate::guarded_resolver::GuardedResolver)).no_proxy();
        }
        let client = builder
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(Self::USER_AGENT)
            // A redirect would send the signed payload somewhere the owner
            // never registered.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .expect("the HTTP client configuration is static and valid");
        Self { client, guard }
    }

    /// POSTs `body` to `url` with the signature headers.
    pub async fn send(&self, url: &str, signature: &SignatureHeaders, body: Vec<u8>) -> SendOutcome {
        self.send_request(url, signature, Request::plain(body)).await
    }

    /// Sends a (possibly transformed) request to `url` with the signature
    /// headers, which the request's own headers cannot replace.
    pub async fn send_request(&self, url: &str, signature: &SignatureHeaders, request: Request) -> SendOutcome {
        let started = Instant::now();
        if self.guard {
            if let Err(refused) = hookhub_store::domain::target_guard::check_literal(url) {
                return SendOutcome::no_response(started, refused);
            }
        }
        let Request { method, headers, body } = request;
        let mut extra = reqwest::header::HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            extra.append(name, value);
        }
        let request = self
            .client
            .request(method.to_http(), url)
            .headers(extra)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SignatureHeaders::ID, &signature.id)
            .header(SignatureHeaders::TIMESTAMP, signature.timestamp.to_string())
            .header(SignatureHeaders::SIGNATURE, &signature.signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return SendOutcome::no_response(started, describe(&e)),
        };
        let latency = started.elapsed();
        let status = response.status();
        let retry_after = matches!(status.as_u16(), 429 | 503)
            .then(|| response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok().and_then(parse_retry_after))
            .flatten();
        let mut body = Vec::new();
        let mut body_error = None;
        while body.len() < RESPONSE_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    body_error = Some(describe(&e));
                    break;
                }
            }
        }
        body.truncate(RESPONSE_BODY_LIMIT);
        let error = if status.is_success() {
            None
        } else {
            Some(body_error.unwrap_or_else(|| format!("endpoint answered {status}")))
        };
        SendOutcome {
            status_code: Some(status.as_u16()),
            latency,
            error,
            response_body: Some(String::from_utf8_lossy(&body).into_owned()),
            retry_after,
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date; capped at a day, since a
/// receiver's typo must not park deliveries for years.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let secs = match value.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            u64::try_from((at.to_utc() - chrono::Utc::now()).num_seconds()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs.min(86_400)))
}

/// A short reason without the URL (it may carry tokens in its query).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = if e.is_connect() { "connection failed".to_owned() } else { "request failed".to_owned() };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: Option<u16>) -> SendOutcome {
        SendOutcome { status_code: code, latency: Duration::ZERO, error: None, response_body: None, retry_after: None }
    }

    #[test]
    fn verdicts_follow_the_status_code() {
        assert_eq!(outcome(Some(200)).verdict(), Verdict::Delivered);
        assert_eq!(outcome(Some(204)).verdict(), Verdict::Delivered);
        assert_eq!(outcome(Some(410)).verdict(), Verdict::Gone);
        for code in [301, 400, 404, 429, 500, 503] {
            assert_eq!(outcome(Some(code)).verdict(), Verdict::Retry, "{code}");
        }
        assert_eq!(outcome(None).verdict(), Verdict::Retry);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999"), Some(Duration::from_secs(86_400)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(parsed > Duration::from_secs(55) && parsed <= Duration::from_secs(60));
        assert_eq!(parse_retry_after("soon"), None);
    }
}

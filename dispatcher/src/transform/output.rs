//! What a transform may send: the method, extra headers and body of the
//! request, checked so that a transform cannot forge the signature headers
//! or break the request's framing.
use super::TransformError;
use reqwest::header::{HeaderName, HeaderValue};

/// The methods a transform may choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// The default.
    #[default]
    Post,
    /// For receivers that upsert.
    Put,
    /// For receivers that patch.
    Patch,
}

impl Method {
    /// Parses a method name, in any case.
    pub fn parse(name: &str) -> Result<Self, TransformError> {
        match name.to_ascii_uppercase().as_str() {
            "POST" => Ok(Self::Post),
            "PUT" => Ok(Self::Put),
            "PATCH" => Ok(Self::Patch),
            _ => Err(TransformError::InvalidOutput("webhook.method must be POST, PUT or PATCH")),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }

    /// As the HTTP client takes it.
    pub fn to_http(self) -> reqwest::Method {
        match self {
            Self::Post => reqwest::Method::POST,
            Self::Put => reqwest::Method::PUT,
            Self::Patch => reqwest::Method::PATCH,
        }
    }
}

/// The request a delivery sends: exactly these body bytes are signed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// Headers added to the signature headers, content type and user agent.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The untransformed request: POST of the webhook body.
    pub fn plain(body: Vec<u8>) -> Self {
        Self { body, ..Self::default() }
    }
}

/// Whether a transform may set this header: not the Standard Webhooks
/// headers (the signature covers what the hub sent, and a transform that
/// could set them could forge it), not the content type (the body is always
/// JSON), and not the headers that frame or route the request.
fn settable(name: &HeaderName) -> bool {
    const RESERVED: [&str; 12] = [
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "user-agent",
    ];
    let name = name.as_str();
    !(name.starts_with("webhook-") || name.starts_with("proxy-") || RESERVED.contains(&name))
}

/// Checks the headers a transform set. The messages name no header, since a
/// program can build names from the payload.
pub fn headers(set: Vec<(String, String)>, max: usize) -> Result<Vec<(HeaderName, HeaderValue)>, TransformError> {
    if set.len() > max {
        return Err(TransformError::InvalidOutput("webhook.headers has too many headers"));
    }
    set.into_iter()
        .map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| TransformError::InvalidOutput("webhook.headers has an invalid header name"))?;
            if !settable(&name) {
                return Err(TransformError::InvalidOutput(
                    "webhook.headers may not set webhook-*, content-*, user-agent or hop-by-hop headers",
                ));
            }
            let value = HeaderValue::from_str(&value)
                .map_err(|_| TransformError::InvalidOutput("webhook.headers has an invalid header value"))?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str) -> Result<Vec<(HeaderName, HeaderValue)>, TransformError> {
        headers(vec![(name.to_owned(), "v".to_owned())], 4)
    }

    #[test]
    fn signature_and_framing_headers_cannot_be_set() {
        for name in
            ["webhook-signature", "Webhook-Id", "content-type", "Host", "transfer-encoding", "proxy-authorization"]
        {
            assert!(matches!(h(name), Err(TransformError::InvalidOutput(_))), "{name}");
        }
        assert!(h("x-crm-token").is_ok());
        assert!(h("bad name").is_err());
        assert!(headers(vec![("x-a".into(), "line\nbreak".into())], 4).is_err());
        assert!(headers((0..5).map(|i| (format!("x-{i}"), "v".into())).collect(), 4).is_err());
    }

    #[test]
    fn methods_are_post_put_or_patch() {
        assert_eq!(Method::parse("put").unwrap(), Method::Put);
        assert_eq!(Method::parse("PATCH").unwrap().to_http(), reqwest::Method::PATCH);
        assert!(Method::parse("DELETE").is_err());
        assert!(Method::parse("GET").is_err());
    }
}

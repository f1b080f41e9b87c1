//! A subscription's endpoint URL, checked before it is stored.
use std::fmt;

/// Why a subscription URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointUrlError {
    /// Not an absolute URL.
    #[error("url is not a valid absolute URL")]
    Invalid,
    /// Not https (or http where plain HTTP is allowed).
    #[error("url must use https")]
    Scheme,
    /// Carries `user:password@`, which would end up in logs and attempts.
    #[error("url must not contain credentials; authenticate with the signature instead")]
    Credentials,
    /// Longer than 2048 characters.
    #[error("url is longer than 2048 characters")]
    TooLong,
}

/// A subscriber endpoint: an absolute http(s) URL with a host and no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    /// Parses and checks a URL; `allow_http` admits plain `http://` (development only).
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, EndpointUrlError> {
        if raw.len() > 2048 {
            return Err(EndpointUrlError::TooLong);
        }
        let url = url::Url::parse(raw).map_err(|_| EndpointUrlError::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            _ => return Err(EndpointUrlError::Scheme),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointUrlError::Invalid);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointUrlError::Credentials);
        }
        Ok(Self(url))
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_scheme_host_and_credentials() {
        assert!(EndpointUrl::parse("https://crm.example.com/hooks", false).is_ok());
        assert_eq!(EndpointUrl::parse("http://x.example/h", false), Err(EndpointUrlError::Scheme));
        assert!(EndpointUrl::parse("http://127.0.0.1:9/h", true).is_ok());
        assert_eq!(EndpointUrl::parse("ftp://x.example", true), Err(EndpointUrlError::Scheme));
        assert_eq!(EndpointUrl::parse("not a url", true), Err(EndpointUrlError::Invalid));
        assert_eq!(EndpointUrl::parse("https://u:p@x.example/", false), Err(EndpointUrlError::Credentials));
    }
}

//! The portal's settings: who may frame it, and the public URL its links use.
/// A setting the portal cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortalConfigError {
    /// A frame ancestor that is not an origin (`https://host[:port]`).
    #[error("frame ancestor {0:?} is not an origin like https://app.example.com")]
    BadAncestor(String),
    /// The public URL is not an absolute http(s) URL.
    #[error("portal URL {0:?} is not an absolute https URL")]
    BadUrl(String),
}

/// The portal's settings, checked at startup.
#[derive(Clone, Debug, Default)]
pub struct PortalConfig {
    /// Origins allowed to frame the portal; empty: none.
    frame_ancestors: Vec<String>,
    /// The public base URL of portal links, without a trailing slash.
    public_url: Option<String>,
    /// Whether `http://` origins and logos are allowed (development).
    allow_http: bool,
}

/// Parses `raw` as a bare origin (scheme, host, port; nothing else), as
/// CSP source expressions and browsers compare them.
fn origin_of(raw: &str, allow_http: bool) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    let scheme_ok = url.scheme() == "https" || (allow_http && url.scheme() == "http");
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
    (scheme_ok && bare && url.host().is_some()).then(|| url.origin().ascii_serialization())
}

impl PortalConfig {
    /// Checks the settings: `ancestors` space- or comma-separated origins.
    pub fn new(ancestors: &str, public_url: Option<&str>, allow_http: bool) -> Result<Self, PortalConfigError> {
        let frame_ancestors = ancestors
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(|a| origin_of(a, allow_http).ok_or_else(|| PortalConfigError::BadAncestor(a.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = public_url
            .map(|u| {
                let parsed = url::Url::parse(u).ok().filter(|p| matches!(p.scheme(), "https" | "http"));
                parsed
                    .map(|_| u.trim_end_matches('/').to_owned())
                    .ok_or_else(|| PortalConfigError::BadUrl(u.to_owned()))
            })
            .transpose()?;
        Ok(Self { frame_ancestors, public_url, allow_http })
    }

    /// The CSP `frame-ancestors` sources: the allowed origins, or `'none'`.
    pub(crate) fn frame_ancestors(&self) -> String {
        if self.frame_ancestors.is_empty() {
            "'none'".into()
        } else {
            self.frame_ancestors.join(" ")
        }
    }

    /// Whether some origin may frame the portal.
    pub(crate) fn embeddable(&self) -> bool {
        !self.frame_ancestors.is_empty()
    }

    /// The configured public base URL, if any.
    pub(crate) fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The origin of a logo URL the portal may show, or `None` if it may not.
    pub(crate) fn logo_origin(&self, logo: &str) -> Option<String> {
        let url = url::Url::parse(logo).ok()?;
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        (scheme_ok && url.host().is_some() && url.username().is_empty()).then(|| url.origin().ascii_serialization())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_bare_origins() {
        let c = PortalConfig::new("https://app.example.com, https://b.example:8443", None, false).unwrap();
        assert_eq!(c.frame_ancestors(), "https://app.example.com https://b.example:8443");
        assert!(PortalConfig::new("http://app.example.com", None, false).is_err());
        assert!(PortalConfig::new("https://app.example.com/path", None, false).is_err());
        assert!(PortalConfig::new("*", None, false).is_err());
        assert_eq!(PortalConfig::default().frame_ancestors(), "'none'");
        assert!(c.logo_origin("javascript:alert(1)").is_none());
        assert_eq!(c.logo_origin("https://cdn.example/l.png").as_deref(), Some("https://cdn.example"));
    }
}

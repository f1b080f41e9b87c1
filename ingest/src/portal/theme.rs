//! The platform's brand in the portal: a colour, a logo and dark mode,
//! checked where a session is created so that a page can use them safely.
//!
//! The colour reaches the page only through `/portal/theme.css` as a CSS
//! custom property, and only in `#rrggbb` form, so it cannot carry CSS of
//! its own; the logo is an `<img>` whose origin the page's CSP names.
use crate::error::FieldError;
use crate::portal::config::PortalConfig;
use serde::{Deserialize, Serialize};

/// A brand, as given to `POST /v1/portal-sessions` and kept with the session.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    /// The brand colour, `#rrggbb`.
    #[schema(example = "#0f766e", pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_color: Option<String>,
    /// An https URL of the platform's logo, shown in the portal's header.
    #[schema(example = "https://app.example.com/logo.svg")]
    pub logo_url: Option<String>,
    /// Dark colours.
    #[serde(default)]
    pub dark: bool,
}

const MAX_LOGO_URL: usize = 2048;

/// Whether `c` is a `#rrggbb` colour.
fn is_hex_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Theme {
    /// Checks every field, naming each problem under `theme.`.
    pub(crate) fn check(self, config: &PortalConfig) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.primary_color.as_deref().is_some_and(|c| !is_hex_colour(c)) {
            errors.push(FieldError::new("theme.primary_color", "must be a colour like #0f766e"));
        }
        let logo = self.logo_url.as_deref().map(|u| (u, config.logo_origin(u)));
        if let Some((url, origin)) = logo {
            if origin.is_none() || url.len() > MAX_LOGO_URL {
                errors.push(FieldError::new("theme.logo_url", "must be an https URL of at most 2,048 characters"));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// Reads a stored theme; anything unexpected is dropped, not shown.
    pub(crate) fn stored(value: Option<&serde_json::Value>, config: &PortalConfig) -> Self {
        value
            .and_then(|v| serde_json::from_value::<Self>(v.clone()).ok())
            .and_then(|t| t.check(config).ok())
            .unwrap_or_default()
    }

    /// The stylesheet of this brand: only custom properties, from checked values.
    pub(crate) fn stylesheet(&self) -> String {
        match self.primary_color.as_deref().filter(|c| is_hex_colour(c)) {
            Some(colour) => format!(":root{{--primary:{colour};}}\n"),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_colours_and_https_logos_pass() {
        let config = PortalConfig::default();
        let bad = Theme {
            primary_color: Some("red;}body{display:none".into()),
            logo_url: Some("http://x.example/l.png".into()),
            dark: false,
        };
        assert_eq!(bad.check(&config).unwrap_err().len(), 2);
        let good = Theme {
            primary_color: Some("#0F766e".into()),
            logo_url: Some("https://x.example/l.png".into()),
            dark: true,
        };
        assert_eq!(good.clone().check(&config).unwrap().stylesheet(), ":root{--primary:#0F766e;}\n");
    }
}

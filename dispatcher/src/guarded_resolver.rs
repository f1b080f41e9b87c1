//! The delivery client's DNS resolver: the SSRF guard applied to every
//! answer at delivery time, so a name that resolved to a public address
//! when its subscription was saved cannot be rebound to an internal one.
use hookhub_store::domain::target_guard::refusal;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

/// A resolver that drops every address the guard refuses.
#[derive(Debug, Default, Clone, Copy)]
pub struct GuardedResolver;

#[derive(Debug, thiserror::Error)]
#[error("refused: {0} resolves only to non-public addresses")]
struct Refused(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| refusal(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_resolver_drops_private_answers() {
        let resolved = GuardedResolver.resolve("localhost".parse().unwrap()).await;
        assert!(resolved.is_err());
    }
}

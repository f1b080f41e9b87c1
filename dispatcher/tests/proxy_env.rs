//! The guarded delivery client ignores `HTTP_PROXY`/`HTTPS_PROXY`: a proxy
//! resolves names itself, past the SSRF guard, and would connect to any
//! internal address a subscriber's DNS names.
//!
//! Alone in its test binary: it sets process-wide environment variables.
use hookhub_dispatcher::sender::Sender;
use hookhub_store::domain::signer::SignatureHeaders;
use std::time::Duration;

#[tokio::test]
async fn a_guarded_sender_never_goes_through_an_environment_proxy() {
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::set_var(var, &proxy_url);
    }
    for var in ["NO_PROXY", "no_proxy"] {
        std::env::remove_var(var);
    }
    let sender = Sender::new(Duration::from_millis(500), true);
    let signature = SignatureHeaders { id: "evt_1".into(), timestamp: 0, signature: "v1,x".into() };
    let outcome = sender.send("http://internal.example.invalid/hook", &signature, b"{}".to_vec()).await;
    let reached = tokio::time::timeout(Duration::from_millis(200), proxy.accept()).await.is_ok();
    assert!(!reached, "the delivery went through the proxy: {outcome:?}");
    assert_eq!(outcome.status_code, None, "the name does not resolve, so nothing is sent");
}

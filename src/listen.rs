//! `hookhub listen`: forward a tenant's events to a receiver on your machine
//! while you develop it, as `stripe listen` does.
//!
//! The hub cannot reach a laptop, so the CLI opens a temporary subscription
//! and pulls its deliveries over server-sent events, then POSTs each one,
//! with its real signature headers, to the local URL.
use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::Value;
use std::time::Instant;

/// What to listen to and where to send it.
pub struct ListenArgs {
    /// The hub's base URL.
    pub hub: String,
    /// The tenant's API key.
    pub api_key: String,
    /// The local receiver.
    pub forward_to: String,
    /// Event types; empty means all.
    pub events: Vec<String>,
}

/// Runs until Ctrl-C (or until the hub closes the stream), then removes the session.
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let hub = args.hub.trim_end_matches('/');
    let types = if args.events.is_empty() { vec!["*".to_owned()] } else { args.events.clone() };
    let resp = client
        .post(format!("{hub}/v1/listen"))
        .bearer_auth(&args.api_key)
        .json(&serde_json::json!({ "event_types": types }))
        .send()
        .await
        .with_context(|| format!("reaching the hub at {hub}"))?;
    if !resp.status().is_success() {
        bail!("the hub refused the session: {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    let session: Value = resp.json().await?;
    let id = session["id"].as_str().context("session id")?.to_owned();
    println!(
        "Ready! Forwarding {} to {}. Your webhook signing secret is {} (^C to quit)",
        types.join(", "),
        args.forward_to,
        session["secret"].as_str().unwrap_or_default()
    );

    let forwarding = forward(&client, hub, &args, &id);
    let outcome = tokio::select! {
        r = forwarding => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    // The hub also ends the session when the stream drops; this makes it immediate.
    let _ = client.delete(format!("{hub}/v1/subscriptions/{id}")).bearer_auth(&args.api_key).send().await;
    println!("Session {id} closed.");
    outcome
}

async fn forward(client: &reqwest::Client, hub: &str, args: &ListenArgs, id: &str) -> anyhow::Result<()> {
    let resp = client
        .get(format!("{hub}/v1/listen/{id}/stream"))
        .bearer_auth(&args.api_key)
        .send()
        .await?
        .error_for_status()?;
    let mut stream = resp.bytes_stream();
    let mut frames = SseFrames::default();
    while let Some(chunk) = stream.next().await {
        frames.push(&chunk?);
        while let Some(data) = frames.next_data()? {
            deliver(client, &args.forward_to, &serde_json::from_str(&data)?).await;
        }
    }
    bail!("the hub closed the stream")
}

/// Splits a server-sent event stream into the `data` of its events.
///
/// Bytes are buffered and decoded only once a whole event (up to its blank
/// line) has arrived: the network may cut a multi-byte UTF-8 character in
/// two, and decoding each chunk on its own would turn its halves into
/// U+FFFD and break the body's signature.
#[derive(Default)]
struct SseFrames {
    buffer: Vec<u8>,
    /// How much of `buffer` is known to hold no blank line, so a large
    /// event arriving in small chunks is not rescanned from its start.
    scanned: usize,
}

impl SseFrames {
    /// Appends bytes as they came off the network.
    fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The `data` of the next complete event that has any (comments and
    /// keep-alives have none), or `None` until more bytes arrive.
    fn next_data(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(end) = self.buffer[from..].windows(2).position(|w| w == b"\n\n").map(|i| from + i) else {
                self.scanned = self.buffer.len();
                return Ok(None);
            };
            let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
            self.scanned = 0;
            let frame = std::str::from_utf8(&frame).context("the hub sent an event that is not UTF-8")?;
            let data: String = frame.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }
}

async fn deliver(client: &reqwest::Client, url: &str, message: &Value) {
    let mut request = client.post(url).body(message["body"].as_str().unwrap_or_default().to_owned());
    if let Some(headers) = message["headers"].as_object() {
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str().unwrap_or_default());
        }
    }
    let started = Instant::now();
    let kind = message["type"].as_str().unwrap_or("?");
    let event_id = message["id"].as_str().unwrap_or("?");
    match request.send().await {
        Ok(resp) => {
            println!("--> {kind} [{event_id}]  <-- [{}] {} ms", resp.status().as_u16(), started.elapsed().as_millis())
        }
        Err(e) => println!("--> {kind} [{event_id}]  <-- failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::SseFrames;

    #[test]
    fn multi_byte_text_survives_any_chunking() {
        // About 180 KB of two-, three- and four-byte characters, as in a
        // large `client.created` event.
        let text = "é漢😀 Laura García, 東京, ✓ ".repeat(6_000);
        let first = serde_json::json!({"body": text}).to_string();
        let second = serde_json::json!({"body": "ok"}).to_string();
        let wire = format!(
            ": connected\n\nevent: webhook\ndata: {first}\n\n: keepalive\n\nevent: webhook\ndata: {second}\n\n"
        );
        for size in [1, 2, 3, 5, 7, 64, 1000, 4096, 16_381, wire.len()] {
            let mut frames = SseFrames::default();
            let mut got = Vec::new();
            for chunk in wire.as_bytes().chunks(size) {
                frames.push(chunk);
                while let Some(data) = frames.next_data().unwrap() {
                    got.push(data);
                }
            }
            assert_eq!(got, [first.clone(), second.clone()], "chunks of {size} bytes");
            assert!(!got[0].contains('\u{FFFD}'));
        }
    }
}

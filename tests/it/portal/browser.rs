//! A real Chromium (Debian's `chromium` and `chromium-driver`), driven over
//! WebDriver with `fantoccini`: one chromedriver per browser, on a free
//! port, with a fresh profile. Nothing here downloads a browser.
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where the Debian packages put the browser and its driver.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium; its driver stops when this is dropped.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    profile: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    /// Starts a browser whose window is `width` pixels wide.
    pub async fn start(width: u32) -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium chromium-driver; see .ci/run)");
        let profile = std::env::temp_dir().join(format!("hookhub_chromium_{}", uuid::Uuid::new_v4().simple()));
        // Without the background-networking switches Chromium's own
        // connections are refused on a closed network, and it stalls.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--window-size={width},900"),
        ];
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if width < 500 {
            // Headless Chromium keeps windows at least 500 px wide; a phone's
            // width takes device emulation.
            options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": 800, "pixelRatio": 1}});
        }
        let caps = json!({"goog:chromeOptions": options});
        let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone()).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => return Self { client, driver, profile },
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The page's visible text (read again if the page changed under it).
    pub async fn text(&self) -> String {
        for _ in 0..50 {
            if let Ok(body) = self.client.find(Locator::Css("body")).await {
                if let Ok(text) = body.text().await {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page has no readable body");
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Clicks the (first) button or link whose text is `label` and waits
    /// for the page it leads to.
    pub async fn click(&self, label: &str) {
        self.eval("window.__before_click = true; return null").await;
        self.click_only(label).await;
        for _ in 0..200 {
            let loaded = self
                .client
                .execute("return !window.__before_click && document.readyState === 'complete'", vec![])
                .await;
            if loaded.is_ok_and(|v| v == true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {label:?} led to no new page");
    }

    /// Clicks the (first) button or link whose text is `label`, and no more
    /// (a confirmation may be asked first).
    pub async fn click_only(&self, label: &str) {
        let xpath = format!("//button[normalize-space()='{label}'] | //a[normalize-space()='{label}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no {label:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Whether a button or link with text `label` is on the page.
    pub async fn has(&self, label: &str) -> bool {
        let xpath = format!("//button[normalize-space()='{label}'] | //a[normalize-space()='{label}']");
        !self.client.find_all(Locator::XPath(&xpath)).await.unwrap().is_empty()
    }

    /// Types `text` into the field labelled by id `id`.
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

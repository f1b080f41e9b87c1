//! The hub under test, run as a child process exactly as an operator would
//! run it (`hookhub tenant create`, `hookhub serve`), configured by env vars.
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How the hub processes are launched: binary, environment and log file.
#[derive(Clone)]
pub struct HubLauncher {
    /// The `hookhub` binary.
    pub bin: PathBuf,
    /// `HOOKHUB_*` (and `RUST_LOG`) settings, applied after inherited ones are removed.
    pub env: Vec<(String, String)>,
    /// Where the hub's stdout and stderr go.
    pub log: PathBuf,
}

impl HubLauncher {
    fn command(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(&self.bin);
        // The hub rejects unknown HOOKHUB_* vars, and a stray setting from the
        // caller's shell would make the run differ from the documented one.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HOOKHUB_")) {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        Ok(cmd)
    }

    /// Creates a tenant with `hookhub tenant create` and returns its API key.
    pub async fn create_tenant(&self, name: &str) -> anyhow::Result<String> {
        let out = self
            .command()?
            .args(["tenant", "create", name])
            .stdout(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("`hookhub tenant create` failed ({}); see {}", out.status, self.log.display());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("api key:"))
            .map(|k| k.trim().to_owned())
            .with_context(|| format!("no `api key:` line in {stdout:?}"))
    }

    /// Starts `hookhub serve` on `listen` and waits until `/readyz` answers 200.
    pub async fn serve(&self, listen: &str) -> anyhow::Result<HubProcess> {
        let mut child = self.command()?.arg("serve").env("HOOKHUB_LISTEN", listen).kill_on_drop(true).spawn()?;
        let pid = child.id().context("hub exited at once")?;
        let base = format!("http://{listen}");
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("hub exited during startup ({status}); see {}", self.log.display());
            }
            let ready = client.get(format!("{base}/readyz")).send().await.map(|r| r.status().is_success());
            if matches!(ready, Ok(true)) {
                return Ok(HubProcess { child, pid, base });
            }
            if Instant::now() > deadline {
                bail!("hub not ready within 60 s; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Resource use of a process, read from /proc.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct ProcUsage {
    /// Peak resident set size (VmHWM), in KiB.
    pub peak_rss_kib: u64,
    /// User + system CPU time so far, in seconds.
    pub cpu_seconds: f64,
}

impl ProcUsage {
    /// Reads the usage of process `pid` (`self` for this process).
    pub fn read(pid: &str) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(Self { peak_rss_kib, cpu_seconds: cpu_seconds(pid)? })
    }
}

/// utime + stime of `pid`, converted with the kernel's clock tick rate.
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields are counted after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed stat")?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); the slice starts at field 3.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks_per_second()? as f64)
}

/// `getconf CLK_TCK`, asked rather than assumed.
fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// A running `hookhub serve`; killed if dropped without `stop`.
pub struct HubProcess {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl HubProcess {
    /// Peak RSS and CPU time so far.
    pub fn usage(&self) -> anyhow::Result<ProcUsage> {
        ProcUsage::read(&self.pid.to_string())
    }

    /// Asks the hub to shut down (SIGTERM), and kills it if it has not within 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("hub did not stop within 15 s of SIGTERM; killed");
            }
        }
        Ok(())
    }
}

/// A free loopback port: bound to port 0, then released for the hub to take.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The default hub binary: `hookhub` beside this executable (both are built into the same target dir).
pub fn default_bin() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("hookhub"))
}

/// Fails early with a clear message if `bin` is not there.
pub fn check_bin(bin: &Path) -> anyhow::Result<()> {
    if !bin.is_file() {
        bail!("hub binary {} not found: build it (cargo build --release --workspace) or pass --hub-bin", bin.display());
    }
    Ok(())
}

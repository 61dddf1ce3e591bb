//! Test harness: a moto server on a free port, unique resource names.
//!
//! ```no_run
//! # async fn demo() {
//! let moto = elevate_testkit::Moto::start().await;
//! let config = moto.sdk_config().await;
//! let iam = aws_sdk_iam::Client::new(&config);
//! let group = elevate_testkit::unique_name("admins");
//! # let _ = (iam, group);
//! # }
//! ```
//!
//! Every test gets its own server (or shares the one at `AWS_ENDPOINT_URL`) and its own resource
//! names, so tests run in parallel without seeing each other. Nothing here changes the process
//! environment. When moto cannot be started the test panics: a test that needs AWS must fail
//! loudly, never pass by skipping.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// How long a fresh moto server may take to answer (it needs ~0.3 s alone, more when many
/// tests start one at the same time on a small machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// A port picked as free can be taken by someone else before moto binds it: try again.
const START_ATTEMPTS: usize = 3;

/// Put on the child's `PYTHONPATH` as `sitecustomize.py`. moto's TransactWriteItems copies
/// the whole table before it starts and puts the copy back when the transaction fails, so two
/// requests handled at the same time undo each other (a lost race wipes the winner's write).
/// DynamoDB serializes writes to an item; this makes moto handle one request at a time (still
/// accepting connections on its threads), and marks its answers so the harness can check.
/// Serialized, moto must be quick: the file also replaces its slow paths (whole-table copies in
/// transactions, whole-table sorts and passes in queries and index scans, quadratic expression
/// and item size checks, the generic serializer walking every attribute value, listing its own
/// package per request) with ones that give the same answers to valid requests, and drops the
/// stream records of a cancelled transaction as DynamoDB does.
const SITECUSTOMIZE: &str = include_str!("sitecustomize.py");
const SERIALIZED_HEADER: &str = "x-elevate-testkit: one-request-at-a-time";

const SETUP_HINT: &str = "run `make setup` to install the moto server (PyPI `moto[server]`), \
                          or point AWS_ENDPOINT_URL at a running one";

/// A moto server for one test: started on a free port (killed on drop), or the one already
/// running at `AWS_ENDPOINT_URL`.
#[derive(Debug)]
pub struct Moto {
    endpoint: String,
    /// The server started for this test (killed on drop), or `None` when reusing one.
    server: Option<Server>,
}

#[derive(Debug)]
struct Server {
    child: Child,
    /// Holds the log and the `sitecustomize.py`; removed on drop.
    dir: PathBuf,
    log: PathBuf,
}

impl Moto {
    /// Starts `moto_server` on a free port and waits until it answers, or reuses the server at
    /// `AWS_ENDPOINT_URL` when that variable is set.
    ///
    /// # Panics
    /// When moto is not installed, exits, or does not answer in time: the message says to run
    /// `make setup`.
    pub async fn start() -> Moto {
        match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if !url.trim().is_empty() => Moto::reuse(url.trim().to_owned()).await,
            _ => Moto::spawn("moto_server").await,
        }
    }

    /// Starts a server of this test's own even when `AWS_ENDPOINT_URL` is set: for tests that
    /// rely on the started server handling one request at a time (see
    /// [`Moto::serializes_requests`]), such as races between transactions.
    ///
    /// # Panics
    /// Like [`Moto::start`].
    pub async fn start_own() -> Moto {
        Moto::spawn("moto_server").await
    }

    /// Whether this server handles one request at a time, as every server started here does.
    /// moto's TransactWriteItems is not safe under concurrent requests (a failed transaction
    /// puts back a copy of the whole table taken before it started, undoing whatever was
    /// written meanwhile); DynamoDB itself serializes writes to an item. A server reused from
    /// `AWS_ENDPOINT_URL` may not.
    pub fn serializes_requests(&self) -> bool {
        self.server.is_some()
    }

    /// The endpoint URL, e.g. `http://127.0.0.1:53412`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK config that talks to this server only: region us-east-1, static dummy
    /// credentials, this endpoint. Built by hand, so no environment variable, profile or
    /// instance metadata can leak into a test.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint)
    }

    async fn reuse(url: String) -> Moto {
        let addr = socket_addr_of(&url).unwrap_or_else(|| {
            panic!("AWS_ENDPOINT_URL=`{url}` is not an http://host:port URL; {SETUP_HINT}")
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !answers(addr) {
            if Instant::now() > deadline {
                panic!("nothing answers at AWS_ENDPOINT_URL=`{url}`; start moto there or unset it ({SETUP_HINT})");
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        Moto {
            endpoint: url.trim_end_matches('/').to_owned(),
            server: None,
        }
    }

    /// Starts `moto_server` handling one request at a time on `port` (0: a free port), for a
    /// long-running local stack rather than a test: failures are returned, not panicked.
    /// The server is killed when the returned `Moto` is dropped.
    pub async fn start_on(port: u16) -> Result<Moto, String> {
        Moto::try_spawn("moto_server", (port != 0).then_some(port)).await
    }

    async fn spawn(program: &str) -> Moto {
        Moto::try_spawn(program, None)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// The failure says what to do (run `make setup`).
    async fn try_spawn(program: &str, fixed_port: Option<u16>) -> Result<Moto, String> {
        let mut last_failure = String::new();
        // A fixed port cannot be taken again by retrying.
        let attempts = if fixed_port.is_some() {
            1
        } else {
            START_ATTEMPTS
        };
        for _ in 0..attempts {
            let port = match fixed_port {
                Some(port) => port,
                None => free_port()?,
            };
            let dir = std::env::temp_dir().join(format!(
                "elevate-testkit-moto-{}-{port}",
                std::process::id()
            ));
            let log = dir.join("moto.log");
            let prepared = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join("sitecustomize.py"), SITECUSTOMIZE))
                .and_then(|()| File::create(&log))
                .and_then(|out| Ok((out.try_clone()?, out)));
            let (log_out, log_err) = prepared
                .map_err(|e| format!("cannot prepare the moto directory {}: {e}", dir.display()))?;
            // Only the child's environment changes, never this process's.
            let python_path = match std::env::var_os("PYTHONPATH") {
                Some(existing) if !existing.is_empty() => {
                    let mut paths = vec![dir.clone()];
                    paths.extend(std::env::split_paths(&existing));
                    std::env::join_paths(paths).unwrap_or_else(|_| dir.clone().into_os_string())
                }
                _ => dir.clone().into_os_string(),
            };
            let child = Command::new(program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("PYTHONPATH", python_path)
                .stdin(Stdio::null())
                .stdout(log_out)
                .stderr(log_err)
                .spawn();
            let child = match child {
                Ok(child) => child,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    if e.kind() == std::io::ErrorKind::NotFound {
                        return Err(format!("`{program}` is not on PATH: {SETUP_HINT}"));
                    }
                    return Err(format!("cannot start `{program}`: {e}; {SETUP_HINT}"));
                }
            };
            // From here on, dropping `server` kills the child, whatever happens below.
            let mut server = Server { child, dir, log };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match server.wait_ready(addr).await {
                Ok(()) => {
                    return Ok(Moto {
                        endpoint: format!("http://127.0.0.1:{port}"),
                        server: Some(server),
                    })
                }
                Err(failure) => last_failure = failure,
            }
        }
        Err(format!(
            "`{program}` did not start: {last_failure}\n{SETUP_HINT}"
        ))
    }
}

impl Server {
    /// Waits until this child answers HTTP on `addr`. Checking that the child is still alive
    /// after the first answer makes sure the answer came from it and not from another server
    /// that took the port first.
    async fn wait_ready(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!("it exited ({status}):\n{}", self.log_tail()));
            }
            if let Some(head) = probe(addr) {
                if let Some(status) = self.exited() {
                    return Err(format!(
                        "it exited ({status}) while {addr} answered:\n{}",
                        self.log_tail()
                    ));
                }
                if !head.to_ascii_lowercase().contains(SERIALIZED_HEADER) {
                    return Err(format!(
                        "it answered without handling one request at a time (the testkit's \
                         sitecustomize.py was not applied: did moto stop starting through \
                         werkzeug.serving.run_simple?):\n{head}"
                    ));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "it did not answer on {addr} within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An SDK config for any stand-in server at `endpoint` (a fake Invoke API, the local
/// gateway): region us-east-1, static dummy credentials, nothing read from the environment.
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "elevate-testkit");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

/// A name no other test (of this run or of another process sharing the server) uses:
/// `<prefix>-<pid>-<time>-<counter>`, made of letters, digits and `-`, so it is valid for
/// DynamoDB tables, IAM groups and users, and schedule groups (keep `prefix` under 30
/// characters for the 64-character limit of schedule groups).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{:x}-{n}",
        std::process::id(),
        nanos & 0xffff_ffff
    )
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free local port: {e}"))
}

/// Whether an HTTP server answers `GET /moto-api/` at `addr`.
fn answers(addr: SocketAddr) -> bool {
    probe(addr).is_some()
}

/// The response head of `GET /moto-api/` at `addr`, if an HTTP server answers there.
fn probe(addr: SocketAddr) -> Option<String> {
    let exchange = || -> std::io::Result<String> {
        let timeout = Duration::from_millis(500);
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(
            format!("GET /moto-api/ HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        let mut head = Vec::new();
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            if stream.read(&mut byte)? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&head).into_owned())
    };
    exchange().ok().filter(|head| head.starts_with("HTTP/"))
}

/// `host:port` of an `http://` or `https://` URL.
fn socket_addr_of(url: &str) -> Option<SocketAddr> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_resource_names() {
        let a = unique_name("table");
        let b = unique_name("table");
        assert_ne!(a, b);
        assert!(a.starts_with("table-"));
        assert!(a.len() <= 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn endpoint_urls_give_socket_addresses() {
        assert_eq!(
            socket_addr_of("http://127.0.0.1:5000"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5000)))
        );
        assert_eq!(
            socket_addr_of("http://127.0.0.1:5000/"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5000)))
        );
        assert_eq!(
            socket_addr_of("http://127.0.0.1"),
            Some(SocketAddr::from(([127, 0, 0, 1], 80)))
        );
        assert_eq!(socket_addr_of("127.0.0.1:5000"), None);
    }

    #[tokio::test]
    #[should_panic(expected = "make setup")]
    async fn a_missing_server_fails_the_test_and_says_what_to_do() {
        Moto::spawn("moto_server_not_installed_here").await;
    }

    #[tokio::test]
    #[should_panic(expected = "make setup")]
    async fn a_server_that_exits_fails_the_test_and_says_what_to_do() {
        // `false` starts and exits at once, like a broken moto install.
        Moto::spawn("false").await;
    }

    #[tokio::test]
    async fn a_started_server_answers_sdk_calls_and_dies_on_drop() {
        let moto = Moto::start().await;
        let config = moto.sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&config);
        let group = unique_name("testkit");
        iam.create_group()
            .group_name(&group)
            .send()
            .await
            .expect("create group");
        let listed = iam.list_groups().send().await.expect("list groups");
        assert!(listed.groups().iter().any(|g| g.group_name() == group));

        let addr = socket_addr_of(moto.endpoint()).expect("addr");
        let dir = moto.server.as_ref().map(|server| server.dir.clone());
        if dir.is_some() {
            let head = probe(addr).expect("answers").to_ascii_lowercase();
            assert!(head.contains(SERIALIZED_HEADER), "{head}");
        }
        drop(moto);
        if let Some(dir) = dir {
            assert!(!answers(addr), "moto still answers after drop");
            assert!(!dir.exists(), "{} is left behind", dir.display());
        }
    }
}

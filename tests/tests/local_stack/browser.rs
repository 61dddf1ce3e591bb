//! The approver's page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, the `fantoccini` client) opens /slack, picks bob, clicks Approve.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make setup` installs them).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::harness::{members, LocalStack, GROUP};

/// chromedriver on a free loopback port, killed on drop.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver ({e}): run `make setup` to install chromium and chromium-driver")
            });
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Chromium binary itself (Debian's /usr/bin/chromium is a wrapper script).
fn chromium() -> PathBuf {
    let real = PathBuf::from("/usr/lib/chromium/chromium");
    if real.is_file() {
        real
    } else {
        PathBuf::from("/usr/bin/chromium")
    }
}

#[tokio::test]
async fn bob_approves_from_the_slack_page_in_a_browser() {
    let stack = LocalStack::shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    let requested = stack.run(
        "grace",
        &[
            "request",
            "infra_access",
            "--duration",
            "10m",
            "--reason",
            "browser test",
        ],
    );
    assert!(requested.ok(), "{requested:?}");
    let message = stack.pending_message("grace").await;
    let id = message["request_id"].as_str().expect("id").to_owned();

    let driver = Chromedriver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver");

    let result = async {
        browser.goto(&format!("{}/slack", stack.api_url)).await?;
        let select = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("select#as option[value='bob']"))
            .await?;
        drop(select);
        browser
            .find(Locator::Css("select#as"))
            .await?
            .select_by_value("bob")
            .await?;
        let button = format!("article[data-request-id='{id}'] button[data-action='approve']");
        // The page redraws when messages change (other tests post too): find and click again
        // when the button was replaced under the click.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let clicked = async {
                let element = browser
                    .wait()
                    .at_most(Duration::from_secs(10))
                    .for_element(Locator::Css(&button))
                    .await?;
                element.click().await
            }
            .await;
            match clicked {
                Ok(()) => break,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("clicking Approve again: {error}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(error) => return Err(error),
            }
        }
        let outcome = browser
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&format!(
                "article[data-request-id='{id}'] .outcome"
            )))
            .await?
            .text()
            .await?;
        Ok::<_, fantoccini::error::CmdError>(outcome)
    }
    .await;
    let _ = browser.close().await;
    let outcome = result.expect("the page works in Chromium");
    assert!(outcome.contains("bob clicked approve"), "{outcome}");

    stack
        .wait_for_state("grace", &id, "ACTIVE", Duration::from_secs(20))
        .await;
    let request = stack.request("grace", &id);
    assert_eq!(request["decided_by"], "bob", "{request}");
    assert!(members(&iam, GROUP).await.contains(&"grace".to_owned()));

    let revoked = stack.run("grace", &["revoke", &id]);
    assert!(revoked.ok(), "{revoked:?}");
}

//! The Slack page in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! the `fantoccini` client) opens /slack, picks bob, clicks Approve; and a requester types
//! `/elevate`, fills its modal, and later ends the access from their direct message.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`make setup` installs them).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use elevate_slack::modal::{access_value, ACCESS_BLOCK, DURATION_BLOCK, REASON_BLOCK};
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::harness::{members, wait_membership, LocalStack, APPROVALS_CHANNEL, GROUP};
use super::slack::a_duration;

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

/// A Chromium session through its own chromedriver and a fresh profile; both go when it is
/// dropped, after [`Browser::close`].
struct Browser {
    client: Client,
    _driver: Chromedriver,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
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
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .expect("a Chromium session through chromedriver");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn close(&self) {
        let _ = self.client.clone().close().await;
    }
}

/// Opens the page and acts as `person`.
async fn open_page_as(browser: &Client, stack: &LocalStack, person: &str) -> Result<(), CmdError> {
    browser.goto(&format!("{}/slack", stack.api_url)).await?;
    act_as(browser, person).await
}

/// Picks `person` in the page's selector.
async fn act_as(browser: &Client, person: &str) -> Result<(), CmdError> {
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("select#as option[value='{person}']")))
        .await?;
    browser
        .find(Locator::Css("select#as"))
        .await?
        .select_by_value(person)
        .await
}

/// Clicks the element `css` once it is there.
async fn click_when_there(browser: &Client, css: &str) -> Result<(), CmdError> {
    again_if_redrawn(css, || async {
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await?
            .click()
            .await
    })
    .await
}

/// The text of the element `css`, once it is there.
async fn text_of(browser: &Client, css: &str) -> Result<String, CmdError> {
    again_if_redrawn(css, || async {
        browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await?
            .text()
            .await
    })
    .await
}

/// The attribute `name` of the element `css`, once it is there.
async fn attribute_of(browser: &Client, css: &str, name: &str) -> Result<String, CmdError> {
    again_if_redrawn(css, || async {
        let element = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await?;
        Ok(element.attr(name).await?.unwrap_or_default())
    })
    .await
}

/// Runs `step` on the element `css` until it succeeds or 20 s pass. The page redraws when
/// messages change (other tests post too), so an element found a moment ago can be replaced
/// under the step: find it again then.
async fn again_if_redrawn<T, F, Fut>(css: &str, mut step: F) -> Result<T, CmdError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CmdError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() < deadline => {
                eprintln!("finding {css} again: {error}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(error) => return Err(error),
        }
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

    let browser = Browser::start().await;
    let page = &browser.client;
    let result = async {
        open_page_as(page, stack, "bob").await?;
        let button = format!("article[data-request-id='{id}'] button[data-action='approve']");
        click_when_there(page, &button).await?;
        text_of(page, &format!("article[data-request-id='{id}'] .outcome")).await
    }
    .await;
    browser.close().await;
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

#[tokio::test]
async fn ken_requests_in_the_slack_modal_and_ends_his_access_from_the_page() {
    let stack = LocalStack::slack_shared();
    let iam = aws_sdk_iam::Client::new(&stack.moto());
    assert!(stack.requests_of("ken").is_empty(), "ken asks only here");

    let browser = Browser::start().await;
    let page = &browser.client;
    let result = async {
        // ken types `/elevate`: the modal opens over the page.
        open_page_as(page, stack, "ken").await?;
        click_when_there(page, "#command-run").await?;
        let access = page
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&format!(
                "#modal-overlay:not([hidden]) select[data-block-id='{ACCESS_BLOCK}']"
            )))
            .await?;
        access
            .select_by_value(&access_value("infra_access", "admins", None))
            .await?;
        let view = stack.slack_view_as("ken").await["views"][0]["view"].clone();
        let duration = page
            .find(Locator::Css(&format!(
                "#modal-body [data-block-id='{DURATION_BLOCK}']:not(.field)"
            )))
            .await?;
        if duration.tag_name().await?.eq_ignore_ascii_case("select") {
            duration.select_by_value(&a_duration(&view)).await?;
        } else {
            duration.send_keys(&a_duration(&view)).await?;
        }
        page.find(Locator::Css(&format!(
            "#modal-body [data-block-id='{REASON_BLOCK}']:not(.field)"
        )))
        .await?
        .send_keys("browser: ship the fix")
        .await?;
        page.find(Locator::Id("modal-submit"))
            .await?
            .click()
            .await?;
        let submitted = text_of(page, "#submitted").await?;
        let hidden = page
            .find(Locator::Id("modal-overlay"))
            .await?
            .attr("hidden")
            .await?;
        Ok::<_, CmdError>((submitted, hidden.is_some()))
    }
    .await;
    let (submitted, closed) = match result {
        Ok(done) => done,
        Err(error) => {
            browser.close().await;
            panic!("the modal works in Chromium: {error}");
        }
    };
    assert!(submitted.contains("Submitted"), "{submitted}");
    assert!(closed, "the modal is still open after its submission");
    let requests = stack.requests_of("ken");
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let id = requests[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(stack.request("ken", &id)["reason"], "browser: ship the fix");

    // bob approves on the same page.
    let approved = async {
        act_as(page, "bob").await?;
        click_when_there(
            page,
            &format!(
                "article[data-channel='{APPROVALS_CHANNEL}'][data-request-id='{id}'] \
                 button[data-action='approve']"
            ),
        )
        .await?;
        text_of(
            page,
            &format!(
                "article[data-channel='{APPROVALS_CHANNEL}'][data-request-id='{id}'] .outcome"
            ),
        )
        .await
    }
    .await;
    let approved = match approved {
        Ok(outcome) => outcome,
        Err(error) => {
            browser.close().await;
            panic!("bob's approval in Chromium: {error}");
        }
    };
    assert!(approved.contains("bob clicked approve"), "{approved}");
    stack
        .wait_for_state("ken", &id, "ACTIVE", Duration::from_secs(20))
        .await;
    wait_membership(&iam, GROUP, "ken", true, Duration::from_secs(5)).await;

    // ken ends it from his direct message, through its confirmation.
    let ended = async {
        act_as(page, "ken").await?;
        let end = format!(
            "article[data-direct-to='ken'] button[data-action='end_access'][data-request-id='{id}']"
        );
        let ts = attribute_of(page, &end, "data-ts").await?;
        click_when_there(page, &end).await?;
        let dialog = format!("article[data-ts='{ts}'] .confirm[data-confirm-action='end_access']");
        let question = text_of(page, &dialog).await?;
        click_when_there(page, &format!("{dialog} button[data-confirm='yes']")).await?;
        let outcome = text_of(page, &format!("article[data-ts='{ts}'] .outcome")).await?;
        Ok::<_, CmdError>((question, outcome))
    }
    .await;
    browser.close().await;
    let (question, outcome) = ended.expect("End access now works in Chromium");
    assert!(question.contains("End access now?"), "{question}");
    assert!(outcome.contains("ken clicked end_access"), "{outcome}");

    stack
        .wait_for_state("ken", &id, "REVOKED", Duration::from_secs(30))
        .await;
    wait_membership(&iam, GROUP, "ken", false, Duration::from_secs(10)).await;
    assert!(
        !members(&iam, GROUP).await.contains(&"ken".to_owned()),
        "ken is still in {GROUP}"
    );
}

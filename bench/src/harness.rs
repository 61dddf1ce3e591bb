//! A started stack with everything a scenario needs to act on it and to check it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use elevate_core::ports::RequestStore;
use elevate_core::{Request, RequestId, State};

use crate::client::{Clicked, ClientError, StackClient};
use crate::config::{BenchConfig, APPROVERS, AUDITOR, CHANNEL, GROUP};
use crate::faults::{FaultPlan, FaultProxy};
use crate::moto::{MotoError, MotoReader};
use crate::stack::{free_port, Stack, StackError, StackOptions};

/// What went wrong running a scenario (not a failed check: those are reported).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Moto(#[from] MotoError),
    #[error("{0}")]
    Scenario(String),
}

/// The `ts` used for a request whose announcement is not recorded (the click still names the
/// request; only the message update needs the real one).
const UNKNOWN_TS: &str = "0000000000.000000";

/// A request as the bench opened it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub request: Request,
    /// When `POST /requests` was sent and answered (`None` when it had to be found in moto
    /// after a failed answer).
    pub sent_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl Opened {
    pub fn id(&self) -> &RequestId {
        &self.request.id
    }

    /// The channel and ts of its Slack message (the flow's channel and a placeholder when the
    /// announcement was not recorded).
    pub fn message(&self) -> (String, String) {
        match &self.request.message {
            Some(m) => (m.channel.clone(), m.ts.clone()),
            None => (CHANNEL.to_owned(), UNKNOWN_TS.to_owned()),
        }
    }
}

/// One stack, a client acting as its people, and a reader of its moto.
#[derive(Debug)]
pub struct Harness {
    pub stack: Stack,
    pub client: StackClient,
    pub moto: MotoReader,
    pub config: BenchConfig,
}

impl Harness {
    /// Starts a stack and creates the bench flow's IAM group in its moto.
    pub async fn start(options: StackOptions) -> Result<Harness, BenchError> {
        let config = options.config.clone();
        let stack = Stack::start(options).await?;
        let mut people = config.requester_names();
        people.extend(APPROVERS.iter().map(|a| (*a).to_owned()));
        people.push(AUDITOR.to_owned());
        let client = StackClient::new(&stack, &people)?;
        let moto = MotoReader::new(
            &stack.info.moto_endpoint,
            &stack.info.table,
            &stack.info.schedule_group,
        );
        moto.ensure_group(GROUP).await?;
        Ok(Harness {
            stack,
            client,
            moto,
            config,
        })
    }

    /// Starts a fault proxy in front of the moto the stack is about to start (on a port
    /// picked here, since the proxy must know it first), then the stack with its functions
    /// talking to AWS through the proxy; the functions' Lambda calls are routed to the stack.
    pub async fn start_with_faults(
        config: BenchConfig,
        plan: FaultPlan,
    ) -> Result<(Harness, FaultProxy), BenchError> {
        let moto_port = free_port().map_err(StackError::Io)?;
        let proxy = FaultProxy::start(&format!("http://127.0.0.1:{moto_port}"), plan)
            .await
            .map_err(StackError::Io)?;
        let mut options = StackOptions::new(config);
        options.functions_aws_endpoint = Some(proxy.url());
        options.moto_port = Some(moto_port);
        let harness = Harness::start(options).await?;
        proxy.route("lambda", &harness.stack.info.api_url);
        Ok((harness, proxy))
    }

    /// `POST /requests` as `requester`.
    pub async fn open(&self, requester: &str, duration: Duration) -> Result<Opened, BenchError> {
        let sent_at = Utc::now();
        let request = self
            .client
            .create_request(requester, duration, "elevate-bench")
            .await?;
        Ok(Opened {
            request,
            sent_at,
            answered_at: Some(Utc::now()),
        })
    }

    /// Opens a request even when AWS misbehaves: a failed answer is followed by a look in moto
    /// (the request may have been stored all the same), and only when there is none is the
    /// request sent again. So a requester never ends up with two requests.
    pub async fn open_resilient(
        &self,
        requester: &str,
        duration: Duration,
        attempts: usize,
    ) -> Result<Opened, BenchError> {
        let sent_at = Utc::now();
        let mut last = String::new();
        for _ in 0..attempts.max(1) {
            match self.open(requester, duration).await {
                Ok(opened) => return Ok(opened),
                Err(err) => last = err.to_string(),
            }
            let stored = self
                .moto
                .store
                .list_by_requester(requester, &[])
                .await
                .map_err(MotoError::from)?;
            if let Some(request) = stored.into_iter().next() {
                return Ok(Opened {
                    request,
                    sent_at,
                    answered_at: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(BenchError::Scenario(format!(
            "could not open a request for {requester} in {attempts} attempts: {last}"
        )))
    }

    /// Clicks Approve on `opened`'s message as `approver`.
    pub async fn approve(&self, approver: &str, opened: &Opened) -> Result<Clicked, BenchError> {
        let (channel, ts) = opened.message();
        Ok(self
            .client
            .click(
                approver,
                elevate_slack::interaction::APPROVE_ACTION,
                opened.id(),
                &channel,
                &ts,
            )
            .await?)
    }

    /// Clicks Approve until the request is no longer PENDING in moto (a click whose function
    /// failed changes nothing, and an approver would click again). Returns the clicks made.
    pub async fn approve_until_decided(
        &self,
        approver: &str,
        opened: &Opened,
        attempts: usize,
    ) -> Result<usize, BenchError> {
        for attempt in 1..=attempts.max(1) {
            // A click that failed in transit is like one that failed in the function.
            let _ = self.approve(approver, opened).await;
            match self.moto.request(opened.id()).await? {
                Some(request) if request.state == State::Pending => {}
                _ => return Ok(attempt),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(BenchError::Scenario(format!(
            "request {} still PENDING after {attempts} clicks",
            opened.id()
        )))
    }
}

//! What the gateway's tests share: servers on free loopback ports that stop with the test,
//! and a scriptable dispatcher.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use elevate_local::dispatch::{DispatchError, Dispatcher};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// An axum router served on 127.0.0.1 at a free port until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(router: axum::Router) -> TestServer {
        Self::start_with(router.into_make_service_with_connect_info::<SocketAddr>()).await
    }

    async fn start_with(
        service: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<
            axum::Router,
            SocketAddr,
        >,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// One call the fake dispatcher received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: String,
    pub payload: Value,
}

type Answer = Result<Value, DispatchError>;

/// A dispatcher that records calls and answers from a script (then with a default).
pub struct FakeDispatcher {
    calls: Mutex<Vec<Call>>,
    script: Mutex<VecDeque<Answer>>,
    default: Answer,
    notify: mpsc::UnboundedSender<Call>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl FakeDispatcher {
    /// A dispatcher answering `default`, and a receiver of every call as it starts.
    pub fn new(default: Answer) -> (Arc<FakeDispatcher>, mpsc::UnboundedReceiver<Call>) {
        Self::build(default, None)
    }

    /// Like `new`, but each call waits for a permit of `gate` before answering.
    pub fn gated(
        default: Answer,
        gate: Arc<tokio::sync::Semaphore>,
    ) -> (Arc<FakeDispatcher>, mpsc::UnboundedReceiver<Call>) {
        Self::build(default, Some(gate))
    }

    fn build(
        default: Answer,
        gate: Option<Arc<tokio::sync::Semaphore>>,
    ) -> (Arc<FakeDispatcher>, mpsc::UnboundedReceiver<Call>) {
        let (notify, calls) = mpsc::unbounded_channel();
        (
            Arc::new(FakeDispatcher {
                calls: Mutex::new(Vec::new()),
                script: Mutex::new(VecDeque::new()),
                default,
                notify,
                gate,
            }),
            calls,
        )
    }

    /// The next calls answer these, in order.
    pub fn then(&self, answer: Answer) {
        self.script.lock().expect("lock").push_back(answer);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Dispatcher for FakeDispatcher {
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, DispatchError> {
        let call = Call {
            function: function.to_owned(),
            payload,
        };
        self.calls.lock().expect("lock").push(call.clone());
        let _ = self.notify.send(call);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        let scripted = self.script.lock().expect("lock").pop_front();
        scripted.unwrap_or_else(|| self.default.clone())
    }
}

//! The table's stream, delivered the way a Lambda event source mapping delivers it, which moto
//! does not do: read the stream (DescribeTable's `LatestStreamArn`, DescribeStream, then
//! GetShardIterator from `TRIM_HORIZON` and GetRecords every tick), turn each record into the
//! record of Lambda's DynamoDB stream event, keep those the mapping's filter lets through, and
//! invoke the function with batches of them, in stream order.
//!
//! Like the mapping of template.yaml (`MaximumRetryAttempts: -1`, `BisectBatchOnFunctionError:
//! false`, `ReportBatchItemFailures`), a record is never skipped: when the invocation fails the
//! whole batch is retried, and when the function answers `batchItemFailures` the records before
//! the first failed one count as done and the batch is retried from that one. Retries wait a
//! backoff that starts at one tick and doubles up to a cap, like [`crate::pump`]'s. Records read
//! meanwhile wait in memory behind the failed ones (reading pauses once many wait).
//!
//! moto keeps one shard per stream and never closes it; this pump reads the first shard the
//! stream lists. A shard iterator that fails (expired, unknown) is replaced by one positioned
//! after the last record read.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_smithy_types::error::display::DisplayErrorContext;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::dispatch::Dispatcher;
use crate::pump::PumpHandle;

/// A Lambda DynamoDB event source mapping's default batch size.
pub const BATCH_SIZE: usize = 100;

/// Which records the mapping lets through: those whose key `attribute` is a string starting
/// with `prefix` (template.yaml's `FilterCriteria`, `{"dynamodb": {"Keys": {"sk": {"S":
/// [{"prefix": "EVT#"}]}}}}`). Records filtered out count as done, as they do for Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefix {
    pub attribute: String,
    pub prefix: String,
}

impl KeyPrefix {
    pub fn new(attribute: impl Into<String>, prefix: impl Into<String>) -> Self {
        KeyPrefix {
            attribute: attribute.into(),
            prefix: prefix.into(),
        }
    }

    /// Whether the Lambda record passes (its `dynamodb.Keys.<attribute>.S` has the prefix).
    pub fn matches(&self, record: &Value) -> bool {
        record["dynamodb"]["Keys"][self.attribute.as_str()]["S"]
            .as_str()
            .is_some_and(|value| value.starts_with(&self.prefix))
    }
}

#[derive(Debug, Clone)]
pub struct StreamPumpConfig {
    /// The table whose stream is read.
    pub table: String,
    /// The function the records go to (a name or an ARN).
    pub function: String,
    /// The mapping's filter; `None` lets every record through.
    pub filter: Option<KeyPrefix>,
    /// How often the stream is read when it has nothing new.
    pub interval: Duration,
    /// The most records in one invocation.
    pub batch_size: usize,
    /// The longest wait between two attempts of a failing batch.
    pub max_backoff: Duration,
    /// Reading stops while this many records wait for delivery, and goes on once they are done.
    pub max_waiting: usize,
}

impl StreamPumpConfig {
    pub fn new(table: impl Into<String>, function: impl Into<String>) -> Self {
        StreamPumpConfig {
            table: table.into(),
            function: function.into(),
            filter: None,
            interval: Duration::from_millis(250),
            batch_size: BATCH_SIZE,
            max_backoff: Duration::from_secs(30),
            max_waiting: 10 * BATCH_SIZE,
        }
    }

    pub fn with_filter(mut self, filter: KeyPrefix) -> Self {
        self.filter = Some(filter);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("DynamoDB Streams {action} failed: {message}")]
    Aws {
        action: &'static str,
        message: String,
    },
    #[error("table {0} has no stream")]
    NoStream(String),
    #[error("stream {0} has no shard")]
    NoShard(String),
}

fn aws_error(action: &'static str, error: impl std::error::Error) -> StreamError {
    StreamError::Aws {
        action,
        message: DisplayErrorContext(&error).to_string(),
    }
}

/// What one tick read and delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamTick {
    /// Records read from the stream.
    pub read: usize,
    /// Records the filter let through (now waiting or delivered).
    pub accepted: usize,
    /// Records the function processed.
    pub delivered: usize,
    /// Whether an invocation failed (wholly or from a record on).
    pub failed: bool,
}

/// The records waiting for the function, the first ones first, and the retry state of the
/// batch at their head. Knows nothing of the stream, so it is tested on its own.
#[derive(Debug)]
pub struct Delivery {
    function: String,
    batch_size: usize,
    interval: Duration,
    max_backoff: Duration,
    waiting: VecDeque<Waiting>,
    attempts: u32,
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Waiting {
    sequence_number: String,
    record: Value,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Nothing waits, or the batch sits out its backoff.
    Idle,
    /// The function processed this many records (the whole batch, or those before the first
    /// failed one), and failed from the next one on when `failed`.
    Done { processed: usize, failed: bool },
}

impl Delivery {
    pub fn new(
        function: impl Into<String>,
        batch_size: usize,
        interval: Duration,
        max_backoff: Duration,
    ) -> Self {
        Delivery {
            function: function.into(),
            batch_size: batch_size.max(1),
            interval,
            max_backoff,
            waiting: VecDeque::new(),
            attempts: 0,
            retry_at: None,
        }
    }

    /// Queues a Lambda record (its `dynamodb.SequenceNumber` identifies it in
    /// `batchItemFailures`).
    pub fn push(&mut self, record: Value) {
        let sequence_number = record["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.waiting.push_back(Waiting {
            sequence_number,
            record,
        });
    }

    /// How many records wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Failed attempts of the batch at the head so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Invokes the function with the next batch, unless nothing waits or the last failure's
    /// backoff runs until after `now`.
    pub async fn deliver(&mut self, dispatcher: &dyn Dispatcher, now: Instant) -> Delivered {
        if self.waiting.is_empty() || self.retry_at.is_some_and(|at| at > now) {
            return Delivered::Idle;
        }
        let size = self.waiting.len().min(self.batch_size);
        let batch: Vec<Value> = self
            .waiting
            .iter()
            .take(size)
            .map(|w| w.record.clone())
            .collect();
        let answer = dispatcher
            .invoke(&self.function, json!({ "Records": batch }))
            .await;
        let processed = match answer {
            Ok(answer) => match self.first_failure(&answer, size) {
                Ok(None) => size,
                Ok(Some(index)) => {
                    tracing::warn!(
                        function = %self.function,
                        sequence_number = %self.waiting[index].sequence_number,
                        done = index,
                        "the function reported a failed record; retrying from it"
                    );
                    index
                }
                Err(why) => {
                    tracing::warn!(function = %self.function, %why, "the function's batchItemFailures name no record of the batch; retrying the whole batch");
                    0
                }
            },
            Err(error) => {
                tracing::warn!(function = %self.function, %error, records = size, "the stream batch failed; retrying it");
                0
            }
        };
        self.waiting.drain(..processed);
        let failed = processed < size;
        if failed {
            self.attempts += 1;
            let wait = backoff(self.interval, self.max_backoff, self.attempts);
            tracing::info!(function = %self.function, attempts = self.attempts, retry_in = ?wait, "stream batch will be retried");
            self.retry_at = Some(now + wait);
        } else {
            self.attempts = 0;
            self.retry_at = None;
        }
        Delivered::Done { processed, failed }
    }

    /// The index (in the batch of `size`) of the first record the answer reports as failed,
    /// as Lambda reads `batchItemFailures`: none when absent or empty; the lowest sequence
    /// number among them otherwise; the whole batch when an identifier is not one of its
    /// records.
    fn first_failure(&self, answer: &Value, size: usize) -> Result<Option<usize>, String> {
        let failures = match answer.get("batchItemFailures") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(failures)) => failures,
            Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
        };
        let mut first: Option<usize> = None;
        for failure in failures {
            let id = failure["itemIdentifier"].as_str().unwrap_or_default();
            let index = self
                .waiting
                .iter()
                .take(size)
                .position(|w| !id.is_empty() && w.sequence_number == id)
                .ok_or_else(|| format!("unknown itemIdentifier {:?}", failure["itemIdentifier"]))?;
            first = Some(first.map_or(index, |f| f.min(index)));
        }
        Ok(first)
    }
}

/// Where the pump reads: the stream, its shard, the iterator, and the last record read.
#[derive(Debug, Clone)]
struct Position {
    stream_arn: String,
    shard_id: String,
    iterator: Option<String>,
}

pub struct StreamPump {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    dispatcher: Arc<dyn Dispatcher>,
    config: StreamPumpConfig,
    region: String,
    position: Option<Position>,
    /// The sequence number of the last record read, where a new iterator starts after.
    last_read: Option<String>,
    delivery: Delivery,
}

impl StreamPump {
    /// `dynamodb` and `streams` talk to the same DynamoDB (their SDK config's region is the
    /// records' `awsRegion`).
    pub fn new(
        dynamodb: aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        dispatcher: Arc<dyn Dispatcher>,
        config: StreamPumpConfig,
    ) -> Self {
        let region = streams
            .config()
            .region()
            .map_or_else(|| crate::bootstrap::REGION.to_owned(), |r| r.to_string());
        let delivery = Delivery::new(
            config.function.clone(),
            config.batch_size,
            config.interval,
            config.max_backoff,
        );
        StreamPump {
            dynamodb,
            streams,
            dispatcher,
            config,
            region,
            position: None,
            last_read: None,
            delivery,
        }
    }

    /// Reads and delivers until `shutdown` completes; a failed read is logged and tried again
    /// next tick. Stopping abandons an invocation under way and the records still waiting.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut wait = Duration::ZERO;
        // Failed reads in a row: the next read waits longer, up to the cap.
        let mut failures = 0u32;
        loop {
            let tick = async {
                tokio::time::sleep(wait).await;
                match self.tick(Instant::now()).await {
                    Ok(report) => {
                        failures = 0;
                        if report.read >= self.config.batch_size {
                            // A full read: more may be there already.
                            Duration::ZERO
                        } else {
                            self.config.interval
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        let next = backoff(self.config.interval, self.config.max_backoff, failures);
                        tracing::warn!(table = %self.config.table, %error, retry_in = ?next, "stream read failed");
                        next
                    }
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                next = tick => wait = next,
            }
        }
    }

    /// Runs the pump in the background until the handle is stopped or dropped.
    pub fn spawn(self) -> PumpHandle {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async {
            let _ = stopped.await;
        }));
        PumpHandle::from_parts(stop, task)
    }

    /// One tick at `now`: reads what the stream has (unless many records wait), then delivers
    /// the next batch if its backoff allows. A failed read still delivers what waits.
    pub async fn tick(&mut self, now: Instant) -> Result<StreamTick, StreamError> {
        let mut report = StreamTick::default();
        let read = if self.delivery.waiting() < self.config.max_waiting {
            self.read().await
        } else {
            Ok(Vec::new())
        };
        if let Ok(records) = &read {
            report.read = records.len();
            for record in records {
                let record = lambda_record(record, self.stream_arn(), &self.region);
                if self
                    .config
                    .filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(&record))
                {
                    report.accepted += 1;
                    self.delivery.push(record);
                }
            }
        }
        if let Delivered::Done { processed, failed } =
            self.delivery.deliver(&*self.dispatcher, now).await
        {
            report.delivered = processed;
            report.failed = failed;
        }
        read.map(|_| report)
    }

    /// Records waiting for the function.
    pub fn waiting(&self) -> usize {
        self.delivery.waiting()
    }

    fn stream_arn(&self) -> &str {
        self.position.as_ref().map_or("", |p| p.stream_arn.as_str())
    }

    /// The next records of the shard, in order.
    async fn read(&mut self) -> Result<Vec<Record>, StreamError> {
        let iterator = self.iterator().await?;
        let got = self
            .streams
            .get_records()
            .shard_iterator(&iterator)
            .limit(i32::try_from(self.config.batch_size).unwrap_or(1000))
            .send()
            .await;
        let got = match got {
            Ok(got) => got,
            Err(error) => {
                // Expired or unknown: the next tick starts a new one after the last record.
                if let Some(position) = &mut self.position {
                    position.iterator = None;
                }
                return Err(aws_error("GetRecords", error));
            }
        };
        let records = got.records().to_vec();
        if let Some(last) = records
            .iter()
            .filter_map(|r| r.dynamodb().and_then(|d| d.sequence_number()))
            .next_back()
        {
            self.last_read = Some(last.to_owned());
        }
        if let Some(position) = &mut self.position {
            match got.next_shard_iterator() {
                // An iterator that read nothing can be read again: moto keeps every iterator it
                // hands out, so taking a new one each empty tick would grow it for nothing.
                Some(next) if !records.is_empty() => position.iterator = Some(next.to_owned()),
                Some(_) => {}
                None => {
                    tracing::warn!(shard = %position.shard_id, "the stream's shard closed; reading the stream's first shard again");
                    self.position = None;
                }
            }
        }
        Ok(records)
    }

    /// The current iterator, finding the stream and its shard first if need be.
    async fn iterator(&mut self) -> Result<String, StreamError> {
        if let Some(Position {
            iterator: Some(iterator),
            ..
        }) = &self.position
        {
            return Ok(iterator.clone());
        }
        let position = match self.position.take() {
            Some(position) => position,
            None => self.locate().await?,
        };
        let mut request = self
            .streams
            .get_shard_iterator()
            .stream_arn(&position.stream_arn)
            .shard_id(&position.shard_id);
        request = match &self.last_read {
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Some(after) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(after),
        };
        let iterator = request
            .send()
            .await
            .map_err(|e| aws_error("GetShardIterator", e))?
            .shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| StreamError::NoShard(position.stream_arn.clone()))?;
        self.position = Some(Position {
            iterator: Some(iterator.clone()),
            ..position
        });
        Ok(iterator)
    }

    async fn locate(&self) -> Result<Position, StreamError> {
        let table = &self.config.table;
        let described = self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws_error("DescribeTable", e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| StreamError::NoStream(table.clone()))?
            .to_owned();
        let stream = self
            .streams
            .describe_stream()
            .stream_arn(&stream_arn)
            .send()
            .await
            .map_err(|e| aws_error("DescribeStream", e))?;
        let shards = stream
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default();
        if shards.len() > 1 {
            tracing::warn!(%stream_arn, shards = shards.len(), "the stream has several shards; the local pump reads the first only");
        }
        let shard_id = shards
            .first()
            .and_then(|s| s.shard_id())
            .ok_or_else(|| StreamError::NoShard(stream_arn.clone()))?
            .to_owned();
        tracing::info!(%stream_arn, %shard_id, function = %self.config.function, "reading the table's stream");
        Ok(Position {
            stream_arn,
            shard_id,
            iterator: None,
        })
    }
}

/// A stream record as Lambda puts it in a DynamoDB stream event.
pub fn lambda_record(record: &Record, stream_arn: &str, region: &str) -> Value {
    let mut change = Map::new();
    if let Some(stream) = record.dynamodb() {
        if let Some(at) = stream.approximate_creation_date_time() {
            // Lambda gives epoch seconds, as a number.
            let seconds = at.as_secs_f64();
            let value = if seconds.fract() == 0.0 && seconds.abs() < 9.0e15 {
                json!(seconds as i64)
            } else {
                json!(seconds)
            };
            change.insert("ApproximateCreationDateTime".into(), value);
        }
        for (name, image) in [
            ("Keys", stream.keys()),
            ("NewImage", stream.new_image()),
            ("OldImage", stream.old_image()),
        ] {
            if let Some(image) = image {
                change.insert(name.into(), Value::Object(item_json(image)));
            }
        }
        if let Some(sequence_number) = stream.sequence_number() {
            change.insert("SequenceNumber".into(), json!(sequence_number));
        }
        change.insert("SizeBytes".into(), json!(stream.size_bytes().unwrap_or(0)));
        if let Some(view) = stream.stream_view_type() {
            change.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    let mut out = Map::new();
    out.insert(
        "eventID".into(),
        json!(record.event_id().unwrap_or_default()),
    );
    out.insert(
        "eventName".into(),
        json!(record.event_name().map_or("", |n| n.as_str())),
    );
    out.insert(
        "eventVersion".into(),
        json!(record.event_version().unwrap_or("1.1")),
    );
    out.insert("eventSource".into(), json!("aws:dynamodb"));
    out.insert(
        "awsRegion".into(),
        json!(record.aws_region().unwrap_or(region)),
    );
    out.insert("dynamodb".into(), Value::Object(change));
    out.insert("eventSourceARN".into(), json!(stream_arn));
    if let Some(identity) = record.user_identity() {
        out.insert(
            "userIdentity".into(),
            json!({
                "type": identity.r#type().unwrap_or_default(),
                "principalId": identity.principal_id().unwrap_or_default(),
            }),
        );
    }
    Value::Object(out)
}

/// An item (or key) in DynamoDB's JSON: each attribute as `{"S": ...}`, `{"N": ...}` and so on.
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    item.iter()
        .filter_map(|(name, value)| Some((name.clone(), attribute_json(value)?)))
        .collect()
}

/// One attribute value in DynamoDB's JSON (binary as base64); `None` for a type this SDK does
/// not know.
pub fn attribute_json(value: &AttributeValue) -> Option<Value> {
    let base64 = |blob: &aws_smithy_types::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    Some(match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64(b) }),
        AttributeValue::Ss(values) => json!({ "SS": values }),
        AttributeValue::Ns(values) => json!({ "NS": values }),
        AttributeValue::Bs(values) => {
            json!({ "BS": values.iter().map(base64).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().filter_map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        other => {
            tracing::warn!(?other, "a stream attribute of an unknown type is left out");
            return None;
        }
    })
}

fn backoff(interval: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    interval.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Mutex;

    use async_trait::async_trait;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    use crate::dispatch::DispatchError;

    const FUNCTION: &str = "elevate-archive";

    /// Answers each invocation from a script (then `{}`), and keeps what it was given.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<Value, DispatchError>>>,
        calls: Mutex<Vec<(String, Value)>>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<Value, DispatchError>>) -> Self {
            Scripted {
                answers: Mutex::new(answers.into()),
                calls: Mutex::default(),
            }
        }

        /// The sequence numbers of each invocation's records.
        fn batches(&self) -> Vec<Vec<String>> {
            self.calls
                .lock()
                .expect("calls")
                .iter()
                .map(|(_, payload)| {
                    payload["Records"]
                        .as_array()
                        .expect("Records")
                        .iter()
                        .map(|r| {
                            r["dynamodb"]["SequenceNumber"]
                                .as_str()
                                .expect("seq")
                                .to_owned()
                        })
                        .collect()
                })
                .collect()
        }
    }

    #[async_trait]
    impl Dispatcher for Scripted {
        async fn invoke(&self, function: &str, payload: Value) -> Result<Value, DispatchError> {
            self.calls
                .lock()
                .expect("calls")
                .push((function.to_owned(), payload));
            self.answers
                .lock()
                .expect("answers")
                .pop_front()
                .unwrap_or(Ok(json!({})))
        }
    }

    fn record(seq: u32) -> Value {
        json!({
            "eventID": format!("e{seq}"),
            "eventName": "INSERT",
            "dynamodb": {
                "Keys": {"pk": {"S": "REQ#r"}, "sk": {"S": format!("EVT#{seq:010}")}},
                "SequenceNumber": seq.to_string(),
            },
        })
    }

    fn failed() -> Result<Value, DispatchError> {
        Err(DispatchError::failed("Archive.Unavailable", "S3 is down"))
    }

    fn delivery(batch_size: usize) -> Delivery {
        Delivery::new(
            FUNCTION,
            batch_size,
            Duration::from_millis(250),
            Duration::from_secs(1),
        )
    }

    fn seqs(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
        range.map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn a_batch_that_fails_twice_is_retried_until_it_is_delivered_in_order() {
        let dispatcher = Scripted::new(vec![failed(), failed()]);
        let mut delivery = delivery(10);
        for seq in 1..=3 {
            delivery.push(record(seq));
        }
        let start = Instant::now();

        assert_eq!(
            delivery.deliver(&dispatcher, start).await,
            Delivered::Done {
                processed: 0,
                failed: true
            }
        );
        // Backing off: nothing is sent before the first retry is due (one tick).
        assert_eq!(delivery.deliver(&dispatcher, start).await, Delivered::Idle);
        let second = start + Duration::from_millis(250);
        assert_eq!(
            delivery.deliver(&dispatcher, second).await,
            Delivered::Done {
                processed: 0,
                failed: true
            }
        );
        assert_eq!(delivery.attempts(), 2);
        // The second backoff is twice the first.
        assert_eq!(
            delivery
                .deliver(&dispatcher, second + Duration::from_millis(499))
                .await,
            Delivered::Idle
        );
        // Records read meanwhile wait behind the failed ones.
        delivery.push(record(4));
        let third = second + Duration::from_millis(500);
        assert_eq!(
            delivery.deliver(&dispatcher, third).await,
            Delivered::Done {
                processed: 4,
                failed: false
            }
        );
        assert_eq!(delivery.waiting(), 0);
        assert_eq!(delivery.attempts(), 0);
        assert_eq!(
            dispatcher.batches(),
            [seqs(1..=3), seqs(1..=3), seqs(1..=4)]
        );
        let calls = dispatcher.calls.lock().expect("calls");
        assert!(calls.iter().all(|(function, _)| function == FUNCTION));
    }

    #[tokio::test]
    async fn batch_item_failures_retry_from_the_first_failed_record() {
        let dispatcher = Scripted::new(vec![
            // Out of order on purpose: the lowest sequence number counts.
            Ok(json!({"batchItemFailures": [{"itemIdentifier": "4"}, {"itemIdentifier": "3"}]})),
            Ok(json!({"batchItemFailures": [{"itemIdentifier": "3"}]})),
            Ok(json!({"batchItemFailures": []})),
        ]);
        let mut delivery = delivery(10);
        for seq in 1..=5 {
            delivery.push(record(seq));
        }
        let mut now = Instant::now();
        assert_eq!(
            delivery.deliver(&dispatcher, now).await,
            Delivered::Done {
                processed: 2,
                failed: true
            }
        );
        now += Duration::from_secs(1);
        assert_eq!(
            delivery.deliver(&dispatcher, now).await,
            Delivered::Done {
                processed: 0,
                failed: true
            }
        );
        now += Duration::from_secs(1);
        assert_eq!(
            delivery.deliver(&dispatcher, now).await,
            Delivered::Done {
                processed: 3,
                failed: false
            }
        );
        assert_eq!(
            dispatcher.batches(),
            [seqs(1..=5), seqs(3..=5), seqs(3..=5)]
        );
    }

    #[tokio::test]
    async fn an_unknown_item_identifier_fails_the_whole_batch() {
        for answer in [
            json!({"batchItemFailures": [{"itemIdentifier": "99"}]}),
            json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
            json!({"batchItemFailures": [{}]}),
            json!({"batchItemFailures": "2"}),
        ] {
            let dispatcher = Scripted::new(vec![Ok(answer.clone())]);
            let mut delivery = delivery(10);
            delivery.push(record(1));
            delivery.push(record(2));
            let now = Instant::now();
            assert_eq!(
                delivery.deliver(&dispatcher, now).await,
                Delivered::Done {
                    processed: 0,
                    failed: true
                },
                "{answer}"
            );
            assert_eq!(delivery.waiting(), 2, "{answer}");
        }
    }

    #[tokio::test]
    async fn batches_hold_at_most_the_batch_size() {
        let dispatcher = Scripted::new(Vec::new());
        let mut delivery = delivery(2);
        for seq in 1..=5 {
            delivery.push(record(seq));
        }
        let now = Instant::now();
        while delivery.deliver(&dispatcher, now).await != Delivered::Idle {}
        assert_eq!(
            dispatcher.batches(),
            [seqs(1..=2), seqs(3..=4), seqs(5..=5)]
        );
    }

    /// The sort keys of each invocation's records, with their event names.
    fn delivered(dispatcher: &Scripted) -> Vec<Vec<String>> {
        dispatcher
            .calls
            .lock()
            .expect("calls")
            .iter()
            .map(|(_, payload)| {
                payload["Records"]
                    .as_array()
                    .expect("Records")
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {}",
                            r["eventName"].as_str().unwrap_or_default(),
                            r["dynamodb"]["Keys"]["sk"]["S"]
                                .as_str()
                                .unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .collect()
    }

    /// Ticks until nothing waits and a tick reads nothing new.
    async fn drain(pump: &mut StreamPump) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tick = pump.tick(Instant::now()).await.expect("tick");
            if tick.read == 0 && pump.waiting() == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the pump does not settle");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn the_pump_delivers_the_table_stream_in_order_through_failures() {
        let moto = elevate_testkit::Moto::start().await;
        let sdk = moto.sdk_config().await;
        let table = elevate_testkit::unique_name("streams");
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        elevate_aws::DynamoStore::create_table(&dynamodb, &table)
            .await
            .expect("create the table");
        let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
        let put = |sk: &str, reason: &str| {
            dynamodb
                .put_item()
                .table_name(&table)
                .item("pk", s("REQ#r1"))
                .item("sk", s(sk))
                .item("reason", s(reason))
                .send()
        };
        put("REQ", "the request item").await.expect("put");
        put("EVT#0000000001", "first").await.expect("put");
        put("EVT#0000000002", "second").await.expect("put");

        let dispatcher = Arc::new(Scripted::new(vec![failed(), failed()]));
        let config = StreamPumpConfig {
            interval: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            ..StreamPumpConfig::new(table.clone(), FUNCTION)
        }
        .with_filter(KeyPrefix::new("sk", "EVT#"));
        let mut pump = StreamPump::new(
            dynamodb.clone(),
            aws_sdk_dynamodbstreams::Client::new(&sdk),
            dispatcher.clone(),
            config,
        );
        drain(&mut pump).await;
        let inserted = vec![
            "INSERT EVT#0000000001".to_owned(),
            "INSERT EVT#0000000002".to_owned(),
        ];
        // Failed twice, then delivered: the same records, in order; the request item never.
        assert_eq!(
            delivered(&dispatcher),
            [inserted.clone(), inserted.clone(), inserted]
        );

        // The records are what Lambda hands the function.
        let first = dispatcher.calls.lock().expect("calls")[2].1.clone();
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(first.clone()).expect("a Lambda stream event");
        let record = &event.records[0];
        assert_eq!(record.event_source.as_deref(), Some("aws:dynamodb"));
        assert!(
            record
                .event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.contains(&format!(":table/{table}/stream/"))),
            "{first}"
        );
        assert_eq!(
            first["Records"][0]["dynamodb"]["NewImage"]["reason"],
            json!({"S": "first"})
        );
        assert_eq!(
            first["Records"][0]["dynamodb"]["StreamViewType"],
            "NEW_AND_OLD_IMAGES"
        );

        // Changes and removals follow, with the images before them.
        dynamodb
            .update_item()
            .table_name(&table)
            .key("pk", s("REQ#r1"))
            .key("sk", s("EVT#0000000001"))
            .update_expression("SET reason = :r")
            .expression_attribute_values(":r", s("rewritten"))
            .send()
            .await
            .expect("update");
        put("REQ", "the request item again").await.expect("put");
        dynamodb
            .delete_item()
            .table_name(&table)
            .key("pk", s("REQ#r1"))
            .key("sk", s("EVT#0000000002"))
            .send()
            .await
            .expect("delete");
        drain(&mut pump).await;
        let calls = delivered(&dispatcher);
        assert_eq!(
            calls[3..],
            [vec![
                "MODIFY EVT#0000000001".to_owned(),
                "REMOVE EVT#0000000002".to_owned()
            ]]
        );
        let changed = dispatcher.calls.lock().expect("calls")[3].1.clone();
        let modify = &changed["Records"][0]["dynamodb"];
        assert_eq!(modify["OldImage"]["reason"], json!({"S": "first"}));
        assert_eq!(modify["NewImage"]["reason"], json!({"S": "rewritten"}));
        let remove = &changed["Records"][1]["dynamodb"];
        assert_eq!(remove["OldImage"]["reason"], json!({"S": "second"}));
        assert!(remove.get("NewImage").is_none(), "{remove}");

        // A lost iterator is replaced by one after the last record read: nothing twice.
        if let Some(position) = &mut pump.position {
            position.iterator = Some("not-an-iterator".to_owned());
        }
        assert!(pump.tick(Instant::now()).await.is_err());
        put("EVT#0000000003", "third").await.expect("put");
        drain(&mut pump).await;
        assert_eq!(
            delivered(&dispatcher)[4..],
            [vec!["INSERT EVT#0000000003".to_owned()]]
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_the_cap() {
        let tick = Duration::from_millis(250);
        let cap = Duration::from_secs(30);
        assert_eq!(backoff(tick, cap, 1), tick);
        assert_eq!(backoff(tick, cap, 3), Duration::from_secs(1));
        assert_eq!(backoff(tick, cap, 60), cap);
    }

    #[test]
    fn the_filter_keeps_audit_events_only() {
        let filter = KeyPrefix::new("sk", "EVT#");
        assert!(filter.matches(&record(1)));
        let request = json!({"dynamodb": {"Keys": {"pk": {"S": "REQ#r"}, "sk": {"S": "REQ"}}}});
        assert!(!filter.matches(&request));
        let numeric = json!({"dynamodb": {"Keys": {"sk": {"N": "1"}}}});
        assert!(!filter.matches(&numeric));
    }

    #[test]
    fn attribute_values_convert_to_dynamodb_json() {
        let blob = aws_smithy_types::Blob::new(b"hi".to_vec());
        let item = HashMap::from([
            ("s".to_owned(), AttributeValue::S("text".into())),
            ("n".to_owned(), AttributeValue::N("42".into())),
            ("b".to_owned(), AttributeValue::B(blob.clone())),
            ("t".to_owned(), AttributeValue::Bool(true)),
            ("z".to_owned(), AttributeValue::Null(true)),
            (
                "ss".to_owned(),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
            ),
            (
                "ns".to_owned(),
                AttributeValue::Ns(vec!["1".into(), "2.5".into()]),
            ),
            ("bs".to_owned(), AttributeValue::Bs(vec![blob])),
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([(
                    "inner".to_owned(),
                    AttributeValue::L(vec![
                        AttributeValue::S("x".into()),
                        AttributeValue::N("1".into()),
                        AttributeValue::M(HashMap::new()),
                    ]),
                )])),
            ),
        ]);
        assert_eq!(
            Value::Object(item_json(&item)),
            json!({
                "s": {"S": "text"},
                "n": {"N": "42"},
                "b": {"B": "aGk="},
                "t": {"BOOL": true},
                "z": {"NULL": true},
                "ss": {"SS": ["a", "b"]},
                "ns": {"NS": ["1", "2.5"]},
                "bs": {"BS": ["aGk="]},
                "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}}},
            })
        );
    }

    fn sdk_record() -> Record {
        let key = |sk: &str| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S("REQ#r1".into())),
                ("sk".to_owned(), AttributeValue::S(sk.into())),
            ])
        };
        let mut new_image = key("EVT#0000000002");
        new_image.insert("reason".into(), AttributeValue::S("approved".into()));
        new_image.insert("seq".into(), AttributeValue::N("2".into()));
        Record::builder()
            .event_id("8f1c")
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(
                        1_767_225_600,
                    ))
                    .set_keys(Some(key("EVT#0000000002")))
                    .set_new_image(Some(new_image))
                    .set_old_image(Some(key("EVT#0000000002")))
                    .sequence_number("1100000000017454423010")
                    .size_bytes(120)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build()
    }

    #[test]
    fn records_read_as_lambda_gives_them() {
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000";
        let record = lambda_record(&sdk_record(), arn, "eu-west-1");
        assert_eq!(
            record,
            json!({
                "eventID": "8f1c",
                "eventName": "MODIFY",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_767_225_600,
                    "Keys": {"pk": {"S": "REQ#r1"}, "sk": {"S": "EVT#0000000002"}},
                    "NewImage": {
                        "pk": {"S": "REQ#r1"},
                        "sk": {"S": "EVT#0000000002"},
                        "reason": {"S": "approved"},
                        "seq": {"N": "2"},
                    },
                    "OldImage": {"pk": {"S": "REQ#r1"}, "sk": {"S": "EVT#0000000002"}},
                    "SequenceNumber": "1100000000017454423010",
                    "SizeBytes": 120,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            })
        );
        // What the archive function deserializes it into.
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(json!({ "Records": [record] })).expect("a Lambda stream event");
        let change = &event.records[0].change;
        assert_eq!(event.records[0].event_name, "MODIFY");
        assert_eq!(
            change.sequence_number.as_deref(),
            Some("1100000000017454423010")
        );
        assert_eq!(
            change.approximate_creation_date_time.timestamp(),
            1_767_225_600
        );
        assert_eq!(
            serde_json::to_value(&change.new_image).expect("image")["reason"],
            json!({"S": "approved"})
        );
    }
}

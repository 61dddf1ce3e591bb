//! What template.yaml promises about the deployment defending itself and waking someone:
//! least privilege on schedules, functions and role policies, the Slack secret's resource policy,
//! deletion protection, the unsigned Slack routes and their throttle, failed asynchronous work
//! kept for an operator, the write-once audit archive and its stream, and the alarms. CloudFormation tags stay as tagged YAML values, so
//! `!Ref X` is compared as such and never mistaken for the string "X".

use std::collections::{BTreeSet, HashSet};

use elevate_core::archive::SETTLE;
use serde_norway::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

/// A value written in the template's own notation, e.g. `!Ref AlarmTopicArn`.
fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).expect("yaml")
}

fn resource<'t>(template: &'t Value, name: &str) -> &'t Value {
    let found = &template["Resources"][name];
    assert!(!found.is_null(), "template.yaml has no resource {name}");
    found
}

fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(String, &'t Value)> {
    let all = template["Resources"].as_mapping().expect("Resources");
    all.iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().expect("name").to_owned(), r))
        .collect()
}

/// A scalar or a list of scalars, as IAM writes `Action` and `Resource`.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value.as_sequence() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    }
}

/// The statements of every policy a function's role holds: its inline `Statement`s and those
/// of the managed policies it names with `!Ref`, under either branch of an `!If`.
fn function_statements<'t>(template: &'t Value, function: &str) -> Vec<&'t Value> {
    let mut statements = Vec::new();
    let mut policies: Vec<&Value> = resource(template, function)["Properties"]["Policies"]
        .as_sequence()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    while let Some(policy) = policies.pop() {
        let Value::Tagged(tagged) = policy else {
            statements.extend(one_or_many(&policy["Statement"]));
            continue;
        };
        if tagged.tag == "If" {
            policies.extend(tagged.value.as_sequence().expect("!If")[1..].iter());
        } else if tagged.tag == "Ref" {
            let name = tagged.value.as_str().expect("!Ref");
            if name.starts_with("AWS::") {
                continue;
            }
            let managed = resource(template, name);
            assert_eq!(
                managed["Type"].as_str(),
                Some("AWS::IAM::ManagedPolicy"),
                "{function} names {name}"
            );
            statements.extend(one_or_many(
                &managed["Properties"]["PolicyDocument"]["Statement"],
            ));
        } else {
            panic!("{function}: unexpected policy {policy:?}");
        }
    }
    statements
}

fn allows_any(statement: &Value, prefix: &str) -> bool {
    statement["Effect"].as_str() == Some("Allow")
        && one_or_many(&statement["Action"]).iter().any(|action| {
            let action = action.as_str().expect("action");
            action == "*" || action.starts_with(prefix)
        })
}

/// The schedule names (the part after the group) a function may write or read.
fn schedule_names(template: &Value, function: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for statement in function_statements(template, function) {
        if !allows_any(statement, "scheduler:") {
            continue;
        }
        for arn in one_or_many(&statement["Resource"]) {
            let arn = arn.as_str().expect("resource");
            let name = arn
                .strip_prefix(
                    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/",
                )
                .unwrap_or_else(|| panic!("{function}: scheduler resource {arn} is broader than elevate's group"));
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn each_function_reaches_only_the_schedules_its_use_cases_write() {
    let template = template();
    let names = |function| schedule_names(&template, function);
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| (*n).to_owned()).collect() };
    // request opens (and cancels) a request's time-out; it must not move or delete the end of
    // a grant, which is what a `revoke-*` permission would let its callers' bugs do.
    assert_eq!(names("RequestFunction"), set(&["timeout-*"]));
    assert_eq!(names("ApproveFunction"), set(&["timeout-*"]));
    assert_eq!(names("EscalateFunction"), set(&["revoke-*"]));
    assert_eq!(names("RevokeFunction"), set(&["revoke-*", "timeout-*"]));
}

#[test]
fn the_table_cannot_be_deleted_by_accident() {
    let template = template();
    let table = resource(&template, "Table");
    assert_eq!(
        table["Properties"]["DeletionProtectionEnabled"],
        Value::Bool(true)
    );
    assert_eq!(table["DeletionPolicy"].as_str(), Some("Retain"));
}

#[test]
fn only_elevate_functions_read_the_slack_secret() {
    let template = template();
    let policies = resources_of_type(&template, "AWS::SecretsManager::ResourcePolicy");
    assert_eq!(policies.len(), 1, "one resource policy on the Slack secret");
    let properties = &policies[0].1["Properties"];
    assert_eq!(properties["SecretId"], yaml("!Ref SlackSecretArn"));
    assert_eq!(properties["BlockPublicPolicy"], Value::Bool(true));

    // The roles of exactly the functions whose own policies read the secret.
    let readers: BTreeSet<String> = resources_of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(name, _)| {
            function_statements(&template, name).iter().any(|s| {
                allows_any(s, "secretsmanager:GetSecretValue")
                    && s["Resource"] == yaml("!Ref SlackSecretArn")
            })
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(readers.len(), 4, "readers: {readers:?}");

    let statements = one_or_many(&properties["ResourcePolicy"]["Statement"]);
    assert_eq!(statements.len(), 1);
    let deny = statements[0];
    assert_eq!(deny["Effect"].as_str(), Some("Deny"));
    assert_eq!(deny["Principal"].as_str(), Some("*"));
    // Only reading is denied: administrators keep rotating, changing and deleting the secret
    // and this policy.
    assert_eq!(
        deny["Action"].as_str(),
        Some("secretsmanager:GetSecretValue")
    );
    let excepted: HashSet<Value> =
        one_or_many(&deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
            .into_iter()
            .cloned()
            .collect();
    let expected: HashSet<Value> = readers
        .iter()
        .map(|f| yaml(&format!("!GetAtt {f}Role.Arn")))
        .collect();
    assert_eq!(excepted, expected);
}

/// The routes Slack posts to: the only ones API Gateway lets through unsigned.
const SLACK_ROUTES: [&str; 2] = ["POST /slack/commands", "POST /slack/interactions"];

/// Every `HttpApi` event of every function as (function, "METHOD /path", its event).
fn http_routes(template: &Value) -> Vec<(String, String, &Value)> {
    let mut routes = Vec::new();
    for (function, resource) in resources_of_type(template, "AWS::Serverless::Function") {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &event["Properties"];
            let key = format!(
                "{} {}",
                p["Method"].as_str().expect("Method"),
                p["Path"].as_str().expect("Path")
            );
            routes.push((function.clone(), key, p));
        }
    }
    routes
}

#[test]
fn only_the_slack_routes_skip_the_iam_authorizer_and_the_approve_function_serves_them() {
    let template = template();
    let api = &resource(&template, "Api")["Properties"];
    assert_eq!(api["Auth"]["DefaultAuthorizer"].as_str(), Some("AWS_IAM"));
    let mut unsigned = BTreeSet::new();
    for (function, key, event) in http_routes(&template) {
        assert_eq!(event["ApiId"], yaml("!Ref Api"), "{key}");
        match &event["Auth"] {
            Value::Null => {}
            auth => {
                assert_eq!(auth["Authorizer"].as_str(), Some("NONE"), "{key}: {auth:?}");
                unsigned.insert((function, key));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = SLACK_ROUTES
        .iter()
        .map(|key| ("ApproveFunction".to_owned(), (*key).to_owned()))
        .collect();
    assert_eq!(unsigned, expected);
}

#[test]
fn each_unsigned_slack_route_has_its_own_lower_throttle() {
    let template = template();
    let api = &resource(&template, "Api")["Properties"];
    let default = &api["DefaultRouteSettings"];
    // Each throttled route exists: API Gateway refuses settings of a route it does not have.
    let routes: BTreeSet<String> = http_routes(&template)
        .into_iter()
        .map(|(_, key, _)| key)
        .collect();
    let throttled: BTreeSet<String> = api["RouteSettings"]
        .as_mapping()
        .expect("RouteSettings")
        .keys()
        .map(|key| key.as_str().expect("route key").to_owned())
        .collect();
    assert!(
        throttled.is_subset(&routes),
        "{throttled:?} not in {routes:?}"
    );
    for route in SLACK_ROUTES {
        let slack = &api["RouteSettings"][route];
        for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
            let (slack, default) = (slack[limit].as_f64(), default[limit].as_f64());
            assert!(
                slack.zip(default).is_some_and(|(s, d)| s > 0.0 && s < d),
                "{route} {limit}: {slack:?}, default {default:?}"
            );
        }
    }
}

/// What a function may invoke (`lambda:InvokeFunction`), as written in the template.
fn invocable(template: &Value, function: &str) -> HashSet<Value> {
    function_statements(template, function)
        .into_iter()
        .filter(|s| allows_any(s, "lambda:InvokeFunction"))
        .flat_map(|s| one_or_many(&s["Resource"]).into_iter().cloned())
        .collect()
}

#[test]
fn approve_invokes_only_itself_escalate_revoke_and_the_hooks_and_passes_only_the_scheduler_role() {
    let template = template();
    // Its own ARN is spelled from the same name as its FunctionName (!GetAtt on itself would
    // be a circular reference).
    assert_eq!(
        resource(&template, "ApproveFunction")["Properties"]["FunctionName"],
        yaml("!Sub ${AWS::StackName}-approve")
    );
    let expected: HashSet<Value> = [
        "!Sub arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-approve",
        "!GetAtt EscalateFunction.Arn",
        "!GetAtt RevokeFunction.Arn",
        // Requests made from the Slack form ask their flow's hook: the listed hooks only.
        "!Ref RequestHookFunctionArns",
        "!GetAtt ExampleHookFunction.Arn",
    ]
    .into_iter()
    .map(yaml)
    .collect();
    assert_eq!(invocable(&template, "ApproveFunction"), expected);

    // It opens requests now, so it creates their time-outs (`timeout-*` only, asserted above)
    // and passes the scheduler's role, to the scheduler only.
    let statements = function_statements(&template, "ApproveFunction");
    let creates = statements.iter().any(|s| {
        allows_any(s, "scheduler:CreateSchedule")
            && one_or_many(&s["Resource"]).iter().all(|r| {
                r.as_str()
                    .is_some_and(|r| r.ends_with("/${ScheduleGroup}/timeout-*"))
            })
    });
    assert!(creates, "approve cannot create time-out schedules");
    let passes: Vec<&&Value> = statements
        .iter()
        .filter(|s| allows_any(s, "iam:PassRole"))
        .collect();
    assert!(!passes.is_empty());
    for pass in passes {
        assert_eq!(pass["Resource"], yaml("!GetAtt SchedulerRole.Arn"));
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"].as_str(),
            Some("scheduler.amazonaws.com")
        );
    }
    for statement in statements {
        for resource in one_or_many(&statement["Resource"]) {
            assert_ne!(resource.as_str(), Some("*"), "{statement:?}");
        }
    }
}

#[test]
fn asynchronous_work_that_fails_every_retry_lands_in_the_alarmed_queue() {
    let template = template();
    let queue = yaml("!GetAtt FailedInvocationQueue.Arn");
    let alarmed = resources_of_type(&template, "AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, alarm)| {
            alarm["Properties"]["Dimensions"][0]["Value"]
                == yaml("!GetAtt FailedInvocationQueue.QueueName")
        });
    assert!(alarmed, "no alarm on the FailedInvocationQueue");

    // approve's own follow-ups and what it hands to revoke ("End access now"); escalate's
    // failures go to revoke, which records them.
    for function in ["ApproveFunction", "RevokeFunction", "EscalateFunction"] {
        let config = &resource(&template, function)["Properties"]["EventInvokeConfig"];
        assert_eq!(
            config["MaximumRetryAttempts"].as_u64(),
            Some(2),
            "{function}"
        );
        // Both retries fit (Lambda waits about 1 and then 2 minutes), within Lambda's 6 hours.
        let age = config["MaximumEventAgeInSeconds"].as_u64().expect("age");
        assert!((300..=21_600).contains(&age), "{function}: {age}");
        let on_failure = &config["DestinationConfig"]["OnFailure"];
        let destination = &on_failure["Destination"];
        if function == "EscalateFunction" {
            assert_eq!(on_failure["Type"].as_str(), Some("Lambda"));
            assert_eq!(destination, &yaml("!GetAtt RevokeFunction.Arn"));
        } else {
            assert_eq!(on_failure["Type"].as_str(), Some("SQS"), "{function}");
            assert_eq!(destination, &queue, "{function}");
        }
    }
}

#[test]
fn only_revoke_writes_and_prunes_inline_policies_of_the_escalation_roles() {
    let template = template();
    let policy = &resource(&template, "SessionEndPolicy");
    assert_eq!(policy["Condition"].as_str(), Some("HasEscalationRoles"));
    let statements = one_or_many(&policy["Properties"]["PolicyDocument"]["Statement"]);
    let actions: BTreeSet<&str> = statements
        .iter()
        .flat_map(|s| one_or_many(&s["Action"]))
        .map(|a| a.as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "iam:GetRole",
            "iam:ListRolePolicies",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
        ])
    );
    for statement in statements {
        assert_eq!(statement["Resource"], yaml("!Ref EscalationRoleArns"));
    }

    let writers: BTreeSet<String> = resources_of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(name, _)| {
            function_statements(&template, name).iter().any(|s| {
                allows_any(s, "iam:PutRolePolicy") || allows_any(s, "iam:DeleteRolePolicy")
            })
        })
        .map(|(name, _)| name)
        .collect();
    assert_eq!(writers, BTreeSet::from(["RevokeFunction".to_owned()]));
}

#[test]
fn every_failure_alarm_notifies_the_topic_when_there_is_one() {
    let template = template();
    assert_eq!(
        template["Parameters"]["AlarmTopicArn"]["Default"].as_str(),
        Some("")
    );
    assert_eq!(
        template["Conditions"]["HasAlarmTopic"],
        yaml(r#"!Not [!Equals [!Ref AlarmTopicArn, ""]]"#)
    );

    // What each alarm watches: (namespace, metric, dimension value).
    let mut watched = HashSet::new();
    for (name, alarm) in resources_of_type(&template, "AWS::CloudWatch::Alarm") {
        assert_eq!(alarm["Condition"].as_str(), Some("HasAlarmTopic"), "{name}");
        let p = &alarm["Properties"];
        assert_eq!(p["AlarmActions"], yaml("[!Ref AlarmTopicArn]"), "{name}");
        assert_eq!(
            p["TreatMissingData"].as_str(),
            Some("notBreaching"),
            "{name}"
        );
        assert_eq!(
            p["ComparisonOperator"].as_str(),
            Some("GreaterThanThreshold"),
            "{name}"
        );
        // Any at all, except how far the archive is behind the stream: more than the time an
        // event may take to reach the archive before audit verify counts it missing.
        let threshold = if p["MetricName"].as_str() == Some("IteratorAge") {
            SETTLE.num_milliseconds() as f64
        } else {
            0.0
        };
        assert_eq!(p["Threshold"].as_f64(), Some(threshold), "{name}");
        let dimension = one_or_many(&p["Dimensions"])
            .first()
            .map(|d| d["Value"].clone())
            .unwrap_or(Value::Null);
        watched.insert((p["Namespace"].clone(), p["MetricName"].clone(), dimension));
    }

    let sqs = |queue: &str| {
        (
            yaml("AWS/SQS"),
            yaml("ApproximateNumberOfMessagesVisible"),
            yaml(&format!("!GetAtt {queue}.QueueName")),
        )
    };
    let errors = |function: &str| {
        (
            yaml("AWS/Lambda"),
            yaml("Errors"),
            yaml(&format!("!Ref {function}")),
        )
    };
    // Every queue of the template is a dead-letter queue.
    let queues = resources_of_type(&template, "AWS::SQS::Queue");
    assert_eq!(queues.len(), 2);
    for (queue, _) in &queues {
        assert!(
            watched.contains(&sqs(queue)),
            "no alarm on {queue}: {watched:#?}"
        );
    }
    for function in ["RevokeFunction", "EscalateFunction", "ArchiveFunction"] {
        assert!(
            watched.contains(&errors(function)),
            "no alarm on {function}'s errors"
        );
    }
    let archive_behind = (
        yaml("AWS/Lambda"),
        yaml("IteratorAge"),
        yaml("!Ref ArchiveFunction"),
    );
    assert!(
        watched.contains(&archive_behind),
        "no alarm on the archive's iterator age"
    );

    // Repairs: a metric filter on the revoke function's logs (reconciliation) and on
    // escalate's (an undone late escalation), with the pattern docs/contracts.md promises.
    let contracts = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/contracts.md"
    ))
    .expect("docs/contracts.md");
    let filters = resources_of_type(&template, "AWS::Logs::MetricFilter");
    for log_group in ["RevokeLogGroup", "EscalateLogGroup"] {
        let (name, filter) = filters
            .iter()
            .find(|(_, f)| f["Properties"]["LogGroupName"] == yaml(&format!("!Ref {log_group}")))
            .unwrap_or_else(|| panic!("no metric filter on {log_group}"));
        let p = &filter["Properties"];
        let pattern = p["FilterPattern"].as_str().expect("pattern");
        assert!(pattern.contains("$.fields.repair"), "{name}: {pattern}");
        assert!(
            contracts.contains(&format!("`{pattern}`")),
            "{name}: docs/contracts.md does not state {pattern}"
        );
        let metric = &p["MetricTransformations"][0];
        let repairs = (
            metric["MetricNamespace"].clone(),
            metric["MetricName"].clone(),
            Value::Null,
        );
        assert!(
            watched.contains(&repairs),
            "no alarm on {name}'s metric {repairs:?}"
        );
    }

    // Audit events changed in the table: the archive function logs each with `audit_change`.
    let (name, filter) = filters
        .iter()
        .find(|(_, f)| f["Properties"]["LogGroupName"] == yaml("!Ref ArchiveLogGroup"))
        .expect("no metric filter on ArchiveLogGroup");
    let p = &filter["Properties"];
    assert_eq!(
        p["FilterPattern"].as_str(),
        Some("{ $.fields.audit_change = * }"),
        "{name}"
    );
    let metric = &p["MetricTransformations"][0];
    let changes = (
        metric["MetricNamespace"].clone(),
        metric["MetricName"].clone(),
        Value::Null,
    );
    assert!(watched.contains(&changes), "no alarm on {name}'s metric");
    assert_eq!(watched.len(), 8, "{watched:#?}");
}

// ---------------------------------------------------------------- the audit archive

#[test]
fn the_archive_bucket_keeps_every_object_unchangeable_for_the_retention() {
    let template = template();
    let bucket = resource(&template, "ArchiveBucket");
    assert_eq!(bucket["Type"].as_str(), Some("AWS::S3::Bucket"));
    // A compliance record outlives the stack (and a locked bucket cannot be emptied anyway).
    assert_eq!(bucket["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(bucket["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = &bucket["Properties"];
    assert_eq!(p["ObjectLockEnabled"], Value::Bool(true));
    let lock = &p["ObjectLockConfiguration"];
    assert_eq!(lock["ObjectLockEnabled"].as_str(), Some("Enabled"));
    let retention = &lock["Rule"]["DefaultRetention"];
    // COMPLIANCE: not even the root user shortens it or deletes before it ends.
    assert_eq!(retention["Mode"].as_str(), Some("COMPLIANCE"));
    assert_eq!(retention["Years"], yaml("!Ref ArchiveRetentionYears"));
    assert!(retention["Days"].is_null());
    let years = &template["Parameters"]["ArchiveRetentionYears"];
    assert_eq!(years["Default"].as_u64(), Some(7));
    assert!(years["MinValue"].as_u64().is_some_and(|min| min >= 1));
    assert_eq!(
        p["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled")
    );
    assert!(
        !p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .is_null()
    );
    for block in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            p["PublicAccessBlockConfiguration"][block],
            Value::Bool(true),
            "{block}"
        );
    }

    let policies = resources_of_type(&template, "AWS::S3::BucketPolicy");
    let (_, policy) = policies
        .iter()
        .find(|(_, p)| p["Properties"]["Bucket"] == yaml("!Ref ArchiveBucket"))
        .expect("a policy on the archive bucket");
    let statements = one_or_many(&policy["Properties"]["PolicyDocument"]["Statement"]);
    let insecure = statements
        .iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"].as_str() == Some("false"))
        .expect("a statement on insecure transport");
    assert_eq!(insecure["Effect"].as_str(), Some("Deny"));
    assert_eq!(insecure["Principal"].as_str(), Some("*"));
    assert_eq!(insecure["Action"].as_str(), Some("s3:*"));
    let covered: HashSet<Value> = one_or_many(&insecure["Resource"])
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        covered,
        HashSet::from([
            yaml("!GetAtt ArchiveBucket.Arn"),
            yaml("!Sub ${ArchiveBucket.Arn}/*")
        ])
    );
    // Nobody, the function's role included, can put a new version over an archived object,
    // nor hide one behind a delete marker.
    let overwrite = statements
        .iter()
        .find(|s| s["Action"].as_str() == Some("s3:PutObject"))
        .expect("a statement on unconditional writes");
    assert_eq!(overwrite["Effect"].as_str(), Some("Deny"));
    assert_eq!(overwrite["Principal"].as_str(), Some("*"));
    assert_eq!(
        overwrite["Condition"]["Null"]["s3:if-none-match"].as_str(),
        Some("true"),
        "{overwrite:?}"
    );
    assert_eq!(
        overwrite["Resource"],
        yaml("!Sub ${ArchiveBucket.Arn}/*"),
        "{overwrite:?}"
    );
    assert!(statements
        .iter()
        .any(|s| s["Action"].as_str() == Some("s3:DeleteObject")
            && s["Effect"].as_str() == Some("Deny")));
    // No Allow in the bucket's own policy: only the function's role writes.
    assert!(statements
        .iter()
        .all(|s| s["Effect"].as_str() == Some("Deny")));

    assert_eq!(
        template["Outputs"]["ArchiveBucket"]["Value"],
        yaml("!Ref ArchiveBucket")
    );
}

#[test]
fn the_table_streams_every_change_of_an_item_with_both_images() {
    let template = template();
    let table = resource(&template, "Table");
    assert_eq!(
        table["Properties"]["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES")
    );
}

#[test]
fn the_archive_function_reads_the_audit_events_of_the_stream_in_order_and_never_gives_up() {
    let template = template();
    let mappings = resources_of_type(&template, "AWS::Lambda::EventSourceMapping");
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    let p = &mappings[0].1["Properties"];
    assert_eq!(p["FunctionName"], yaml("!Ref ArchiveFunction"));
    assert_eq!(p["EventSourceArn"], yaml("!GetAtt Table.StreamArn"));
    // From the oldest record the stream holds: nothing written before the mapping is missed.
    assert_eq!(p["StartingPosition"].as_str(), Some("TRIM_HORIZON"));
    assert_eq!(
        p["FunctionResponseTypes"],
        yaml("[ReportBatchItemFailures]")
    );
    // Retried from the failed record until it is archived, never split or skipped.
    assert_eq!(p["MaximumRetryAttempts"].as_i64(), Some(-1));
    assert_eq!(p["BisectBatchOnFunctionError"], Value::Bool(false));
    assert!(p["DestinationConfig"].is_null(), "no record is given up");
    let filters = one_or_many(&p["FilterCriteria"]["Filters"]);
    assert_eq!(filters.len(), 1);
    let pattern: serde_json::Value =
        serde_json::from_str(filters[0]["Pattern"].as_str().expect("pattern")).expect("JSON");
    assert_eq!(
        pattern,
        serde_json::json!({"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "EVT#"}]}}}})
    );

    // Declared by the mapping above, not a SAM event (which would attach
    // AWSLambdaDynamoDBExecutionRole, stream reads on "*").
    let function = resource(&template, "ArchiveFunction");
    assert!(function["Properties"]["Events"].is_null());
    assert!(function["Properties"]["Role"].is_null());
}

#[test]
fn the_archive_function_writes_once_and_reads_only_what_it_needs() {
    let template = template();
    let function = resource(&template, "ArchiveFunction");
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("elevate-archive")
    );
    assert_eq!(
        function["Properties"]["Environment"]["Variables"]["ELEVATE_ARCHIVE_BUCKET"],
        yaml("!Ref ArchiveBucket")
    );
    let statements = function_statements(&template, "ArchiveFunction");
    let mut granted: HashSet<(String, Value)> = HashSet::new();
    for statement in &statements {
        assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{statement:?}");
        assert!(statement["Condition"].is_null(), "{statement:?}");
        for action in one_or_many(&statement["Action"]) {
            for resource in one_or_many(&statement["Resource"]) {
                granted.insert((
                    action.as_str().expect("action").to_owned(),
                    resource.clone(),
                ));
            }
        }
    }
    let mut expected: HashSet<(String, Value)> = HashSet::new();
    for folder in ["events", "changes", "anchors"] {
        for action in ["s3:PutObject", "s3:GetObject"] {
            expected.insert((
                action.to_owned(),
                yaml(&format!("!Sub ${{ArchiveBucket.Arn}}/{folder}/*")),
            ));
        }
    }
    expected.insert(("s3:ListBucket".into(), yaml("!GetAtt ArchiveBucket.Arn")));
    for action in ["dynamodb:Query", "dynamodb:Scan"] {
        expected.insert((action.into(), yaml("!Sub ${Table.Arn}/index/by_day")));
    }
    for action in [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ] {
        expected.insert((action.into(), yaml("!Sub ${Table.Arn}/stream/*")));
    }
    // Nothing else: no delete, no table writes, no Slack secret, no schedules.
    assert_eq!(granted, expected);
}

#[test]
fn anchors_are_scheduled_with_the_archive_function_s_input_and_role() {
    let template = template();
    let schedule = resource(&template, "AnchorSchedule");
    assert_eq!(schedule["Type"].as_str(), Some("AWS::Scheduler::Schedule"));
    let p = &schedule["Properties"];
    assert_eq!(
        p["ScheduleExpression"],
        yaml("!Sub rate(${AnchorIntervalMinutes} minutes)")
    );
    let interval = &template["Parameters"]["AnchorIntervalMinutes"];
    assert_eq!(interval["Default"].as_u64(), Some(60));
    // `rate(1 minutes)` is no expression, and anchors settle for five minutes anyway.
    assert!(interval["MinValue"].as_u64().is_some_and(|min| min >= 2));
    let target = &p["Target"];
    assert_eq!(target["Arn"], yaml("!GetAtt ArchiveFunction.Arn"));
    let input: serde_json::Value =
        serde_json::from_str(target["Input"].as_str().expect("input")).expect("JSON");
    let expected: serde_json::Value =
        serde_json::from_str(elevate_archive::ANCHOR_INPUT).expect("JSON");
    assert_eq!(input, expected);

    // Its own role, invoking the archive function only. The role the functions pass to their
    // schedules cannot invoke it.
    assert_eq!(target["RoleArn"], yaml("!GetAtt AnchorSchedulerRole.Arn"));
    let invokes = |role: &str| -> HashSet<Value> {
        let policies = &resource(&template, role)["Properties"]["Policies"];
        one_or_many(policies)
            .into_iter()
            .flat_map(|p| one_or_many(&p["PolicyDocument"]["Statement"]))
            .filter(|s| allows_any(s, "lambda:InvokeFunction"))
            .flat_map(|s| one_or_many(&s["Resource"]).into_iter().cloned())
            .collect()
    };
    assert_eq!(
        invokes("AnchorSchedulerRole"),
        HashSet::from([yaml("!GetAtt ArchiveFunction.Arn")])
    );
    assert!(!invokes("SchedulerRole").contains(&yaml("!GetAtt ArchiveFunction.Arn")));
}

#[test]
fn make_builds_every_function_of_the_template() {
    let template = template();
    let binaries: BTreeSet<String> = resources_of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, f)| {
            assert_eq!(
                f["Metadata"]["BuildMethod"].as_str(),
                Some("rust-cargolambda"),
                "{name}"
            );
            f["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} names no binary"))
                .to_owned()
        })
        .collect();
    assert!(binaries.contains("elevate-archive"), "{binaries:?}");
    let makefile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Makefile"))
        .expect("Makefile");
    let built: BTreeSet<String> = makefile
        .lines()
        .find_map(|line| line.strip_prefix("LAMBDA_BINS := "))
        .expect("LAMBDA_BINS")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(built, binaries);
}

#[test]
fn request_invokes_only_escalate_and_the_listed_request_hooks() {
    let template = template();
    let expected: HashSet<Value> = [
        "!GetAtt EscalateFunction.Arn",
        "!Ref RequestHookFunctionArns",
        "!GetAtt ExampleHookFunction.Arn",
    ]
    .into_iter()
    .map(yaml)
    .collect();
    assert_eq!(invocable(&template, "RequestFunction"), expected);
    // The hooks' policies exist only when there are hooks to invoke.
    for (policy, condition) in [
        ("RequestHooksPolicy", "HasRequestHooks"),
        ("ExampleHookInvokePolicy", "CreateExampleHook"),
    ] {
        assert_eq!(resource(&template, policy)["Condition"], yaml(condition));
    }
}

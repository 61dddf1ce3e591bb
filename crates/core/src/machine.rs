//! The state machine of a request. Plain synchronous code: it takes the current request, what
//! is asked, who asks and `now`, and returns the next request and its audit event, or a typed
//! refusal. Persisting both atomically (conditioned on the old state) is the store's job.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::{Action, AuditEvent, EventDraft, GENESIS};
use crate::model::{
    Actor, Approval, AutoDecider, By, Extension, MessageRef, Reminders, Request, RequestId,
    SessionsEnded, State, Terms,
};
use crate::names::{FlowName, PersonName, TargetName};

/// What a caller asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve {
        reason: Option<String>,
    },
    Deny {
        reason: Option<String>,
    },
    Cancel,
    TimeOut,
    Activate,
    Expire,
    Revoke {
        reason: Option<String>,
    },
    Fail {
        error: String,
    },
    /// Reconciliation put the access back in line with the grant; the state stays as it is.
    Repair {
        reason: String,
    },
    /// The requester asks for `by` more on their ACTIVE grant.
    AskExtension {
        by: Duration,
        reason: String,
    },
    /// An approval of the extension asked for; the last one needed moves the expiry.
    ApproveExtension {
        reason: Option<String>,
    },
    DenyExtension {
        reason: Option<String>,
    },
    /// An approver acknowledges a break-glass grant; the state stays as it is.
    Review {
        reason: Option<String>,
    },
    /// The break-glass grant's review time passed unacknowledged; the state stays.
    ReviewOverdue,
    /// Nobody answered by `due`: the approvers are reminded; the request stays PENDING.
    Remind {
        due: DateTime<Utc>,
    },
    /// Nobody answered by `due`: the backup approvers are asked (the request posted again as
    /// `message`, in the backup channel, when there is one); it stays PENDING.
    AskBackup {
        due: DateTime<Utc>,
        message: Option<MessageRef>,
        reason: String,
    },
}

impl Command {
    pub fn action(&self) -> Action {
        match self {
            Command::Approve { .. } => Action::Approve,
            Command::Deny { .. } => Action::Deny,
            Command::Cancel => Action::Cancel,
            Command::TimeOut => Action::TimeOut,
            Command::Activate => Action::Activate,
            Command::Expire => Action::Expire,
            Command::Revoke { .. } => Action::Revoke,
            Command::Fail { .. } => Action::Fail,
            Command::Repair { .. } => Action::Repair,
            Command::AskExtension { .. } => Action::AskExtension,
            Command::ApproveExtension { .. } => Action::ApproveExtension,
            Command::DenyExtension { .. } => Action::DenyExtension,
            Command::Review { .. } => Action::Review,
            Command::ReviewOverdue => Action::ReviewOverdue,
            Command::Remind { .. } => Action::Remind,
            Command::AskBackup { .. } => Action::AskBackup,
        }
    }
}

/// Which actors may issue an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    AnyPerson,
    Requester,
    System,
    PersonOrSystem,
    /// A person, or a rule or hook that decides on its own (`elevate:rule:<name>`,
    /// `elevate:hook:<function>`).
    PersonOrAuto,
    /// A person, or a request hook (`elevate:hook:<function>`): rules only approve.
    PersonOrHook,
    /// A person, or an auto-approval rule (`elevate:rule:<name>`): hooks are asked only at
    /// submission, and break-glass only activates.
    PersonOrRule,
}

/// The transition table: the one place that says which moves exist.
const TABLE: &[(State, Action, State, Who)] = &[
    // An approval that is not yet the last one needed leaves the request PENDING; an
    // auto-approval rule or a request hook (elevate itself) approves at once. A hook may deny.
    (
        State::Pending,
        Action::Approve,
        State::Approved,
        Who::PersonOrAuto,
    ),
    (
        State::Pending,
        Action::Deny,
        State::Denied,
        Who::PersonOrHook,
    ),
    (
        State::Pending,
        Action::Cancel,
        State::Cancelled,
        Who::Requester,
    ),
    (
        State::Pending,
        Action::TimeOut,
        State::TimedOut,
        Who::System,
    ),
    // Nobody answered for a while: the request is brought up again, still PENDING.
    (State::Pending, Action::Remind, State::Pending, Who::System),
    (
        State::Pending,
        Action::AskBackup,
        State::Pending,
        Who::System,
    ),
    (
        State::Approved,
        Action::Activate,
        State::Active,
        Who::System,
    ),
    (State::Approved, Action::Fail, State::Failed, Who::System),
    (State::Active, Action::Expire, State::Expired, Who::System),
    (
        State::Active,
        Action::Revoke,
        State::Revoked,
        Who::PersonOrSystem,
    ),
    // Extensions keep the grant ACTIVE; only its expiry moves.
    (
        State::Active,
        Action::AskExtension,
        State::Active,
        Who::Requester,
    ),
    (
        State::Active,
        Action::ApproveExtension,
        State::Active,
        Who::PersonOrRule,
    ),
    (
        State::Active,
        Action::DenyExtension,
        State::Active,
        Who::AnyPerson,
    ),
    // A break-glass grant is reviewed (or found unreviewed) whatever became of it since.
    (
        State::Approved,
        Action::Review,
        State::Approved,
        Who::AnyPerson,
    ),
    (
        State::Approved,
        Action::ReviewOverdue,
        State::Approved,
        Who::System,
    ),
    (State::Active, Action::Review, State::Active, Who::AnyPerson),
    (
        State::Active,
        Action::ReviewOverdue,
        State::Active,
        Who::System,
    ),
    (
        State::Expired,
        Action::Review,
        State::Expired,
        Who::AnyPerson,
    ),
    (
        State::Expired,
        Action::ReviewOverdue,
        State::Expired,
        Who::System,
    ),
    (
        State::Revoked,
        Action::Review,
        State::Revoked,
        Who::AnyPerson,
    ),
    (
        State::Revoked,
        Action::ReviewOverdue,
        State::Revoked,
        Who::System,
    ),
    (State::Failed, Action::Review, State::Failed, Who::AnyPerson),
    (
        State::Failed,
        Action::ReviewOverdue,
        State::Failed,
        Who::System,
    ),
    // A failed grant is swept again: once its access is confirmed gone it ends.
    (State::Failed, Action::Expire, State::Expired, Who::System),
    (
        State::Failed,
        Action::Revoke,
        State::Revoked,
        Who::PersonOrSystem,
    ),
];

/// The target state of `action` from `from`, if that edge exists.
pub fn next_state(from: State, action: Action) -> Option<State> {
    TABLE
        .iter()
        .find(|(f, a, _, _)| *f == from && *a == action)
        .map(|(_, _, to, _)| *to)
}

/// A refused transition. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {action} a request that is {state}")]
    NotAllowed { state: State, action: Action },
    #[error("only the requester may {action} this request")]
    NotRequester { action: Action },
    #[error("{action} is done by elevate itself, not by a person")]
    SystemOnly { action: Action },
    #[error("{action} needs a person, not an elevate component")]
    PersonOnly { action: Action },
    #[error("too early to {action}: due at {due}")]
    NotYetDue { action: Action, due: DateTime<Utc> },
    #[error(
        "{person} has already approved this; it needs {required} approvals by different approvers"
    )]
    AlreadyApproved { person: String, required: u32 },
    #[error("no extension of this grant is waiting for approval")]
    NoExtension,
    #[error("an extension of this grant is already waiting for approval; it is approved or denied first")]
    ExtensionPending,
    #[error("the grant ended at {at}; request access again instead")]
    GrantOver { at: DateTime<Utc> },
    #[error("this is not a break-glass grant: there is nothing to review")]
    NotBreakGlass,
    #[error("this break-glass grant was already reviewed by {by}")]
    AlreadyReviewed { by: String },
    #[error("{action} was already done on this request")]
    AlreadyReminded { action: Action },
}

/// The result of an accepted transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub request: Request,
    pub event: AuditEvent,
}

impl Transition {
    /// Records on the request and on its (resealed) event how the grant's live role sessions
    /// were ended.
    pub fn with_sessions_ended(mut self, sessions: SessionsEnded) -> Self {
        self.request.sessions_ended = Some(sessions);
        self.event.sessions = Some(sessions);
        self.event.hash = self.event.computed_hash();
        self.request.audit_head.clone_from(&self.event.hash);
        self
    }
}

/// What a new request is made of; validated against its flow before it gets here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub flow: FlowName,
    pub target: TargetName,
    pub requester: PersonName,
    pub reason: String,
    pub duration: Duration,
    pub pending_timeout: Duration,
    /// How many distinct approvers must approve.
    pub approvals_required: u32,
    /// What the grant will give, as the config says at the moment of the request.
    pub terms: Terms,
}

/// Creates a PENDING request and its first audit event, which carries the grant's terms.
/// `principal` is the authenticated caller behind the requester.
pub fn open(
    id: RequestId,
    new: NewRequest,
    principal: &str,
    now: DateTime<Utc>,
) -> (Request, AuditEvent) {
    let event = EventDraft {
        request_id: id.clone(),
        seq: 1,
        at: now,
        actor: Actor::person(new.requester.as_str()),
        principal: Some(principal.to_owned()),
        action: Action::Request,
        from: None,
        to: State::Pending,
        reason: Some(new.reason.clone()),
        terms: Some(new.terms.clone()),
        prev_hash: GENESIS.to_owned(),
    }
    .seal();
    let request = Request {
        id,
        flow: new.flow,
        target: new.target,
        requester: new.requester,
        terms: Some(new.terms),
        reason: new.reason,
        duration: new.duration,
        state: State::Pending,
        created_at: now,
        pending_until: now + chrono_duration(new.pending_timeout),
        decided_at: None,
        decided_by: None,
        decision_reason: None,
        activated_at: None,
        expires_at: None,
        ended_at: None,
        ended_by: None,
        kept_access_for: None,
        sessions_ended: None,
        failure: None,
        message: None,
        approvals_required: new.approvals_required.max(1),
        approvals: Vec::new(),
        channel: None,
        extension: None,
        break_glass: None,
        reminders: None,
        extended: Duration::ZERO,
        audit_seq: event.seq,
        audit_head: event.hash.clone(),
    };
    (request, event)
}

/// Applies `command` by `by` at `now` to `request`.
pub fn apply(
    request: &Request,
    command: Command,
    by: &By,
    now: DateTime<Utc>,
) -> Result<Transition, TransitionError> {
    let actor = &by.actor;
    let action = command.action();
    let from = request.state;
    // A repair records what reconciliation did to the access; it is not a move.
    let (to, who) = if action == Action::Repair {
        (from, Who::System)
    } else {
        TABLE
            .iter()
            .find(|(f, a, _, _)| *f == from && *a == action)
            .map(|(_, _, to, who)| (*to, *who))
            .ok_or(TransitionError::NotAllowed {
                state: from,
                action,
            })?
    };

    match (who, actor) {
        (Who::System, Actor::Person(_)) => return Err(TransitionError::SystemOnly { action }),
        // Of elevate's components, only an auto-approval rule or a request hook decides.
        (Who::PersonOrAuto, Actor::System(_)) if actor.auto_decider().is_none() => {
            return Err(TransitionError::PersonOnly { action })
        }
        (Who::PersonOrHook, Actor::System(_))
            if !matches!(actor.auto_decider(), Some(AutoDecider::Hook(_))) =>
        {
            return Err(TransitionError::PersonOnly { action })
        }
        (Who::PersonOrRule, Actor::System(_))
            if !matches!(actor.auto_decider(), Some(AutoDecider::Rule(_))) =>
        {
            return Err(TransitionError::PersonOnly { action })
        }
        (Who::AnyPerson | Who::Requester, Actor::System(_)) => {
            return Err(TransitionError::PersonOnly { action })
        }
        (Who::Requester, Actor::Person(name)) if *name != request.requester => {
            return Err(TransitionError::NotRequester { action })
        }
        _ => {}
    }

    // Only a break-glass request is approved as one, by its requester's word alone.
    if matches!(actor.auto_decider(), Some(AutoDecider::BreakGlass))
        && request.break_glass.is_none()
    {
        return Err(TransitionError::NotBreakGlass);
    }

    let mut next = request.clone();
    next.state = to;
    let mut action = action;
    let mut reason = None;
    let mut extend_by = None;
    let required = request.approvals_required.max(1);
    match command {
        Command::Approve { reason: why } => {
            let last = add_approval(&mut next.approvals, actor, now, required)?;
            if last {
                next.decided_at = Some(now);
                next.decided_by = Some(actor.to_string());
                next.decision_reason = why.clone();
            } else {
                next.state = State::Pending;
            }
            reason = why;
        }
        Command::Deny { reason: why } => {
            next.decided_at = Some(now);
            next.decided_by = Some(actor.to_string());
            next.decision_reason = why.clone();
            reason = why;
        }
        Command::Cancel => {
            next.decided_at = Some(now);
            next.decided_by = actor.person_name().map(str::to_owned);
        }
        Command::TimeOut => {
            if now < request.pending_until {
                return Err(TransitionError::NotYetDue {
                    action,
                    due: request.pending_until,
                });
            }
            next.decided_at = Some(now);
        }
        Command::Activate => {
            next.activated_at = Some(now);
            next.expires_at = Some(now + chrono_duration(request.duration));
        }
        // An extension still waiting when the grant ends is moot.
        Command::Expire => {
            if let Some(due) = request.expires_at.filter(|due| now < *due) {
                return Err(TransitionError::NotYetDue { action, due });
            }
            next.ended_at = Some(now);
            next.extension = None;
        }
        Command::Revoke { reason: why } => {
            next.ended_at = Some(now);
            next.ended_by = Some(actor.to_string());
            next.extension = None;
            reason = why;
        }
        Command::Fail { error } => {
            next.failure = Some(error.clone());
            reason = Some(error);
        }
        Command::Repair { reason: why } => reason = Some(why),
        Command::AskExtension {
            by: more,
            reason: why,
        } => {
            still_running(request, now)?;
            if request.extension.is_some() {
                return Err(TransitionError::ExtensionPending);
            }
            next.extension = Some(Extension {
                by: more,
                reason: why.clone(),
                asked_at: now,
                approvals: Vec::new(),
            });
            extend_by = Some(more.as_secs());
            reason = Some(why);
        }
        Command::ApproveExtension { reason: why } => {
            still_running(request, now)?;
            let Some(extension) = next.extension.as_mut() else {
                return Err(TransitionError::NoExtension);
            };
            let last = add_approval(&mut extension.approvals, actor, now, required)?;
            extend_by = Some(extension.by.as_secs());
            if last {
                let more = extension.by;
                action = Action::Extend;
                next.extension = None;
                next.duration += more;
                next.extended += more;
                next.expires_at = request.expires_at.map(|at| at + chrono_duration(more));
            }
            reason = why;
        }
        Command::DenyExtension { reason: why } => {
            still_running(request, now)?;
            let Some(extension) = next.extension.take() else {
                return Err(TransitionError::NoExtension);
            };
            extend_by = Some(extension.by.as_secs());
            reason = why;
        }
        Command::Review { reason: why } => {
            let Some(review) = next.break_glass.as_mut() else {
                return Err(TransitionError::NotBreakGlass);
            };
            if let Some(by) = &review.reviewed_by {
                return Err(TransitionError::AlreadyReviewed { by: by.clone() });
            }
            review.reviewed_by = Some(actor.to_string());
            review.reviewed_at = Some(now);
            reason = why;
        }
        Command::ReviewOverdue => {
            let Some(review) = next.break_glass.as_mut() else {
                return Err(TransitionError::NotBreakGlass);
            };
            if let Some(by) = &review.reviewed_by {
                return Err(TransitionError::AlreadyReviewed { by: by.clone() });
            }
            if review.unreviewed {
                return Err(TransitionError::NotAllowed {
                    state: from,
                    action,
                });
            }
            if now < review.review_by {
                return Err(TransitionError::NotYetDue {
                    action,
                    due: review.review_by,
                });
            }
            review.unreviewed = true;
        }
        Command::Remind { due } => {
            let reminders = next.reminders.get_or_insert_with(Reminders::default);
            // Once the backups are asked, an earlier reminder is moot.
            if reminders.reminded_at.is_some() || reminders.backup_asked_at.is_some() {
                return Err(TransitionError::AlreadyReminded { action });
            }
            if now < due {
                return Err(TransitionError::NotYetDue { action, due });
            }
            reminders.reminded_at = Some(now);
        }
        Command::AskBackup {
            due,
            message,
            reason: why,
        } => {
            let reminders = next.reminders.get_or_insert_with(Reminders::default);
            if reminders.backup_asked_at.is_some() {
                return Err(TransitionError::AlreadyReminded { action });
            }
            if now < due {
                return Err(TransitionError::NotYetDue { action, due });
            }
            reminders.backup_asked_at = Some(now);
            reminders.backup_message = message;
            reason = Some(why);
        }
    }
    let to = next.state;

    let event = EventDraft {
        request_id: request.id.clone(),
        seq: request.audit_seq + 1,
        at: now,
        actor: actor.clone(),
        principal: Some(by.principal.clone()),
        action,
        from: Some(from),
        to,
        reason,
        terms: None,
        prev_hash: request.audit_head.clone(),
    }
    .seal();
    let event = match extend_by {
        Some(secs) => {
            let mut event = event;
            event.extend_by = Some(secs);
            event.hash = event.computed_hash();
            event
        }
        None => event,
    };
    next.audit_seq = event.seq;
    next.audit_head = event.hash.clone();
    Ok(Transition {
        from,
        request: next,
        event,
    })
}

/// Adds `actor`'s approval to `approvals`; whether it is the last one needed. A rule
/// approves the whole of it; people count until `required` different ones have, and the same
/// person twice is refused.
fn add_approval(
    approvals: &mut Vec<Approval>,
    actor: &Actor,
    now: DateTime<Utc>,
    required: u32,
) -> Result<bool, TransitionError> {
    if let Actor::Person(name) = actor {
        if approvals.iter().any(|a| a.by == *name) {
            return Err(TransitionError::AlreadyApproved {
                person: name.clone(),
                required,
            });
        }
    }
    approvals.push(Approval {
        by: actor.to_string(),
        at: now,
    });
    Ok(actor.person_name().is_none() || approvals.len() >= required as usize)
}

/// An extension is asked for and approved while the grant runs, never after its expiry.
fn still_running(request: &Request, now: DateTime<Utc>) -> Result<(), TransitionError> {
    match request.expires_at {
        Some(at) if at <= now => Err(TransitionError::GrantOver { at }),
        _ => Ok(()),
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

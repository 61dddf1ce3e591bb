//! The bench's elevate.toml: many requesters, so that every grant is a distinct IAM user whose
//! membership comes and goes on its own, two approvers (so an Approve can be clicked twice by
//! two people at the same moment) and one flow whose cap allows the short grants of the bench.

use std::fmt::Write as _;

/// The flow every bench request is made on.
pub const FLOW: &str = "bench";
/// The flow's only target.
pub const TARGET: &str = "bench";
/// The IAM group the target grants by membership.
pub const GROUP: &str = "ElevateBench";
/// The Slack channel the requests are announced in.
pub const CHANNEL: &str = "C0BENCH01";
/// The approvers of the flow, in the order of the file.
pub const APPROVERS: [&str; 2] = ["approver1", "approver2"];
/// May export the audit trail.
pub const AUDITOR: &str = "auditor";

/// What the generated file is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchConfig {
    /// `user001` … `userNNN`.
    pub requesters: usize,
    /// The flow's `max_duration`, as elevate.toml writes it.
    pub max_duration: String,
    /// The flow's `pending_timeout`.
    pub pending_timeout: String,
}

impl BenchConfig {
    pub fn new(requesters: usize) -> Self {
        BenchConfig {
            requesters,
            max_duration: "15m".to_owned(),
            pending_timeout: "30m".to_owned(),
        }
    }

    /// The name of the `n`-th requester, counting from 1.
    pub fn requester(n: usize) -> String {
        format!("user{n:03}")
    }

    /// Every requester, in order.
    pub fn requester_names(&self) -> Vec<String> {
        (1..=self.requesters).map(Self::requester).collect()
    }

    /// The Slack user id of a person of the file.
    pub fn slack_id(name: &str) -> String {
        format!("U0{}", name.to_ascii_uppercase())
    }

    /// The elevate.toml text.
    pub fn toml(&self) -> String {
        let mut out = String::from(
            "# Written by elevate-bench: one IAM user per requester, two approvers, one flow.\n",
        );
        let _ = writeln!(out, "auditors = [\"{AUDITOR}\"]");
        let people = self
            .requester_names()
            .into_iter()
            .chain(APPROVERS.iter().map(|a| (*a).to_owned()))
            .chain(std::iter::once(AUDITOR.to_owned()));
        for name in people {
            let _ = write!(
                out,
                "\n[[people]]\nname = \"{name}\"\niam_user = \"{name}\"\nslack_id = \"{}\"\nemail = \"{name}@bench.example\"\n",
                Self::slack_id(&name)
            );
        }
        let _ = write!(
            out,
            "\n[[flows]]\nname = \"{FLOW}\"\ndescription = \"Benchmark grants: membership of {GROUP}\"\n\
             max_duration = \"{}\"\nreason_required = false\nallow_self_approval = false\n\
             pending_timeout = \"{}\"\n\n[flows.approvers]\nchannel = \"{CHANNEL}\"\npeople = [{}]\n\n\
             [[flows.targets]]\nname = \"{TARGET}\"\ntype = \"iam_group\"\ngroup = \"{GROUP}\"\n",
            self.max_duration,
            self.pending_timeout,
            APPROVERS
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_generated_file_is_a_valid_config() {
        let config = elevate_core::Config::parse(&BenchConfig::new(600).toml()).expect("valid");
        assert_eq!(config.people.len(), 600 + APPROVERS.len() + 1);
        let flow = config.flow(FLOW).expect("flow");
        assert_eq!(flow.approvers.people, APPROVERS);
        assert_eq!(flow.approvers.channel, CHANNEL);
        assert_eq!(flow.max_duration, Duration::from_secs(15 * 60));
        assert!(!flow.allow_self_approval);
        let user = config.person("user042").expect("user042");
        assert_eq!(user.iam_user, "user042");
        assert_eq!(user.slack_id, "U0USER042");
        assert!(config.is_auditor(AUDITOR));
    }
}

//! The in-memory [`Directory`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::config::Person;
use crate::ports::{Directory, DirectoryError};

use super::{injected, lock, take_failure};

#[derive(Default)]
struct DirectoryInner {
    /// Lower-cased email → user id.
    users: BTreeMap<String, String>,
    /// Group display name → (group id, member user ids).
    groups: BTreeMap<String, (String, BTreeSet<String>)>,
    fail: u32,
    calls: u32,
}

/// [`Directory`] in memory: users by email and groups by display name, each given a made-up
/// id. Memberships are read on every call, as the real directory is.
#[derive(Default)]
pub struct FakeDirectory {
    inner: Mutex<DirectoryInner>,
}

impl FakeDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user for `email` (id `user-<email>`).
    pub fn add_user(&self, email: &str) {
        let email = email.to_ascii_lowercase();
        lock(&self.inner)
            .users
            .insert(email.clone(), format!("user-{email}"));
    }

    /// Removes the user of `email` (and so their memberships).
    pub fn remove_user(&self, email: &str) {
        let mut inner = lock(&self.inner);
        if let Some(id) = inner.users.remove(&email.to_ascii_lowercase()) {
            for (_, members) in inner.groups.values_mut() {
                members.remove(&id);
            }
        }
    }

    /// Creates the group `name` (when new) and puts the users of `emails` in it (each made a
    /// user first when they are not one).
    pub fn add_to_group(&self, name: &str, emails: &[&str]) {
        for email in emails {
            if !lock(&self.inner)
                .users
                .contains_key(&email.to_ascii_lowercase())
            {
                self.add_user(email);
            }
        }
        let mut inner = lock(&self.inner);
        let ids: Vec<String> = emails
            .iter()
            .filter_map(|e| inner.users.get(&e.to_ascii_lowercase()).cloned())
            .collect();
        let group = inner
            .groups
            .entry(name.to_owned())
            .or_insert_with(|| (format!("group-{name}"), BTreeSet::new()));
        group.1.extend(ids);
    }

    /// Takes the user of `email` out of the group `name`.
    pub fn remove_from_group(&self, name: &str, email: &str) {
        let mut inner = lock(&self.inner);
        let Some(id) = inner.users.get(&email.to_ascii_lowercase()).cloned() else {
            return;
        };
        if let Some((_, members)) = inner.groups.get_mut(name) {
            members.remove(&id);
        }
    }

    /// The next `n` calls fail as unavailable.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).fail = n;
    }

    /// Calls answered or failed so far.
    pub fn calls(&self) -> u32 {
        lock(&self.inner).calls
    }

    fn call(&self) -> Result<std::sync::MutexGuard<'_, DirectoryInner>, DirectoryError> {
        let mut inner = lock(&self.inner);
        inner.calls += 1;
        if take_failure(&mut inner.fail) {
            return Err(DirectoryError::Unavailable(injected("directory")));
        }
        Ok(inner)
    }
}

#[async_trait]
impl Directory for FakeDirectory {
    async fn user_id(&self, person: &Person) -> Result<Option<String>, DirectoryError> {
        let inner = self.call()?;
        Ok(inner.users.get(&person.email.to_ascii_lowercase()).cloned())
    }

    async fn group_id(&self, name: &str) -> Result<Option<String>, DirectoryError> {
        let inner = self.call()?;
        Ok(inner.groups.get(name).map(|(id, _)| id.clone()))
    }

    async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, DirectoryError> {
        let inner = self.call()?;
        Ok(inner
            .groups
            .values()
            .filter(|(_, members)| members.contains(user_id))
            .map(|(id, _)| id.clone())
            .collect())
    }
}

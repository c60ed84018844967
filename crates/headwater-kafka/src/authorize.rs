//! Authorization of Kafka requests. The decisions come from the node (see [`Authorizer`]); the
//! API modules apply them the way Kafka's own authorizer does, so clients react as they would
//! to a Kafka broker:
//!
//! - a refused topic is answered per partition with TOPIC_AUTHORIZATION_FAILED and left out of
//!   the request the handler sees (so it is never auto-created, written or read);
//! - a refused group is answered with GROUP_AUTHORIZATION_FAILED;
//! - a refused node-wide change (a broker config) is answered CLUSTER_AUTHORIZATION_FAILED;
//! - a listing (every topic's metadata, every group) shows only what the caller may describe,
//!   without an error, as Kafka does.
//!
//! Each API module says what its request needs ([`Api::authorize`](crate::apis::Api::authorize))
//! and how refusals go back into its response ([`Api::merge`](crate::apis::Api::merge)); this
//! module holds what they share: the [`Authorizer`] the node plugs in, the [`Guard`] that checks
//! one caller's request and reports every refusal that reaches the client to
//! [`Authorizer::refused`] for the audit trail, and the typed [`Refused`] parts.

use std::sync::Arc;

use headwater_auth::{Denied, Principal, TopicOp, Users};
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

/// What the node decides about a principal's Kafka requests, and where refusals go.
///
/// Given in [`Checks`](crate::Checks) when the broker is built; without one, clients do
/// not sign in and every request is allowed.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The principals that may sign in, and how.
    fn users(&self) -> &Arc<Users>;
    /// Whether `who` may do `op` on `topic`.
    fn topic(&self, who: &Principal, op: TopicOp, topic: &str) -> Result<(), Denied>;
    /// Whether `who` may use the consumer group `group` (join it, commit and read its offsets,
    /// describe or delete it).
    fn group(&self, who: &Principal, group: &str) -> Result<(), Denied>;
    /// Whether `who` may make a node-wide change (broker configs); `what` names it.
    fn node_wide(&self, who: &Principal, what: &str) -> Result<(), Denied>;
    /// Whether `key` of `topic` (a topic config, or `partitions`) may change over Kafka at all:
    /// not where a manifest sets it.
    fn setting(&self, topic: &str, key: &str) -> Result<(), Denied>;
    /// A refusal the client was told about: `action` on `target`, and why.
    fn refused(&self, who: &Principal, action: &str, target: &str, why: &Denied);
    /// A failed sign-in: the user name the client gave, its mechanism and address.
    fn sign_in_failed(&self, user: &str, mechanism: &str, peer: &str, why: &str);
    /// How long sign-ins as `user` from `peer` (`host:port`) are refused without checking
    /// them, after too many failed; `None` when they are checked.
    fn sign_in_cool_down(&self, user: &str, peer: &str) -> Option<std::time::Duration>;
}

/// A part of a request refused before it was handled, answered in its response afterwards.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refused {
    /// A topic and the partitions the request named (none for topic-level requests).
    Topic {
        name: TopicName,
        partitions: Vec<i32>,
        why: Denied,
    },
    /// A consumer group.
    Group { id: GroupId, why: Denied },
    /// A node-wide resource: a config resource of `resource_type` (a broker's) named `name`.
    Cluster {
        resource_type: i8,
        name: StrBytes,
        why: Denied,
    },
}

impl Refused {
    /// The refused topic, its partitions and why, if a topic was refused.
    pub(crate) fn into_topic(self) -> Option<(TopicName, Vec<i32>, Denied)> {
        match self {
            Refused::Topic {
                name,
                partitions,
                why,
            } => Some((name, partitions, why)),
            _ => None,
        }
    }

    /// The refused group, if a group was refused.
    pub(crate) fn into_group(self) -> Option<GroupId> {
        match self {
            Refused::Group { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// What to do with a request after its check.
pub(crate) enum Checked<R: Request> {
    /// Handle what is left of the request; answer the refused parts in its response.
    Handle(R, Vec<Refused>),
    /// Refused as a whole: this is the answer.
    Answer(R::Response),
}

impl<R: Request> Checked<R> {
    /// A request allowed or refused as a whole by `decision`: handled, or answered with
    /// `refused()`.
    pub(crate) fn whole(
        decision: Result<(), Denied>,
        request: R,
        refused: impl FnOnce() -> R::Response,
    ) -> Self {
        match decision {
            Ok(()) => Checked::Handle(request, Vec::new()),
            Err(_) => Checked::Answer(refused()),
        }
    }
}

impl<R: Request<Response: crate::apis::Coded>> Checked<R> {
    /// A request to one group: handled if the caller may use `group`, else answered
    /// GROUP_AUTHORIZATION_FAILED as a whole.
    pub(crate) fn for_group(guard: &Guard<'_>, group: &str, request: R) -> Self {
        Self::whole(guard.group(group), request, || {
            crate::apis::Coded::coded(kafka_protocol::ResponseError::GroupAuthorizationFailed)
        })
    }
}

/// Whether the topic `name` (named with `partitions`) is kept, as `decided`; a refusal goes
/// into `refused`.
fn keep(
    name: &TopicName,
    partitions: Vec<i32>,
    decided: Result<(), Denied>,
    refused: &mut Vec<Refused>,
) -> bool {
    match decided {
        Ok(()) => true,
        Err(why) => {
            refused.push(Refused::Topic {
                name: name.clone(),
                partitions,
                why,
            });
            false
        }
    }
}

/// One answer per refused topic of a request (its name, partitions and why), for its response.
pub(crate) fn answer_topics<T>(
    refused: Vec<Refused>,
    mut answer: impl FnMut(TopicName, Vec<i32>, Denied) -> T,
) -> impl Iterator<Item = T> {
    refused
        .into_iter()
        .filter_map(Refused::into_topic)
        .map(move |(name, partitions, why)| answer(name, partitions, why))
}

/// One answer per refused group of a request, for its response.
pub(crate) fn answer_groups<T>(
    refused: Vec<Refused>,
    answer: impl FnMut(GroupId) -> T,
) -> impl Iterator<Item = T> {
    refused
        .into_iter()
        .filter_map(Refused::into_group)
        .map(answer)
}

/// One signed-in caller's request, checked against the [`Authorizer`].
pub(crate) struct Guard<'a> {
    authorizer: &'a dyn Authorizer,
    who: &'a Principal,
    /// The request's version: error messages exist only in some versions of each response.
    pub(crate) version: i16,
}

impl<'a> Guard<'a> {
    pub(crate) fn new(authorizer: &'a dyn Authorizer, who: &'a Principal, version: i16) -> Self {
        Guard {
            authorizer,
            who,
            version,
        }
    }

    /// Whether `who` may do `op` on `topic`; a refusal is recorded.
    pub(crate) fn topic(&self, op: TopicOp, topic: &str) -> Result<(), Denied> {
        self.authorizer
            .topic(self.who, op, topic)
            .inspect_err(|why| self.authorizer.refused(self.who, op.verb(), topic, why))
    }

    /// Whether `who` may use `group`; a refusal is recorded.
    pub(crate) fn group(&self, group: &str) -> Result<(), Denied> {
        self.authorizer
            .group(self.who, group)
            .inspect_err(|why| self.authorizer.refused(self.who, "use group", group, why))
    }

    /// Whether `who` may make the node-wide change `what`; a refusal is recorded.
    pub(crate) fn node_wide(&self, what: &str) -> Result<(), Denied> {
        self.authorizer
            .node_wide(self.who, what)
            .inspect_err(|why| self.authorizer.refused(self.who, "administer", what, why))
    }

    /// Whether `who` may administer the topic `name` and change each of `keys` of it (topic
    /// configs, or `partitions`), which a manifest may set instead; a refusal is recorded and
    /// added to `refused`.
    pub(crate) fn keep_settings<'k>(
        &self,
        name: &TopicName,
        mut keys: impl Iterator<Item = &'k str>,
        refused: &mut Vec<Refused>,
    ) -> bool {
        let op = TopicOp::Administer;
        let decided = self
            .authorizer
            .topic(self.who, op, &name.0)
            .and_then(|()| keys.try_for_each(|key| self.authorizer.setting(&name.0, key)))
            .inspect_err(|why| self.authorizer.refused(self.who, op.verb(), &name.0, why));
        keep(name, Vec::new(), decided, refused)
    }

    /// Whether `topic` may be seen in a listing; no refusal is recorded.
    pub(crate) fn topic_visible(&self, topic: &str) -> bool {
        self.authorizer
            .topic(self.who, TopicOp::Describe, topic)
            .is_ok()
    }

    /// Whether `group` may be seen in a listing; no refusal is recorded.
    pub(crate) fn group_visible(&self, group: &str) -> bool {
        self.authorizer.group(self.who, group).is_ok()
    }

    /// Whether `who` may do `op` on the topic `name`, named with `partitions`; a refusal is
    /// recorded and added to `refused`.
    pub(crate) fn keep_topic(
        &self,
        op: TopicOp,
        name: &TopicName,
        partitions: Vec<i32>,
        refused: &mut Vec<Refused>,
    ) -> bool {
        keep(name, partitions, self.topic(op, &name.0), refused)
    }

    /// Keeps the `items` naming a topic `who` may do `op` on, `topic` giving an item's topic
    /// and the partitions it names; returns the refused ones.
    pub(crate) fn keep_topics<T>(
        &self,
        op: TopicOp,
        items: &mut Vec<T>,
        topic: impl Fn(&T) -> (&TopicName, Vec<i32>),
    ) -> Vec<Refused> {
        let mut refused = Vec::new();
        items.retain(|item| {
            let (name, partitions) = topic(item);
            self.keep_topic(op, name, partitions, &mut refused)
        });
        refused
    }

    /// Keeps the groups `who` may use; returns the refused ones.
    pub(crate) fn keep_groups(&self, groups: &mut Vec<GroupId>) -> Vec<Refused> {
        let mut refused = Vec::new();
        groups.retain(|id| match self.group(&id.0) {
            Ok(()) => true,
            Err(why) => {
                refused.push(Refused::Group {
                    id: id.clone(),
                    why,
                });
                false
            }
        });
        refused
    }
}

//! The group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup) with client-side assignment, and committed offsets.
//!
//! A group moves Empty -> PreparingRebalance -> CompletingRebalance -> Stable. A rebalance
//! starts when a member joins, leaves or misses its session timeout; it completes when every
//! known member has rejoined or the longest rebalance timeout has passed (stragglers are
//! removed). The first member becomes leader, receives every member's subscription and sends
//! the assignment back in its SyncGroup, which the coordinator hands to each member.
//!
//! Group membership lives in memory (as in Kafka, members rejoin after a restart); committed
//! offsets are durable, see [`store`].

pub(crate) mod store;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use headwater_log::Log;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::{Broker, KafkaConfig};
use store::OffsetStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A member as a request names it: its group, its id and the generation it believes current.
/// Named fields, because two ids side by side as arguments are easy to swap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberClaim<'a> {
    /// The group it claims to be in.
    pub(crate) group_id: &'a str,
    /// The member id the coordinator gave it.
    pub(crate) member_id: &'a str,
    /// The generation it joined.
    pub(crate) generation: i32,
}

/// What a member gets back from JoinGroup.
#[derive(Debug, Clone)]
pub(crate) struct JoinOutcome {
    /// Why the join failed, if it did.
    pub error: Option<ResponseError>,
    /// The generation the member joined.
    pub generation: i32,
    /// The group's protocol type (`consumer`) and the protocol chosen (the assignor).
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// The leader's member id, and the member's own (assigned on its first join).
    pub leader: String,
    pub member_id: String,
    /// Every member's id, instance id and subscription, for the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a member gets back from SyncGroup.
#[derive(Debug, Clone)]
pub(crate) struct SyncOutcome {
    /// Why the sync failed, if it did.
    pub error: Option<ResponseError>,
    /// The member's part of the leader's assignment.
    pub assignment: Bytes,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Members in join order: the order decides the leader when the old one is gone.
    pub members: Vec<Member>,
    rebalance_deadline: Option<Instant>,
}

impl Group {
    fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            rebalance_deadline: None,
        }
    }

    fn member(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// A member with the group's state and generation, for the checks that need all three.
    fn member_with_state(&mut self, id: &str) -> Option<(&mut Member, GroupState, i32)> {
        let (state, generation) = (self.state, self.generation);
        self.member(id).map(|m| (m, state, generation))
    }

    /// Moves to PreparingRebalance; members waiting in SyncGroup are told to rejoin.
    fn start_rebalance(&mut self, group_id: &str, reason: &str) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        tracing::info!(
            group = group_id,
            generation = self.generation,
            "rebalance: {reason}"
        );
        for m in &mut self.members {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncOutcome {
                    error: Some(ResponseError::RebalanceInProgress),
                    assignment: Bytes::new(),
                    protocol_type: None,
                    protocol: None,
                });
            }
        }
        self.state = GroupState::PreparingRebalance;
        let longest = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.rebalance_deadline = Some(Instant::now() + longest);
    }

    /// Completes the join phase once every member has rejoined (or `force`, at the deadline,
    /// dropping those that did not).
    fn maybe_complete_join(&mut self, group_id: &str, force: bool) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.iter().all(|m| m.join_waiter.is_some());
        if !all_joined && !force {
            return;
        }
        if !all_joined {
            let before = self.members.len();
            self.members.retain(|m| m.join_waiter.is_some());
            tracing::info!(
                group = group_id,
                removed = before - self.members.len(),
                "members that did not rejoin within the rebalance timeout were removed"
            );
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol = None;
            return;
        }
        self.protocol = self.choose_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.iter().any(|m| &m.id == l))
        {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone();
        let all: Vec<(String, Option<String>, Bytes)> = self
            .members
            .iter()
            .map(|m| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                (m.id.clone(), m.instance_id.clone(), meta)
            })
            .collect();
        tracing::info!(group = group_id, generation = self.generation, members = self.members.len(), leader = %leader, "group rebalanced");
        for m in &mut self.members {
            m.last_seen = Instant::now();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinOutcome {
                    error: None,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    /// The protocol every member supports that gets the most votes (each member votes for its
    /// first supported choice), ties broken by the first member's preference.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            let votes = self
                .members
                .iter()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| candidates.contains(n))
                        == Some(*c)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((c, votes));
            }
        }
        best.map(|(c, _)| c.clone())
    }

    fn remove_member(&mut self, group_id: &str, id: &str, reason: &str) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.id != id);
        if self.members.len() == before {
            return false;
        }
        tracing::info!(group = group_id, member = id, "member left: {reason}");
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.generation += 1;
            self.leader = None;
            self.protocol = None;
            self.rebalance_deadline = None;
        } else {
            self.start_rebalance(group_id, reason);
            self.maybe_complete_join(group_id, false);
        }
        true
    }
}

/// Group membership and committed offsets of one node.
#[derive(Debug)]
pub(crate) struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    pub(crate) offsets: OffsetStore,
    min_session: i32,
    max_session: i32,
}

impl Coordinator {
    pub(crate) fn open(log: Arc<Log>, config: &KafkaConfig) -> Result<Self, crate::StateError> {
        Ok(Coordinator {
            groups: Mutex::new(HashMap::new()),
            offsets: OffsetStore::open(&log)?,
            min_session: config.min_session_timeout_ms,
            max_session: config.max_session_timeout_ms,
        })
    }

    /// Expires members that stopped heartbeating and completes overdue rebalances.
    pub(crate) fn start_expiry(&self, broker: Weak<Broker>) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Some(broker) = broker.upgrade() else {
                    return;
                };
                broker.groups.expire(Instant::now());
            }
        });
    }

    fn expire(&self, now: Instant) {
        let mut groups = self.groups.lock();
        for (id, g) in groups.iter_mut() {
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|m| {
                    m.join_waiter.is_none()
                        && m.sync_waiter.is_none()
                        && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect();
            for m in expired {
                g.remove_member(id, &m, "session timeout expired");
            }
            if g.state == GroupState::PreparingRebalance
                && g.rebalance_deadline.is_some_and(|d| now >= d)
            {
                g.maybe_complete_join(id, true);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn join(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<String>,
        client_id: &str,
        host: &str,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
        protocol_type: &str,
        protocols: Vec<(String, Bytes)>,
    ) -> JoinOutcome {
        let fail = |e: ResponseError, member: &str| JoinOutcome {
            error: Some(e),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member.to_string(),
            members: Vec::new(),
        };
        if group_id.is_empty() {
            return fail(ResponseError::InvalidGroupId, member_id);
        }
        if session_timeout_ms < self.min_session || session_timeout_ms > self.max_session {
            return fail(ResponseError::InvalidSessionTimeout, member_id);
        }
        if protocol_type.is_empty() || protocols.is_empty() {
            return fail(ResponseError::InconsistentGroupProtocol, member_id);
        }
        let rx = {
            let mut groups = self.groups.lock();
            let g = groups
                .entry(group_id.to_string())
                .or_insert_with(Group::new);
            if !g.members.is_empty() {
                let same_type = g.protocol_type.as_deref() == Some(protocol_type);
                let shares = g.members.iter().all(|m| {
                    m.id == member_id
                        || m.protocols
                            .iter()
                            .any(|(p, _)| protocols.iter().any(|(q, _)| q == p))
                });
                if !same_type || !shares {
                    return fail(ResponseError::InconsistentGroupProtocol, member_id);
                }
            }
            let id = if member_id.is_empty() {
                format!(
                    "{}-{}",
                    if client_id.is_empty() {
                        "member"
                    } else {
                        client_id
                    },
                    uuid::Uuid::new_v4()
                )
            } else if g.member(member_id).is_some() {
                member_id.to_string()
            } else {
                return fail(ResponseError::UnknownMemberId, member_id);
            };
            let (tx, rx) = oneshot::channel();
            g.protocol_type = Some(protocol_type.to_string());
            let session = Duration::from_millis(session_timeout_ms as u64);
            let rebalance =
                Duration::from_millis(rebalance_timeout_ms.max(session_timeout_ms) as u64);
            let changed = match g.member(&id) {
                Some(m) => {
                    let changed = m.protocols != protocols;
                    m.protocols = protocols;
                    m.session_timeout = session;
                    m.rebalance_timeout = rebalance;
                    m.last_seen = Instant::now();
                    m.join_waiter = Some(tx);
                    changed
                }
                None => {
                    g.members.push(Member {
                        id: id.clone(),
                        instance_id,
                        client_id: client_id.to_string(),
                        host: host.to_string(),
                        session_timeout: session,
                        rebalance_timeout: rebalance,
                        protocols,
                        assignment: Bytes::new(),
                        last_seen: Instant::now(),
                        join_waiter: Some(tx),
                        sync_waiter: None,
                    });
                    true
                }
            };
            match g.state {
                GroupState::PreparingRebalance => {}
                GroupState::Stable | GroupState::CompletingRebalance
                    if !changed && g.leader.as_deref() != Some(id.as_str()) =>
                {
                    // A follower rejoining with the same subscription: answer at once with the
                    // current generation, as Kafka does, without disturbing the group.
                    if g.state == GroupState::Stable {
                        let generation = g.generation;
                        let leader = g.leader.clone().unwrap_or_default();
                        let protocol = g.protocol.clone();
                        if let Some(m) = g.member(&id) {
                            if let Some(w) = m.join_waiter.take() {
                                let _ = w.send(JoinOutcome {
                                    error: None,
                                    generation,
                                    protocol_type: Some(protocol_type.to_string()),
                                    protocol,
                                    leader,
                                    member_id: id.clone(),
                                    members: Vec::new(),
                                });
                            }
                        }
                    } else {
                        g.start_rebalance(group_id, "member rejoined during sync");
                    }
                }
                _ => g.start_rebalance(group_id, &format!("member {id} joined")),
            }
            g.maybe_complete_join(group_id, false);
            rx
        };
        rx.await
            .unwrap_or_else(|_| fail(ResponseError::UnknownMemberId, member_id))
    }

    pub(crate) async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let fail = |e: ResponseError| SyncOutcome {
            error: Some(e),
            assignment: Bytes::new(),
            protocol_type: None,
            protocol: None,
        };
        let rx = {
            let mut groups = self.groups.lock();
            let Some(g) = groups.get_mut(group_id) else {
                return fail(ResponseError::UnknownMemberId);
            };
            if g.member(member_id).is_none() {
                return fail(ResponseError::UnknownMemberId);
            }
            if generation != g.generation {
                return fail(ResponseError::IllegalGeneration);
            }
            let ok = |g: &Group, assignment: Bytes| SyncOutcome {
                error: None,
                assignment,
                protocol_type: g.protocol_type.clone(),
                protocol: g.protocol.clone(),
            };
            match g.state {
                GroupState::Empty | GroupState::PreparingRebalance => {
                    return fail(ResponseError::RebalanceInProgress)
                }
                GroupState::Stable => {
                    let a = g
                        .member(member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    return ok(g, a);
                }
                GroupState::CompletingRebalance => {}
            }
            if g.leader.as_deref() == Some(member_id) {
                let by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                let protocol_type = g.protocol_type.clone();
                let protocol = g.protocol.clone();
                for m in &mut g.members {
                    m.assignment = by_member.get(&m.id).cloned().unwrap_or_default();
                    m.last_seen = Instant::now();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncOutcome {
                            error: None,
                            assignment: m.assignment.clone(),
                            protocol_type: protocol_type.clone(),
                            protocol: protocol.clone(),
                        });
                    }
                }
                g.state = GroupState::Stable;
                let a = g
                    .member(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                return ok(g, a);
            }
            let (tx, rx) = oneshot::channel();
            if let Some(m) = g.member(member_id) {
                m.sync_waiter = Some(tx);
                m.last_seen = Instant::now();
            }
            rx
        };
        rx.await
            .unwrap_or_else(|_| fail(ResponseError::RebalanceInProgress))
    }

    /// A member's heartbeat: it stays in the group, and learns of a rebalance.
    pub(crate) fn heartbeat(&self, claim: MemberClaim<'_>) -> Option<ResponseError> {
        let mut groups = self.groups.lock();
        let member = groups
            .get_mut(claim.group_id)
            .and_then(|g| g.member_with_state(claim.member_id));
        let Some((m, state, current)) = member else {
            return Some(ResponseError::UnknownMemberId);
        };
        m.last_seen = Instant::now();
        if state == GroupState::PreparingRebalance {
            Some(ResponseError::RebalanceInProgress)
        } else {
            (claim.generation != current).then_some(ResponseError::IllegalGeneration)
        }
    }

    /// Removes members; returns an error per member id.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        member_ids: &[String],
    ) -> Vec<Option<ResponseError>> {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return member_ids
                .iter()
                .map(|_| Some(ResponseError::UnknownMemberId))
                .collect();
        };
        member_ids
            .iter()
            .map(|id| {
                (!g.remove_member(group_id, id, "LeaveGroup"))
                    .then_some(ResponseError::UnknownMemberId)
            })
            .collect()
    }

    /// Checks that a member may commit offsets for `generation`.
    pub(crate) fn check_commit(&self, claim: MemberClaim<'_>) -> Option<ResponseError> {
        let MemberClaim {
            group_id,
            member_id,
            generation,
        } = claim;
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group_id) else {
            return (generation >= 0).then_some(ResponseError::IllegalGeneration);
        };
        if generation < 0 && member_id.is_empty() {
            return (!g.members.is_empty()).then_some(ResponseError::IllegalGeneration);
        }
        match g.member_with_state(member_id) {
            None => Some(ResponseError::UnknownMemberId),
            Some((_, _, current)) if generation != current => {
                Some(ResponseError::IllegalGeneration)
            }
            Some((_, GroupState::CompletingRebalance, _)) => {
                Some(ResponseError::RebalanceInProgress)
            }
            Some((m, _, _)) => {
                m.last_seen = Instant::now();
                None
            }
        }
    }

    /// Runs `f` on a group's live state, if the group has one.
    pub(crate) fn with_group<T>(&self, group_id: &str, f: impl FnOnce(Option<&Group>) -> T) -> T {
        let groups = self.groups.lock();
        f(groups.get(group_id))
    }

    /// Every group with members or committed offsets: (id, protocol type, state).
    pub(crate) fn list(&self) -> Vec<(String, String, &'static str)> {
        let groups = self.groups.lock();
        let mut out: Vec<(String, String, &'static str)> = groups
            .iter()
            .filter(|(_, g)| !g.members.is_empty())
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.as_str(),
                )
            })
            .collect();
        for id in self.offsets.groups() {
            if !out.iter().any(|(g, _, _)| *g == id) {
                out.push((id, "consumer".to_string(), GroupState::Empty.as_str()));
            }
        }
        out.sort();
        out
    }

    /// Deletes an empty group and its committed offsets.
    pub(crate) async fn delete(&self, group_id: &str) -> Option<ResponseError> {
        {
            let mut groups = self.groups.lock();
            if let Some(g) = groups.get(group_id) {
                if !g.members.is_empty() {
                    return Some(ResponseError::NonEmptyGroup);
                }
            }
            let had_state = groups.remove(group_id).is_some();
            if !had_state && self.offsets.group(group_id).is_empty() {
                return Some(ResponseError::GroupIdNotFound);
            }
        }
        let tombstones = self
            .offsets
            .group(group_id)
            .into_keys()
            .map(|(t, p)| ((group_id.to_string(), t, p), None))
            .collect();
        match self.offsets.write(tombstones).await {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(group = group_id, "could not delete committed offsets: {e}");
                Some(ResponseError::KafkaStorageError)
            }
        }
    }
}

//! Authorization of API modules, checked without a broker: `authorize` with a fixed
//! [`Authorizer`], then `merge` into the response a handler would have given.

use headwater_auth::{AuthConfig, Denied, Principal, TopicOp, Users};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, GroupId,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, JoinGroupRequest,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use super::Api;
use crate::authorize::{Authorizer, Checked, Guard};

/// Refuses topics and groups whose names start with `secret`, and every node-wide change;
/// remembers each refusal it is told about.
#[derive(Debug)]
struct Fixed {
    users: std::sync::Arc<Users>,
    refused: Mutex<Vec<(String, String, String)>>,
}

impl Fixed {
    fn new() -> Self {
        Fixed {
            users: std::sync::Arc::new(
                Users::new(&AuthConfig::default()).expect("an empty config is valid"),
            ),
            refused: Mutex::new(Vec::new()),
        }
    }
}

fn decide(name: &str) -> Result<(), Denied> {
    if name.starts_with("secret") {
        Err(Denied::new(format!("{name} belongs to another domain")))
    } else {
        Ok(())
    }
}

impl Authorizer for Fixed {
    fn users(&self) -> &std::sync::Arc<Users> {
        &self.users
    }
    fn topic(&self, _: &Principal, _: TopicOp, topic: &str) -> Result<(), Denied> {
        decide(topic)
    }
    fn group(&self, _: &Principal, group: &str) -> Result<(), Denied> {
        decide(group)
    }
    fn node_wide(&self, _: &Principal, what: &str) -> Result<(), Denied> {
        Err(Denied::new(format!(
            "only a platform principal may change {what}"
        )))
    }
    fn setting(&self, topic: &str, key: &str) -> Result<(), Denied> {
        match key {
            "headwater.validation" => {
                Err(Denied::new(format!("{key} of {topic} is the manifest's")))
            }
            _ => Ok(()),
        }
    }
    fn refused(&self, _: &Principal, action: &str, target: &str, why: &Denied) {
        self.refused
            .lock()
            .push((action.into(), target.into(), why.reason.clone()));
    }
    fn sign_in_failed(&self, _: &str, _: &str, _: &str, _: &str) {}
    fn sign_in_cool_down(&self, _: &str, _: &str) -> Option<std::time::Duration> {
        None
    }
}

fn who() -> Principal {
    Principal {
        name: "alice".into(),
        groups: Vec::new(),
        platform: false,
    }
}

fn name(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn produce_to(topics: &[&'static str]) -> ProduceRequest {
    ProduceRequest::default().with_topic_data(
        topics
            .iter()
            .map(|t| {
                TopicProduceData::default()
                    .with_name(TopicName(name(t)))
                    .with_partition_data(vec![
                        PartitionProduceData::default().with_index(0),
                        PartitionProduceData::default().with_index(2),
                    ])
            })
            .collect(),
    )
}

#[test]
fn a_refused_topic_is_left_out_and_answered_per_partition() {
    let fixed = Fixed::new();
    let who = who();
    for (version, message) in [(7, None), (8, Some("secret.x belongs to another domain"))] {
        let guard = Guard::new(&fixed, &who, version);
        let Checked::Handle(request, refused) =
            produce_to(&["orders", "secret.x"]).authorize(&guard)
        else {
            panic!("a produce is never refused whole");
        };
        let kept: Vec<_> = request.topic_data.iter().map(|t| &*t.name.0).collect();
        assert_eq!(kept, ["orders"]);
        let merged = ProduceRequest::merge(&guard, ProduceResponse::default(), refused);
        assert_eq!(merged.responses.len(), 1);
        assert_eq!(&*merged.responses[0].name.0, "secret.x");
        let parts = &merged.responses[0].partition_responses;
        assert_eq!(
            parts.iter().map(|p| p.index).collect::<Vec<_>>(),
            vec![0, 2]
        );
        for p in parts {
            assert_eq!(p.error_code, ResponseError::TopicAuthorizationFailed.code());
            assert_eq!(p.base_offset, -1);
            assert_eq!(p.error_message.as_deref(), message);
        }
    }
    let recorded = fixed.refused.lock().clone();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        recorded[0],
        (
            "produce".into(),
            "secret.x".into(),
            "secret.x belongs to another domain".into()
        )
    );
}

#[test]
fn a_refused_broker_config_is_a_cluster_refusal_after_the_topics() {
    let fixed = Fixed::new();
    let who = who();
    let guard = Guard::new(&fixed, &who, 1);
    let resource = |kind: i8, n: &'static str| {
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(name(n))
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        resource(4, "1"),
        resource(2, "secret.x"),
        resource(2, "orders"),
    ]);
    let Checked::Handle(request, refused) = request.authorize(&guard) else {
        panic!("never refused whole");
    };
    assert_eq!(request.resources.len(), 1);
    assert_eq!(&*request.resources[0].resource_name, "orders");
    let merged = IncrementalAlterConfigsRequest::merge(
        &guard,
        IncrementalAlterConfigsResponse::default(),
        refused,
    );
    let answers: Vec<_> = merged
        .responses
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.resource_type,
                r.resource_name.to_string(),
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        answers,
        vec![
            (
                ResponseError::TopicAuthorizationFailed.code(),
                2,
                "secret.x".into(),
                Some("secret.x belongs to another domain".into())
            ),
            (
                ResponseError::ClusterAuthorizationFailed.code(),
                4,
                "1".into(),
                Some("node-wide".into())
            ),
        ]
    );
    let recorded = fixed.refused.lock().clone();
    assert_eq!(recorded[0].0, "administer");
    assert_eq!(recorded[0].1, "broker config 1");
}

#[test]
fn a_setting_the_manifest_governs_is_refused_even_to_the_topics_administrator() {
    let fixed = Fixed::new();
    let who = who();
    let guard = Guard::new(&fixed, &who, 1);
    let alter = |key: &'static str| {
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(name("orders"))
            .with_configs(vec![AlterableConfig::default().with_name(name(key))])
    };
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![alter("headwater.validation"), alter("cleanup.policy")]);
    let Checked::Handle(request, refused) = request.authorize(&guard) else {
        panic!("never refused whole");
    };
    assert_eq!(request.resources.len(), 1, "the other setting goes through");
    let merged = IncrementalAlterConfigsRequest::merge(
        &guard,
        IncrementalAlterConfigsResponse::default(),
        refused,
    );
    assert_eq!(
        merged.responses[0].error_message.as_deref(),
        Some("headwater.validation of orders is the manifest's")
    );
    assert_eq!(fixed.refused.lock().len(), 1, "the refusal is recorded");
}

#[test]
fn a_refused_group_is_answered_group_authorization_failed() {
    let fixed = Fixed::new();
    let who = who();
    let guard = Guard::new(&fixed, &who, 5);
    let request = DescribeGroupsRequest::default().with_groups(vec![
        GroupId(name("readers")),
        GroupId(name("secret-readers")),
    ]);
    let Checked::Handle(request, refused) = request.authorize(&guard) else {
        panic!("never refused whole");
    };
    assert_eq!(request.groups, vec![GroupId(name("readers"))]);
    let merged = DescribeGroupsRequest::merge(&guard, DescribeGroupsResponse::default(), refused);
    assert_eq!(merged.groups.len(), 1);
    assert_eq!(merged.groups[0].group_id, GroupId(name("secret-readers")));
    assert_eq!(
        merged.groups[0].error_code,
        ResponseError::GroupAuthorizationFailed.code()
    );
    assert_eq!(fixed.refused.lock()[0].0, "use group");
}

#[test]
fn group_requests_refused_whole_get_the_refusal_as_their_answer() {
    let fixed = Fixed::new();
    let who = who();
    let guard = Guard::new(&fixed, &who, 5);
    let join = JoinGroupRequest::default().with_group_id(GroupId(name("secret-g")));
    let Checked::Answer(answer) = join.authorize(&guard) else {
        panic!("a refused group's join is answered whole");
    };
    assert_eq!(
        answer.error_code,
        ResponseError::GroupAuthorizationFailed.code()
    );
    assert_eq!(answer.generation_id, -1);
    let allowed = JoinGroupRequest::default().with_group_id(GroupId(name("g")));
    assert!(matches!(
        allowed.authorize(&guard),
        Checked::Handle(_, refused) if refused.is_empty()
    ));

    for (version, message) in [(0, None), (1, Some("secret-g belongs to another domain"))] {
        let guard = Guard::new(&fixed, &who, version);
        let find = FindCoordinatorRequest::default().with_key(name("secret-g"));
        let Checked::Answer(answer) = find.authorize(&guard) else {
            panic!("a refused group's coordinator is not found");
        };
        assert_eq!(
            answer.error_code,
            ResponseError::GroupAuthorizationFailed.code()
        );
        assert_eq!(answer.error_message.as_deref(), message);
        assert_eq!(answer.node_id.0, -1);
    }
}

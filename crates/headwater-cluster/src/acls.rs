//! Kafka ACLs on the cluster: read, created and deleted through the cluster's own admin API, so
//! a client that talks to the cluster directly meets the same grants as one that goes through
//! Headwater. Also SCRAM users, which a cluster needs before a principal can sign in at all.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::{BrokerConnection, Cluster, ClusterError};

/// Kafka's codes (`org.apache.kafka.common.acl` and `resource`): any, allow, all hosts.
const ANY: i8 = 1;
const ALLOW: i8 = 3;
const ALL_HOSTS: &str = "*";

/// What an ACL is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclResource {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
}

impl AclResource {
    fn code(self) -> i8 {
        match self {
            AclResource::Topic => 2,
            AclResource::Group => 3,
        }
    }

    fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(AclResource::Topic),
            3 => Some(AclResource::Group),
            _ => None,
        }
    }
}

/// How an ACL's name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclPattern {
    /// That name exactly.
    Literal,
    /// Every name starting with it.
    Prefixed,
}

impl AclPattern {
    fn code(self) -> i8 {
        match self {
            AclPattern::Literal => 3,
            AclPattern::Prefixed => 4,
        }
    }

    fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(AclPattern::Literal),
            4 => Some(AclPattern::Prefixed),
            _ => None,
        }
    }
}

/// What an ACL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOperation {
    /// Fetch from a topic; join and commit in a group.
    Read,
    /// Produce to a topic.
    Write,
    /// Create a topic.
    Create,
    /// Delete a topic or a group.
    Delete,
    /// Add partitions.
    Alter,
    /// See it in metadata and describe it.
    Describe,
    /// Read its configuration.
    DescribeConfigs,
    /// Change its configuration.
    AlterConfigs,
}

impl AclOperation {
    fn code(self) -> i8 {
        match self {
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
        }
    }

    fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            3 => AclOperation::Read,
            4 => AclOperation::Write,
            5 => AclOperation::Create,
            6 => AclOperation::Delete,
            7 => AclOperation::Alter,
            8 => AclOperation::Describe,
            10 => AclOperation::DescribeConfigs,
            11 => AclOperation::AlterConfigs,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
        }
    }
}

/// One grant: `principal` may do `operation` on the resource, from any host. Headwater writes
/// only grants (ALLOW); what no grant allows, the cluster's authorizer refuses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acl {
    /// A topic or a group.
    pub resource: AclResource,
    /// Literal name or prefix.
    pub pattern: AclPattern,
    /// The name or prefix.
    pub name: String,
    /// `User:<name>`.
    pub principal: String,
    /// What it allows.
    pub operation: AclOperation,
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource = match self.resource {
            AclResource::Topic => "topic",
            AclResource::Group => "group",
        };
        let pattern = match self.pattern {
            AclPattern::Literal => "",
            AclPattern::Prefixed => "prefixed ",
        };
        write!(
            f,
            "{} may {} {resource} {pattern}{}",
            self.principal,
            self.operation.name(),
            self.name
        )
    }
}

impl Cluster {
    async fn admin_connection(&self) -> Result<BrokerConnection, ClusterError> {
        let mut last = None;
        for broker in self.brokers() {
            match BrokerConnection::open(&format!("{}:{}", broker.host, broker.port), self.config())
                .await
            {
                Ok(conn) => return Ok(conn),
                Err(e @ ClusterError::SignIn { .. }) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClusterError::Unreachable {
            bootstrap: self.config().bootstrap.clone(),
            waited_ms: self.config().connect_timeout_ms,
            detail: "the cluster named no brokers".to_string(),
        }))
    }

    /// Every ALLOW grant on a topic or group the cluster holds (for any host). Grants Headwater
    /// does not write (DENY, other hosts, other resource types) are left out. A change reaches
    /// each broker through the cluster's metadata log, so one just made may show a moment later.
    pub async fn acls(&self) -> Result<BTreeSet<Acl>, ClusterError> {
        let mut conn = self.admin_connection().await?;
        // The codec's defaults are empty strings, which match only empty names: say "any".
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ALLOW);
        let answer = conn.send(&request).await?;
        if answer.error_code != 0 {
            return Err(self.acl_error("listing ACLs", answer.error_code, answer.error_message));
        }
        let mut acls = BTreeSet::new();
        for r in answer.resources {
            let (Some(resource), Some(pattern)) = (
                AclResource::from_code(r.resource_type),
                AclPattern::from_code(r.pattern_type),
            ) else {
                continue;
            };
            for a in r.acls {
                let Some(operation) = AclOperation::from_code(a.operation) else {
                    continue;
                };
                if a.host.as_str() != ALL_HOSTS || a.permission_type != ALLOW {
                    continue;
                }
                acls.insert(Acl {
                    resource,
                    pattern,
                    name: r.resource_name.to_string(),
                    principal: a.principal.to_string(),
                    operation,
                });
            }
        }
        Ok(acls)
    }

    /// Creates `acls` (a grant that exists already is left as it is).
    pub async fn create_acls(&self, acls: &[Acl]) -> Result<(), ClusterError> {
        if acls.is_empty() {
            return Ok(());
        }
        let mut conn = self.admin_connection().await?;
        let creations = acls
            .iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.resource.code())
                    .with_resource_name(StrBytes::from_string(a.name.clone()))
                    .with_resource_pattern_type(a.pattern.code())
                    .with_principal(StrBytes::from_string(a.principal.clone()))
                    .with_host(StrBytes::from_static_str(ALL_HOSTS))
                    .with_operation(a.operation.code())
                    .with_permission_type(ALLOW)
            })
            .collect();
        let answer = conn
            .send(&CreateAclsRequest::default().with_creations(creations))
            .await?;
        for (acl, result) in acls.iter().zip(answer.results) {
            if result.error_code != 0 {
                return Err(self.acl_error(
                    &format!("creating the ACL \"{acl}\""),
                    result.error_code,
                    result.error_message,
                ));
            }
        }
        Ok(())
    }

    /// Deletes `acls`, each matched exactly.
    pub async fn delete_acls(&self, acls: &[Acl]) -> Result<(), ClusterError> {
        if acls.is_empty() {
            return Ok(());
        }
        let mut conn = self.admin_connection().await?;
        let filters = acls
            .iter()
            .map(|a| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(a.resource.code())
                    .with_resource_name_filter(Some(StrBytes::from_string(a.name.clone())))
                    .with_pattern_type_filter(a.pattern.code())
                    .with_principal_filter(Some(StrBytes::from_string(a.principal.clone())))
                    .with_host_filter(Some(StrBytes::from_static_str(ALL_HOSTS)))
                    .with_operation(a.operation.code())
                    .with_permission_type(ALLOW)
            })
            .collect();
        let answer = conn
            .send(&DeleteAclsRequest::default().with_filters(filters))
            .await?;
        for (acl, result) in acls.iter().zip(answer.filter_results) {
            if result.error_code != 0 {
                return Err(self.acl_error(
                    &format!("deleting the ACL \"{acl}\""),
                    result.error_code,
                    result.error_message,
                ));
            }
        }
        Ok(())
    }

    /// Creates or replaces the SCRAM-SHA-512 credential of user `name` on the cluster, so it can
    /// sign in to the cluster directly.
    pub async fn set_scram_user(&self, name: &str, password: &str) -> Result<(), ClusterError> {
        const ITERATIONS: u32 = 8192;
        let mut salt = [0u8; 24];
        getrandom::getrandom(&mut salt)
            .map_err(|e| ClusterError::Config(format!("no random bytes for a salt: {e}")))?;
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), &salt, ITERATIONS, &mut salted);
        let upsert = ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_mechanism(2) // SCRAM-SHA-512
            .with_iterations(ITERATIONS as i32)
            .with_salt(Bytes::copy_from_slice(&salt))
            .with_salted_password(Bytes::copy_from_slice(&salted));
        let mut conn = self.admin_connection().await?;
        let answer = conn
            .send(&AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsert]))
            .await?;
        for r in answer.results {
            if r.error_code != 0 {
                return Err(self.acl_error(
                    &format!("setting the SCRAM credential of {name}"),
                    r.error_code,
                    r.error_message,
                ));
            }
        }
        Ok(())
    }

    fn acl_error(&self, what: &str, code: i16, message: Option<StrBytes>) -> ClusterError {
        let name = kafka_protocol::ResponseError::try_from_code(code)
            .map_or_else(|| format!("error code {code}"), |e| format!("{e:?}"));
        let fix = if code == kafka_protocol::ResponseError::ClusterAuthorizationFailed.code()
            || code == kafka_protocol::ResponseError::SecurityDisabled.code()
        {
            ": Headwater's user needs ALTER on the cluster (a super user has it), and the \
             cluster an authorizer (authorizer.class.name)"
        } else {
            ""
        };
        ClusterError::Protocol {
            broker: self.config().bootstrap.clone(),
            detail: format!(
                "{what} was refused: {name}{}{fix}",
                message.map_or_else(String::new, |m| format!(" ({m})"))
            ),
        }
    }
}

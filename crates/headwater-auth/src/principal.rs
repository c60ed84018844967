/// An authenticated caller: its name and the groups its config entry lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name (`user:<name>` in manifests), or `node:<what>` for the node itself.
    pub name: String,
    /// The groups its config entry lists (`team:payments`).
    pub groups: Vec<String>,
    /// Holds a platform identity of the `[auth]` config (see [`crate::AuthConfig::platform`]).
    pub platform: bool,
}

impl Principal {
    /// Every identity a manifest's `owners` may name it by: `user:<name>` and each group.
    pub fn identities(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(format!("user:{}", self.name)).chain(self.groups.iter().cloned())
    }

    /// The node itself, acting on its own behalf (manifests applied at start, pipelines).
    pub fn node(what: &str) -> Principal {
        Principal {
            name: format!("node:{what}"),
            groups: Vec::new(),
            platform: true,
        }
    }

    /// How the audit trail names it.
    pub fn audit_name(&self) -> String {
        if self.name.starts_with("node:") {
            self.name.clone()
        } else {
            format!("user:{}", self.name)
        }
    }
}

/// What a caller wants to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicOp {
    /// Write records to it.
    Produce,
    /// Fetch, list offsets, commit offsets for it.
    Consume,
    /// See it in metadata and its configs.
    Describe,
    /// Create, delete, grow, reconfigure; its schemas.
    Administer,
}

impl TopicOp {
    /// The audit trail's name of a refused operation.
    pub fn verb(self) -> &'static str {
        match self {
            TopicOp::Produce => "produce",
            TopicOp::Consume => "consume",
            TopicOp::Describe => "describe",
            TopicOp::Administer => "administer",
        }
    }
}

/// An authenticated caller: its name and the groups its config entry lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
}

impl Principal {
    /// Every identity a manifest's `owners` may name it by: `user:<name>` and each group.
    pub fn identities(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(format!("user:{}", self.name)).chain(self.groups.iter().cloned())
    }

    /// How the audit trail names it.
    pub fn audit_name(&self) -> String {
        format!("user:{}", self.name)
    }
}

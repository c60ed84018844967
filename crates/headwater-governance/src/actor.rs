//! Who asks for a change: the audit trail records it, and on a node with auth access control
//! decides whether it may.

use headwater_auth::Principal;

/// Who a change is made by.
#[derive(Debug, Clone, PartialEq)]
pub enum Actor {
    /// A caller of a node without auth: nobody signed in, and nothing is checked.
    Anonymous,
    /// A signed-in principal, checked against the applied domains' ownership.
    Principal(Principal),
    /// The node itself acting on its own configuration (`headwater serve --domains`, a
    /// pipeline's failure): trusted, recorded under this name.
    Node(&'static str),
}

impl Actor {
    /// How the audit trail names it: `user:alice`, `anonymous`, `node:serve --domains`.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Anonymous => crate::audit::ANONYMOUS.to_string(),
            Actor::Principal(p) => p.audit_name(),
            Actor::Node(name) => (*name).to_string(),
        }
    }

    /// The principal whose rights are checked, when there is one.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Actor::Principal(p) => Some(p),
            Actor::Anonymous | Actor::Node(_) => None,
        }
    }
}

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Permission;

/// The roles an account can hold (AC-2). Palvelumanuaali's four come first; the platform's
/// register roles are added by the issues that need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// ylläpito: the service's maintainers, all organisations
    Admin,
    /// pääkäyttäjä: manages its own organisation's users
    MainUser,
    /// muokkaaja
    Editor,
    /// asiantuntija
    Expert,
    /// A registrar's data-protection officer or auditor (tietosuojavastaava): reads the
    /// registrar's logs and supervision reports (AU-6, AU-10).
    Auditor,
    /// A registrar's administrative client role (palveluohjaaja, päätöksentekijä): grants
    /// services by decision and keeps clients, within the service areas the user holds rights
    /// for; reaches clients through role and area, without a care team (AX-5).
    ClientHandler,
    /// A provider's staff (palveluntuottajan työntekijä): sees the provider's own clients and
    /// services and records what was delivered (CL-5, CL-9).
    ProviderStaff,
    /// A care professional (ammattihenkilö) of a registrar's or provider's service unit: reaches
    /// a client only through a care relationship, that is a care-team membership in a service
    /// unit the professional works in (AX-5).
    Professional,
    /// A professional who may, without a care relationship, state a special reason from the THL
    /// code list (erityinen syy); such an access is logged with the reason and reported (AX-5,
    /// AU-10).
    SeniorProfessional,
    /// A call agent of a service queue (asiakaspalvelija, CA-2): reads the registrar's contacts,
    /// a secret number only in the queues of its own service units, and records callbacks.
    CallAgent,
    /// A service unit's supervisor (yksikön esimies, CA-1): listens to the recordings of the
    /// unit's queues by stated reason, puts them on legal hold, reads contact reports.
    CallSupervisor,
}

impl Role {
    pub const ALL: [Role; 11] = [
        Role::Admin,
        Role::MainUser,
        Role::Editor,
        Role::Expert,
        Role::Auditor,
        Role::ClientHandler,
        Role::ProviderStaff,
        Role::Professional,
        Role::SeniorProfessional,
        Role::CallAgent,
        Role::CallSupervisor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::MainUser => "main_user",
            Self::Editor => "editor",
            Self::Expert => "expert",
            Self::Auditor => "auditor",
            Self::ClientHandler => "client_handler",
            Self::ProviderStaff => "provider_staff",
            Self::Professional => "professional",
            Self::SeniorProfessional => "senior_professional",
            Self::CallAgent => "call_agent",
            Self::CallSupervisor => "call_supervisor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    Platform,
    Municipality,
    WellbeingServicesCounty,
    Provider,
    OtherOrganiser,
}

impl OrganisationKind {
    pub const ALL: [OrganisationKind; 5] = [
        OrganisationKind::Platform,
        OrganisationKind::Municipality,
        OrganisationKind::WellbeingServicesCounty,
        OrganisationKind::Provider,
        OrganisationKind::OtherOrganiser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Municipality => "municipality",
            Self::WellbeingServicesCounty => "wellbeing_services_county",
            Self::Provider => "provider",
            Self::OtherOrganiser => "other_organiser",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a session was authenticated (AX-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Password,
    /// An API client's access token (OAuth 2.0 client credentials).
    ClientCredentials,
    /// A trusted identity provider's token without a strong method in `amr`.
    IdentityProvider,
    /// A trusted identity provider's token whose `amr` names a strong method (e.g. `sc`, the
    /// professional card).
    StrongIdentityProvider,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientCredentials => "client_credentials",
            Self::IdentityProvider => "identity_provider",
            Self::StrongIdentityProvider => "identity_provider_strong",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Password,
            Self::ClientCredentials,
            Self::IdentityProvider,
            Self::StrongIdentityProvider,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    pub fn is_strong(self) -> bool {
        self == Self::StrongIdentityProvider
    }
}

/// A citizen identified by a trusted identity provider (AX-1); acts only on its own data.
#[derive(Clone, PartialEq, Eq)]
pub struct Citizen {
    pub identity_code: rekisteri_core::PersonalIdentityCode,
    pub provider: String,
    pub auth_method: AuthMethod,
}

rekisteri_core::redacted_debug!(Citizen {});

/// Whoever sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Account(Principal),
    Citizen(Citizen),
}

/// Who a request acts as (AX-1), with the rights valid at the moment of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub organisation_id: String,
    pub roles: Vec<Role>,
    pub service_unit_ids: Vec<String>,
    pub session_id: String,
    pub auth_method: AuthMethod,
    /// Set when another system acts through an API client (AX-1).
    pub integration: Option<Integration>,
}

/// The system behind a request made with an API client's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// The end user the integration acts for (an account id); their rights then apply, as far
    /// as the client's scopes reach.
    pub on_behalf_of: Option<String>,
    /// Whether the end user's strong sign-in stands behind the call (AX-2): an admin attested
    /// that the system authenticates its users strongly, or the request carried the user's own
    /// strong token. Without it, a named user is bound by the strong-authentication rule like a
    /// password session.
    pub strong_user_authentication: bool,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the principal may use `permission` now (AX-1, AX-3): a person through a role in
    /// force; an integration through one of its scopes, and when it names an end user, only where
    /// that user's roles grant the permission too (the intersection: a system never gains a right
    /// by naming a user, nor a user by going through a system).
    pub fn can(&self, permission: Permission) -> bool {
        let by_role = || self.roles.iter().any(|r| r.permissions().contains(&permission));
        match &self.integration {
            None => by_role(),
            Some(integration) => {
                crate::api_clients::scopes_grant(&integration.scopes, permission)
                    && (integration.on_behalf_of.is_none() || by_role())
            }
        }
    }

    pub fn is_admin(&self) -> bool {
        self.can(Permission::ManageAllAccounts)
    }

    /// Admins manage every organisation's accounts; main users their own (AC-4).
    pub fn manages_organisation(&self, organisation_id: &str) -> bool {
        self.can(Permission::ManageAllAccounts)
            || (self.can(Permission::ManageOwnOrganisationAccounts) && self.organisation_id == organisation_id)
    }

    /// Whether the principal may read registrar `registrar_id`'s logs (AU-6): its own
    /// organisation's only, so that one registrar never sees another's (AX-4).
    pub fn audits_registrar(&self, registrar_id: &str) -> bool {
        self.can(Permission::ReadRegistrarAudit) && self.organisation_id == registrar_id
    }

    /// Which of registrar `registrar_id`'s usage entries the principal reads (AU-1, AU-6), given
    /// the kind of its own organisation; `None` when none (the path answers 404, AX-4). The
    /// registrar's own auditors read the whole log ([`Self::audits_registrar`]); a provider's
    /// auditors read the entries whose log controller is their own organisation, the uses their
    /// own staff and systems made in the organiser's register (source 003 §3.3), and nothing
    /// else of it. Whether the provider works for the registrar is the door's question, asked
    /// first on every registrar path (AX-4); the reach itself never shows another
    /// organisation's entry.
    pub fn usage_log_reach(&self, registrar_id: &str, own_kind: Option<OrganisationKind>) -> Option<UsageLogReach> {
        if self.audits_registrar(registrar_id) {
            return Some(UsageLogReach::Whole);
        }
        (self.can(Permission::ReadRegistrarAudit) && own_kind == Some(OrganisationKind::Provider)).then(|| {
            UsageLogReach::OwnEntries {
                log_controller_id: self.organisation_id.clone(),
            }
        })
    }
}

/// What of a registrar's usage log a principal reads ([`Principal::usage_log_reach`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageLogReach {
    /// The registrar's own auditors: every entry of its log.
    Whole,
    /// A provider's auditors: the entries of the organiser's log that name the provider as
    /// their log controller.
    OwnEntries { log_controller_id: String },
}

impl UsageLogReach {
    /// The log controller a query of this reach is limited to; `None` for the whole log.
    pub fn log_controller_id(&self) -> Option<&str> {
        match self {
            Self::Whole => None,
            Self::OwnEntries { log_controller_id } => Some(log_controller_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(organisation_id: &str, roles: Vec<Role>) -> Principal {
        Principal {
            account_id: "a-1".into(),
            organisation_id: organisation_id.into(),
            roles,
            service_unit_ids: Vec::new(),
            session_id: "s-1".into(),
            auth_method: AuthMethod::Password,
            integration: None,
        }
    }

    #[test]
    fn au_1_a_providers_auditor_reaches_only_its_own_entries_of_an_organisers_log() {
        use OrganisationKind::{Municipality, Platform, Provider};
        let own = |org: &str| {
            Some(UsageLogReach::OwnEntries {
                log_controller_id: org.into(),
            })
        };
        let registrar_auditor = principal("r1", vec![Role::Auditor]);
        assert_eq!(
            registrar_auditor.usage_log_reach("r1", Some(Municipality)),
            Some(UsageLogReach::Whole)
        );
        assert_eq!(registrar_auditor.usage_log_reach("r2", Some(Municipality)), None);
        let provider_auditor = principal("p1", vec![Role::Auditor]);
        assert_eq!(provider_auditor.usage_log_reach("r1", Some(Provider)), own("p1"));
        assert_eq!(
            own("p1").and_then(|r| r.log_controller_id().map(str::to_owned)),
            Some("p1".into())
        );
        assert_eq!(UsageLogReach::Whole.log_controller_id(), None);
        // Only a provider, and only with the auditor's permission.
        assert_eq!(
            principal("p1", vec![Role::ProviderStaff]).usage_log_reach("r1", Some(Provider)),
            None
        );
        assert_eq!(
            principal("x", vec![Role::Auditor]).usage_log_reach("r1", Some(Platform)),
            None
        );
        assert_eq!(
            principal("r2", vec![Role::Auditor]).usage_log_reach("r1", Some(Municipality)),
            None
        );
        assert_eq!(provider_auditor.usage_log_reach("r1", None), None);
    }
}

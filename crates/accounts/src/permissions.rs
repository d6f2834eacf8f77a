//! Roles grant permissions (AX-3). The grant table is data: [`ROLE_PERMISSIONS`] is the one
//! place that says which role may do what, and `docs/permissions.md` shows the same table
//! (a test keeps the two equal).

use serde::Serialize;

use crate::Role;

/// What a principal may do. Checks in the domain crates ask for a permission, never a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Create and change organisations and service units of every organisation.
    ManageOrganisations,
    /// Invite, change, close and restore accounts of every organisation, and grant admin.
    ManageAllAccounts,
    /// Invite, change and close accounts of the principal's own organisation, except as admin.
    ManageOwnOrganisationAccounts,
    /// Read the registrar's usage and disclosure logs and its supervision reports (AU-6, AU-10).
    ReadRegistrarAudit,
    /// Read the platform's security events and walk every audit chain (AU-3, AU-5).
    ReadSecurityEvents,
    /// Define the registrar's service areas and grant its users rights to them (AX-4).
    ManageServiceAreas,
    /// Read clients and their services: a registrar's users within the service areas they hold
    /// rights for, a provider's users only its own clients' needed fields (CL-9, AX-4).
    ReadClients,
    /// Create clients with their services, change clients, grant and close services (CL-1, CL-4).
    WriteClients,
    /// Record delivered services against the provider's own services (CL-5).
    RecordServiceEvents,
    /// Read settlements (CL-6): the registrar's for every provider, a provider's its own.
    ReadSettlements,
    /// Read a client only through a care relationship: a valid care-team membership in a
    /// service unit the user works in (AX-5); the professional roles' way to client data.
    ReadClientsInCareRelationship,
    /// Reach a client without a care relationship by stating a special reason from the THL code
    /// list with an explanation; logged with the reason and reported (AX-5, AU-10).
    SpecialReasonAccess,
    /// Read the registrar's client and service statistics (CL-16): aggregates only, cells of
    /// fewer than five people suppressed; the whole register, not limited to service areas.
    ReadStatistics,
    /// Export the clients due for anonymisation in clear for the registrar's archive (CL-14);
    /// every exported client is a disclosure-log entry.
    ExportClientArchive,
    /// Receive and handle data-subject requests (access, rectification, restriction, objection,
    /// erasure) of the principal's own registrar, with their due dates (CL-12).
    HandleDataSubjectRequests,
    /// Record and read a client's Kanta informing, disclosure consent and prohibitions, and ask
    /// the disclosure decision (CO-1..CO-4), for the clients the principal reaches.
    ManageDisclosureConsent,
    /// The organiser's Kanta settings and provider contracts; open, close and reopen registry
    /// use rights (RU-1, RU-5, RU-6).
    ManageRegistryUseRights,
    /// Store documents into an organiser's register under a case while the provider holds an
    /// open registry use right for it, and read that case's documents (RU-2, RU-8).
    StoreCaseDocuments,
    /// Assess security incidents of the principal's own registrar and record the notification
    /// to the authority (RU-4).
    HandleSecurityIncidents,
    /// VT-10, VT-11: run the registrar's VTJ sync, push VTJ changes, read its status.
    ManageVtj,
    /// Configure the registrar's service queues (recording, announcement) and grant listening
    /// rights to named users (CA-1).
    ManageCallQueues,
    /// Push contacts and upload their recordings and voicemails: the telephony system, or an
    /// agent recording a callback by hand (CA-2, CA-3).
    PushContacts,
    /// Read the registrar's contacts; a secret number only in the queues of the user's own
    /// service units (CA-2, AX-6).
    ReadContacts,
    /// Listen to recordings of the queues of the user's own service units (the unit's
    /// supervisor, CA-1), save them to external media and disclose them (CA-5..CA-7). An explicit
    /// grant for a queue gives the same right in that queue without this permission.
    ListenToRecordings,
    /// Put recordings on legal hold and release them (CA-10).
    ManageLegalHolds,
    /// Read contact reports: aggregates per queue, small cells suppressed (CA-13).
    ReadContactReports,
}

impl Permission {
    pub const ALL: [Permission; 26] = [
        Permission::ManageOrganisations,
        Permission::ManageAllAccounts,
        Permission::ManageOwnOrganisationAccounts,
        Permission::ReadRegistrarAudit,
        Permission::ReadSecurityEvents,
        Permission::ManageServiceAreas,
        Permission::ReadClients,
        Permission::WriteClients,
        Permission::RecordServiceEvents,
        Permission::ReadSettlements,
        Permission::ReadClientsInCareRelationship,
        Permission::SpecialReasonAccess,
        Permission::ReadStatistics,
        Permission::ExportClientArchive,
        Permission::HandleDataSubjectRequests,
        Permission::ManageDisclosureConsent,
        Permission::ManageRegistryUseRights,
        Permission::StoreCaseDocuments,
        Permission::HandleSecurityIncidents,
        Permission::ManageVtj,
        Permission::ManageCallQueues,
        Permission::PushContacts,
        Permission::ReadContacts,
        Permission::ListenToRecordings,
        Permission::ManageLegalHolds,
        Permission::ReadContactReports,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManageOrganisations => "manage_organisations",
            Self::ManageAllAccounts => "manage_all_accounts",
            Self::ManageOwnOrganisationAccounts => "manage_own_organisation_accounts",
            Self::ReadRegistrarAudit => "read_registrar_audit",
            Self::ReadSecurityEvents => "read_security_events",
            Self::ManageServiceAreas => "manage_service_areas",
            Self::ReadClients => "read_clients",
            Self::WriteClients => "write_clients",
            Self::RecordServiceEvents => "record_service_events",
            Self::ReadSettlements => "read_settlements",
            Self::ReadClientsInCareRelationship => "read_clients_in_care_relationship",
            Self::SpecialReasonAccess => "special_reason_access",
            Self::ReadStatistics => "read_statistics",
            Self::ExportClientArchive => "export_client_archive",
            Self::HandleDataSubjectRequests => "handle_data_subject_requests",
            Self::ManageDisclosureConsent => "manage_disclosure_consent",
            Self::ManageRegistryUseRights => "manage_registry_use_rights",
            Self::StoreCaseDocuments => "store_case_documents",
            Self::HandleSecurityIncidents => "handle_security_incidents",
            Self::ManageVtj => "manage_vtj",
            Self::ManageCallQueues => "manage_call_queues",
            Self::PushContacts => "push_contacts",
            Self::ReadContacts => "read_contacts",
            Self::ListenToRecordings => "listen_to_recordings",
            Self::ManageLegalHolds => "manage_legal_holds",
            Self::ReadContactReports => "read_contact_reports",
        }
    }
}

/// The grant table: every role and the permissions it holds.
pub const ROLE_PERMISSIONS: &[(Role, &[Permission])] = &[
    (
        Role::Admin,
        &[
            Permission::ManageOrganisations,
            Permission::ManageAllAccounts,
            Permission::ReadSecurityEvents,
        ],
    ),
    (
        Role::MainUser,
        &[
            Permission::ManageOwnOrganisationAccounts,
            Permission::ManageServiceAreas,
            Permission::ReadStatistics,
            Permission::ManageVtj,
            Permission::ManageCallQueues,
            Permission::ReadContactReports,
        ],
    ),
    (Role::Editor, &[]),
    (Role::Expert, &[]),
    (
        Role::Auditor,
        &[
            Permission::ReadRegistrarAudit,
            Permission::HandleDataSubjectRequests,
            Permission::HandleSecurityIncidents,
        ],
    ),
    (
        Role::ClientHandler,
        &[
            Permission::ReadClients,
            Permission::WriteClients,
            Permission::ReadSettlements,
            Permission::ReadStatistics,
            Permission::ExportClientArchive,
            Permission::ManageDisclosureConsent,
            Permission::ManageRegistryUseRights,
        ],
    ),
    (
        Role::ProviderStaff,
        &[
            Permission::ReadClients,
            Permission::RecordServiceEvents,
            Permission::ReadSettlements,
            Permission::ManageDisclosureConsent,
            Permission::StoreCaseDocuments,
        ],
    ),
    (Role::Professional, &[Permission::ReadClientsInCareRelationship]),
    (
        Role::SeniorProfessional,
        &[
            Permission::ReadClientsInCareRelationship,
            Permission::SpecialReasonAccess,
        ],
    ),
    (Role::CallAgent, &[Permission::ReadContacts, Permission::PushContacts]),
    (
        Role::CallSupervisor,
        &[
            Permission::ReadContacts,
            Permission::ListenToRecordings,
            Permission::ManageLegalHolds,
            Permission::ReadContactReports,
        ],
    ),
];

impl Role {
    pub fn permissions(self) -> &'static [Permission] {
        ROLE_PERMISSIONS
            .iter()
            .find(|(role, _)| *role == self)
            .map_or(&[], |(_, permissions)| permissions)
    }
}

/// The grant table as the Markdown table of `docs/permissions.md`.
pub fn permissions_table_markdown() -> String {
    let mut out = String::from("| permission |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for permission in Permission::ALL {
        out.push_str(&format!("| `{}` |", permission.as_str()));
        for role in Role::ALL {
            out.push_str(if role.permissions().contains(&permission) {
                " ✔ |"
            } else {
                "  |"
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ax_3_every_role_has_one_row_in_the_grant_table() {
        for role in Role::ALL {
            assert_eq!(ROLE_PERMISSIONS.iter().filter(|(r, _)| *r == role).count(), 1, "{role}");
        }
    }

    #[test]
    fn ax_3_docs_permissions_md_shows_the_grant_table_of_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/permissions.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let table = permissions_table_markdown();
        assert!(
            docs.contains(&table),
            "docs/permissions.md is out of date; its table must be:\n{table}"
        );
    }

    #[test]
    fn ac_4_only_admins_hold_the_power_to_grant_admin() {
        for role in Role::ALL {
            assert_eq!(
                role.permissions().contains(&Permission::ManageAllAccounts),
                role == Role::Admin
            );
        }
    }
}

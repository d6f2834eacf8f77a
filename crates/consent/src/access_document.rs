//! The consent register's sections of the right-of-access document (CL-12): what the person was
//! told of Kanta, their disclosure consent with its history, their prohibitions, and the registry
//! use rights on their services with the documents stored under each. They join the client
//! register's document ([`rekisteri_clients::access_report_with`]) inside its one logged read, so
//! the document's usage and disclosure entries cover them too.

use rekisteri_clients::{AccessReport, Request};
use rekisteri_db::DbConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::consent::consent_sections;
use crate::rights::{case_documents_of, rights_of_client_read};
use crate::{CaseDocument, ConsentError, ConsentRegister, ConsentView, Informing, Prohibition, Right, helsinki_today};

/// The consent and registry-use-right sections of the right-of-access document.
#[derive(Clone, Serialize, ToSchema)]
pub struct ConsentSections {
    /// How and when the person was informed of Kanta storage (CO-1), oldest first.
    pub kanta_informings: Vec<Informing>,
    /// The disclosure consent in force and every change before it, newest first (CO-2).
    pub disclosure_consent: ConsentView,
    /// Disclosure prohibitions, in force and revoked (CO-3).
    pub prohibitions: Vec<Prohibition>,
    /// Registry use rights on the person's services, oldest first, each with the documents
    /// providers stored under it (RU-1, RU-2).
    pub registry_use_rights: Vec<RightWithDocuments>,
}

/// A registry use right and the documents stored under its case.
#[derive(Clone, Serialize, ToSchema)]
pub struct RightWithDocuments {
    #[serde(flatten)]
    pub right: Right,
    pub documents: Vec<CaseDocument>,
}

/// The client register's right-of-access document of `client_id` with the consent register's
/// sections: produced for the registrar's data-protection officer only, on the same terms and
/// with the same log entries as [`rekisteri_clients::access_report`].
pub fn access_document(
    conn: &mut DbConnection,
    register: &ConsentRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
) -> Result<(AccessReport, ConsentSections), ConsentError> {
    let today = helsinki_today(request.now);
    rekisteri_clients::access_report_with(conn, &register.clients, request, registrar_id, client_id, |conn| {
        let (kanta_informings, disclosure_consent, prohibitions) = consent_sections(conn, registrar_id, client_id)?;
        let mut registry_use_rights = Vec::new();
        for right in rights_of_client_read(conn, registrar_id, client_id, today)? {
            let documents = case_documents_of(conn, register, registrar_id, &right.case_oid)?;
            registry_use_rights.push(RightWithDocuments { right, documents });
        }
        Ok::<_, ConsentError>(ConsentSections {
            kanta_informings,
            disclosure_consent,
            prohibitions,
            registry_use_rights,
        })
    })
}

//! Reaching one client for another register's work (the consent crate, CO and RU): the same
//! access decision and 404-with-a-logged-denial as the client register's own reads (AX-4).

use rekisteri_accounts::Permission;
use rekisteri_core::Refusal;

use crate::access::{Decision, decide_for};
use crate::clients::reachable_client;
use crate::sealed::RowCipher;
use crate::{ClientRegister, ClientsError, Request};

/// A client the caller reaches, with the decision that reached it.
#[derive(Clone)]
pub struct ReachedClient {
    pub decision: Decision,
    pub client_id: String,
    /// The blind index the logs name the person by.
    pub subject: Option<[u8; 32]>,
    identity_code: Option<Vec<u8>>,
}

rekisteri_core::redacted_debug!(ReachedClient { client_id });

/// The client `client_id` of `registrar_id` as the caller reaches it for work needing
/// `permission`; a client out of reach is a logged denial and [`ClientsError::Refused(Refusal::NotFound)`].
pub fn reach_client(
    conn: &mut rekisteri_db::DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    client_id: &str,
    permission: Permission,
) -> Result<ReachedClient, ClientsError> {
    let decision = decide_for(conn, request, registrar_id, permission)?;
    let (row, _) = reachable_client(conn, register, request, &decision, registrar_id, client_id)?;
    Ok(ReachedClient {
        decision,
        client_id: row.id.clone(),
        subject: row.subject(),
        identity_code: row.identity_code.clone(),
    })
}

impl ReachedClient {
    /// The client's identity code in clear, for a delivery the caller logs (RU-1 delivers it to
    /// the provider with the case OID); call only inside a `read_personal_data` closure.
    pub fn reveal_identity_code(&self, register: &ClientRegister) -> Result<Option<String>, ClientsError> {
        let cipher = RowCipher::new(&register.keyring, "clients", &self.client_id);
        Ok(cipher.open_opt("identity_code", self.identity_code.as_deref())?)
    }
}

/// The identity code of client `client_id` of `registrar_id` in clear, for a caller whose basis is
/// not the client register's own decision (a provider's registry use right, RU-1/RU-2); call only
/// inside a `read_personal_data` closure that logs the use. `None` for a client not there or
/// anonymised.
pub fn identity_code_of(
    conn: &mut rekisteri_db::DbConnection,
    register: &ClientRegister,
    registrar_id: &str,
    client_id: &str,
) -> Result<Option<String>, ClientsError> {
    use diesel::prelude::*;
    use rekisteri_db::schema::clients;
    let sealed: Option<Option<Vec<u8>>> = clients::table
        .filter(clients::registrar_id.eq(registrar_id))
        .filter(clients::id.eq(client_id))
        .select(clients::identity_code)
        .first(conn)
        .optional()?;
    let cipher = RowCipher::new(&register.keyring, "clients", client_id);
    Ok(cipher.open_opt("identity_code", sealed.flatten().as_deref())?)
}

/// The data kinds of the client register whose disclosure depends on reaching the client they
/// belong to (as opposed to a permission alone).
pub const CLIENT_REGISTER_KINDS: &[&str] = &[
    "client",
    "service",
    "service_event",
    "proxy",
    "care_team",
    "care_team_member",
];

/// Decides again whether the caller reaches the client filed under `subject` in `registrar_id`
/// for work needing `permission`, as a new read would: an answer stored earlier (an idempotent
/// replay, PL-2) is disclosed only to a caller who reaches that client now (AX-4). Out of reach
/// is a logged denial and [`ClientsError::Refused(Refusal::NotFound)`].
pub fn reach_subject(
    conn: &mut rekisteri_db::DbConnection,
    register: &ClientRegister,
    request: &Request<'_>,
    registrar_id: &str,
    subject: &[u8; 32],
    permission: Permission,
) -> Result<ReachedClient, ClientsError> {
    // A stored index, not a code: only the index the answer was made with can be matched.
    let Some(client) = crate::clients::client_by_subject(conn, registrar_id, &[subject.to_vec()])? else {
        return Err(ClientsError::Refused(Refusal::NotFound));
    };
    reach_client(conn, register, request, registrar_id, &client.id, permission)
}

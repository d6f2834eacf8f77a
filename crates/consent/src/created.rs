//! What creating a record of this register discloses about a person (PL-2: an idempotent replay
//! of its 201 is logged again): each record is the data of the client it names.

use rekisteri_accounts::Permission;

use crate::{CaseDocument, Informing, Prohibition, Right, VoucherChoice};

/// A record of this register is the data of the client it names.
macro_rules! client_record {
    ($type:ty, $permission:expr, $data_kind:literal) => {
        rekisteri_clients::created_record!($type, $permission, $data_kind, "client", client_id);
    };
}

client_record!(Informing, Permission::ManageDisclosureConsent, "kanta_informing");
client_record!(
    Prohibition,
    Permission::ManageDisclosureConsent,
    "disclosure_prohibition"
);
client_record!(Right, Permission::ManageRegistryUseRights, "registry_use_right");
client_record!(VoucherChoice, Permission::ReadClients, "voucher_provider_choice");
client_record!(CaseDocument, Permission::StoreCaseDocuments, "document");

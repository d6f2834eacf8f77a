//! What creating a record of this register discloses about a person (PL-2: an idempotent replay
//! of its 201 is logged again): each record is the data of the client it names.

use rekisteri_accounts::Permission;
use rekisteri_clients::CreatedRecord;

use crate::{CaseDocument, Informing, Prohibition, Right, VoucherChoice};

macro_rules! client_record {
    ($type:ty, $permission:expr, $data_kind:literal) => {
        impl CreatedRecord for $type {
            const PERMISSION: Permission = $permission;
            const DATA_KIND: &'static str = $data_kind;
            fn record_id(&self) -> &str {
                &self.id
            }
            fn subject_key(&self) -> (&'static str, &str) {
                ("client", &self.client_id)
            }
        }
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

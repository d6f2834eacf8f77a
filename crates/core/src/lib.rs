//! Shared domain types of Rekisteri. No I/O lives here.
//!
//! Every type that carries personal data masks itself in `Debug` and `Display`; revealing the
//! value is an explicit method call, so a stray `{:?}` in a log line cannot leak it.

/// `Serialize` as the value's text (`as_str`) and `Deserialize` through its `FromStr`, so that a
/// deserialised value is as validated as a parsed one.
macro_rules! serde_as_text {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;

pub mod calendar;
pub mod clock;
pub mod contact;
pub mod identity_code;
pub mod ids;
pub mod municipality;
pub mod oid;
pub mod redacted;
pub mod refusal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wakeup;

pub use calendar::{FinnishHoliday, add_working_days, helsinki_local, helsinki_offset, is_working_day};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use identity_code::{IdentityCodeError, PersonalIdentityCode, TemporaryCodesAllowed};
pub use ids::RegistrarId;
pub use municipality::{MunicipalityCode, MunicipalityCodeError, is_municipality};
pub use oid::{Oid, OidError};
pub use refusal::Refusal;
pub use wakeup::{Wakeup, Woken};

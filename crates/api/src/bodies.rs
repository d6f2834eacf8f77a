//! The JSON bodies of the create operations, read exactly as their handlers read them: the
//! handler's body type through [`crate::extract::parse_json`], the code behind [`crate::Json`].
//! The parser fuzz targets (PL-20, `crates/fuzz-checks`) reach the real types and the real
//! mapping of a failure to a problem document through it.

use crate::problem::Problem;

/// A create operation whose JSON body is read by [`CreateBody::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateBody {
    /// `POST /v1/registrars/{rid}/clients`.
    Client,
    /// `POST /v1/registrars/{rid}/clients/{id}/kanta-informing`.
    Informing,
    /// `PUT /v1/registrars/{rid}/clients/{id}/disclosure-consent`.
    Consent,
    /// `POST /v1/registrars/{rid}/clients/{id}/disclosure-prohibitions`.
    Prohibition,
    /// `POST /v1/registrars/{rid}/contacts` (a call record).
    Contact,
    /// `POST /v1/accounts`.
    Account,
}

impl CreateBody {
    pub const ALL: [CreateBody; 6] = [
        CreateBody::Client,
        CreateBody::Informing,
        CreateBody::Consent,
        CreateBody::Prohibition,
        CreateBody::Contact,
        CreateBody::Account,
    ];

    /// Reads `body` as the operation's handler does; a refusal is the problem document the
    /// caller would get (always 400: `validation` naming the field, or `malformed-body`).
    pub fn parse(self, body: &[u8]) -> Result<(), Box<Problem>> {
        use crate::extract::parse_json;
        let parsed = match self {
            CreateBody::Client => parse_json::<rekisteri_clients::NewClient>(body).map(drop),
            CreateBody::Informing => parse_json::<rekisteri_consent::NewInforming>(body).map(drop),
            CreateBody::Consent => parse_json::<crate::consent::ConsentBody>(body).map(drop),
            CreateBody::Prohibition => parse_json::<rekisteri_consent::NewProhibition>(body).map(drop),
            CreateBody::Contact => parse_json::<rekisteri_calls::NewContact>(body).map(drop),
            CreateBody::Account => parse_json::<crate::accounts::InviteBody>(body).map(drop),
        };
        parsed.map_err(|error| Box::new(error.to_problem()))
    }
}

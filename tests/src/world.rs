//! The organisations and users most end-to-end tests share: the [`Parties`] with a client
//! handler of each registrar and a member of staff of each provider. A test file that needs more
//! (another area, an auditor, service units) builds it on top of [`TestApp::world`].

use crate::{Parties, TestApp};

/// The client handler of `registrar`, with a right to its `home_care` area.
pub const HANDLER: &str = "handler@tampere.fi";
/// The client handler of `other_registrar`, with a right to its `home_care` area.
pub const OTHER_HANDLER: &str = "handler@nokia.fi";
/// The provider staff of `provider`.
pub const NURSE: &str = "nurse@hoiva.fi";
/// The provider staff of `other_provider`.
pub const OTHER_NURSE: &str = "nurse@apu.fi";

/// Two registrars, two providers and their users, as the register is used; the users' fields
/// are session tokens at the clock's time when the world was made.
#[derive(Clone)]
pub struct World {
    pub admin: String,
    pub registrar: String,
    pub other_registrar: String,
    pub provider: String,
    pub other_provider: String,
    /// The service area `home_care` (service type `home_care`) of `registrar`.
    pub home_care: String,
    /// The service area `home_care` (service type `home_care`) of `other_registrar`.
    pub other_home_care: String,
    /// The account of [`HANDLER`].
    pub handler_id: String,
    /// [`HANDLER`].
    pub handler: String,
    /// [`OTHER_HANDLER`].
    pub other_handler: String,
    /// [`NURSE`].
    pub provider_staff: String,
    /// [`OTHER_NURSE`].
    pub other_provider_staff: String,
}

impl TestApp {
    /// Bootstraps the admin and makes the shared [`World`].
    pub fn world(&self) -> World {
        let admin = self.bootstrap_admin();
        let Parties {
            registrar,
            other_registrar,
            provider,
            other_provider,
        } = self.parties(&admin);
        let home_care = self.service_area(&admin, &registrar, "home_care", &["home_care"]);
        let other_home_care = self.service_area(&admin, &other_registrar, "home_care", &["home_care"]);
        let (handler_id, handler) = self.add_user(&admin, HANDLER, &registrar, "client_handler");
        self.grant_service_area(&admin, &handler_id, &home_care);
        let (other_handler_id, other_handler) =
            self.add_user(&admin, OTHER_HANDLER, &other_registrar, "client_handler");
        self.grant_service_area(&admin, &other_handler_id, &other_home_care);
        let (_, provider_staff) = self.add_user(&admin, NURSE, &provider, "provider_staff");
        let (_, other_provider_staff) = self.add_user(&admin, OTHER_NURSE, &other_provider, "provider_staff");
        World {
            admin,
            registrar,
            other_registrar,
            provider,
            other_provider,
            home_care,
            other_home_care,
            handler_id,
            handler,
            other_handler,
            provider_staff,
            other_provider_staff,
        }
    }
}

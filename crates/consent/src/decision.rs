//! The disclosure decision (CO-4): one pure function over the client's loaded state.
//!
//! Order of the rules, and why:
//! 1. The organiser's exception (CO-5) first: the client cannot prohibit the organiser from
//!    disclosing to the provider that holds an open registry use right for that client and
//!    case, so neither a prohibition nor a missing consent stops it.
//! 2. A prohibition in force that matches the data (all data, its registrar, its service task or
//!    the document) denies, whatever the consent (CO-3: a prohibition wins over consent).
//! 3. Otherwise the current consent decides: only `positive` allows (CO-2: not given, negative
//!    and revoked disclose nothing).

use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

/// The client's disclosure consent (CO-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// The default: nothing is disclosed.
    NotGiven,
    Positive,
    Negative,
    Revoked,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotGiven => "not_given",
            Self::Positive => "positive",
            Self::Negative => "negative",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "not_given" => Some(Self::NotGiven),
            "positive" => Some(Self::Positive),
            "negative" => Some(Self::Negative),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// What a prohibition covers (CO-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProhibitionScope {
    All,
    Registrar(String),
    ServiceTask(String),
    Document(String),
}

impl ProhibitionScope {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Registrar(_) => "registrar",
            Self::ServiceTask(_) => "service_task",
            Self::Document(_) => "document",
        }
    }

    pub fn target(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Registrar(t) | Self::ServiceTask(t) | Self::Document(t) => Some(t),
        }
    }

    pub fn from_parts(kind: &str, target: Option<&str>) -> Option<Self> {
        match (kind, target) {
            ("all", None) => Some(Self::All),
            ("registrar", Some(t)) => Some(Self::Registrar(t.to_owned())),
            ("service_task", Some(t)) => Some(Self::ServiceTask(t.to_owned())),
            ("document", Some(t)) => Some(Self::Document(t.to_owned())),
            _ => None,
        }
    }

    fn covers(&self, data: &DataItem) -> bool {
        match self {
            Self::All => true,
            Self::Registrar(r) => *r == data.registrar_id,
            Self::ServiceTask(t) => data.service_task.as_deref() == Some(t.as_str()),
            Self::Document(d) => data.document_id.as_deref() == Some(d.as_str()),
        }
    }
}

/// A prohibition in force (not revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProhibitionInForce {
    pub id: String,
    pub scope: ProhibitionScope,
}

/// A registry use right of the client in question, in whatever state it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightState {
    pub id: String,
    /// The organiser: whose register the right writes into.
    pub registrar_id: String,
    pub provider_id: String,
    pub case_oid: String,
    /// `open`, `closed` or `reopened`.
    pub status: String,
    pub opened_on: Date,
    /// The last usable day (Finnish date).
    pub closes_after: Option<Date>,
}

/// Whether a right in `status` is usable on `today` (a Finnish date): not closed, opened, and
/// not past its last usable day; from 00:00 Europe/Helsinki after `closes_after` it is closed
/// whether or not the closing job has run (RU-5).
pub fn is_usable(status: &str, opened_on: Date, closes_after: Option<Date>, today: Date) -> bool {
    status != "closed" && opened_on <= today && closes_after.is_none_or(|last| today <= last)
}

impl RightState {
    pub fn usable_on(&self, today: Date) -> bool {
        is_usable(&self.status, self.opened_on, self.closes_after, today)
    }
}

/// The data asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataItem {
    /// Whose data it is.
    pub registrar_id: String,
    pub service_task: Option<String>,
    pub document_id: Option<String>,
    /// The case the data belongs to: named in the request, or the case of the stored document.
    pub case_oid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// `provider`, `registrar`, `organisation`, …
    pub kind: String,
    pub id: String,
}

/// Everything the decision reads, loaded beforehand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureState {
    pub consent: ConsentState,
    pub prohibitions: Vec<ProhibitionInForce>,
    pub rights: Vec<RightState>,
    /// The day in Finland the decision is made.
    pub today: Date,
}

/// Why the answer is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    Consent(ConsentState),
    Prohibition { id: String, scope: &'static str },
    OrganiserException { right_id: String, case_oid: String },
}

impl Basis {
    /// The basis as the disclosure log's `legal_basis` carries it.
    pub fn for_log(&self) -> String {
        match self {
            Self::Consent(state) => format!("consent:{}", state.as_str()),
            Self::Prohibition { id, scope } => format!("prohibition:{scope}:{id}"),
            Self::OrganiserException { right_id, .. } => format!("organiser_exception:{right_id}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    pub basis: Basis,
}

/// May `data` be disclosed to `recipient`? (CO-4)
pub fn decide(state: &DisclosureState, data: &DataItem, recipient: &Recipient) -> Decision {
    if recipient.kind == "provider"
        && let Some(case_oid) = data.case_oid.as_deref()
        && let Some(right) = state.rights.iter().find(|r| {
            r.usable_on(state.today)
                && r.provider_id == recipient.id
                && r.case_oid == case_oid
                && r.registrar_id == data.registrar_id
        })
    {
        return Decision {
            allow: true,
            basis: Basis::OrganiserException {
                right_id: right.id.clone(),
                case_oid: right.case_oid.clone(),
            },
        };
    }
    if let Some(p) = state.prohibitions.iter().find(|p| p.scope.covers(data)) {
        return Decision {
            allow: false,
            basis: Basis::Prohibition {
                id: p.id.clone(),
                scope: p.scope.kind(),
            },
        };
    }
    Decision {
        allow: state.consent == ConsentState::Positive,
        basis: Basis::Consent(state.consent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const REGISTRARS: [&str; 2] = ["r1", "r2"];
    const PROVIDERS: [&str; 2] = ["p1", "p2"];
    const TASKS: [&str; 2] = ["home_care", "family_work"];
    const DOCS: [&str; 3] = ["d1", "d2", "d3"];
    const CASES: [&str; 2] = ["1.2.3.1", "1.2.3.2"];

    fn pick(set: &'static [&'static str]) -> impl Strategy<Value = String> {
        proptest::sample::select(set).prop_map(|s: &str| s.to_owned())
    }

    fn consent() -> impl Strategy<Value = ConsentState> {
        prop_oneof![
            Just(ConsentState::NotGiven),
            Just(ConsentState::Positive),
            Just(ConsentState::Negative),
            Just(ConsentState::Revoked),
        ]
    }

    fn scope() -> impl Strategy<Value = ProhibitionScope> {
        prop_oneof![
            Just(ProhibitionScope::All),
            pick(&REGISTRARS).prop_map(ProhibitionScope::Registrar),
            pick(&TASKS).prop_map(ProhibitionScope::ServiceTask),
            pick(&DOCS).prop_map(ProhibitionScope::Document),
        ]
    }

    const TODAY: Date = time::macros::date!(2027 - 01 - 01);

    fn right_status() -> impl Strategy<Value = (String, Date, Option<Date>)> {
        use time::macros::date;
        (
            prop_oneof![Just("open"), Just("reopened"), Just("closed")],
            prop_oneof![Just(date!(2026 - 09 - 01)), Just(TODAY), Just(date!(2027 - 01 - 02))],
            prop_oneof![
                Just(None),
                Just(Some(date!(2026 - 12 - 31))),
                Just(Some(TODAY)),
                Just(Some(date!(2027 - 02 - 01))),
            ],
        )
            .prop_map(|(status, opened_on, closes_after)| (status.to_owned(), opened_on, closes_after))
    }

    fn state() -> impl Strategy<Value = DisclosureState> {
        (
            consent(),
            proptest::collection::vec(scope(), 0..3),
            proptest::collection::vec(
                (pick(&REGISTRARS), pick(&PROVIDERS), pick(&CASES), right_status()),
                0..5,
            ),
        )
            .prop_map(|(consent, scopes, rights)| DisclosureState {
                consent,
                prohibitions: scopes
                    .into_iter()
                    .enumerate()
                    .map(|(i, scope)| ProhibitionInForce {
                        id: format!("pr{i}"),
                        scope,
                    })
                    .collect(),
                rights: rights
                    .into_iter()
                    .enumerate()
                    .map(
                        |(i, (registrar_id, provider_id, case_oid, (status, opened_on, closes_after)))| RightState {
                            id: format!("ru{i}"),
                            registrar_id,
                            provider_id,
                            case_oid,
                            status,
                            opened_on,
                            closes_after,
                        },
                    )
                    .collect(),
                today: TODAY,
            })
    }

    fn data() -> impl Strategy<Value = DataItem> {
        (
            pick(&REGISTRARS),
            proptest::option::of(pick(&TASKS)),
            proptest::option::of(pick(&DOCS)),
            proptest::option::weighted(0.8, pick(&CASES)),
        )
            .prop_map(|(registrar_id, service_task, document_id, case_oid)| DataItem {
                registrar_id,
                service_task,
                document_id,
                case_oid,
            })
    }

    fn recipient() -> impl Strategy<Value = Recipient> {
        (
            prop_oneof![4 => Just("provider"), 1 => Just("registrar"), 1 => Just("organisation")],
            prop_oneof![4 => pick(&PROVIDERS), 1 => pick(&REGISTRARS)],
        )
            .prop_map(|(kind, id)| Recipient { kind: kind.into(), id })
    }

    /// A fixed seed, so a failure reproduces everywhere; a few hundred cases.
    fn runner() -> TestRunner {
        TestRunner::new_with_rng(
            Config {
                cases: 400,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
        )
    }

    /// Written out from RU-5 independently of `is_usable`: open or reopened, opened by today,
    /// today not past the last usable day.
    fn holds_open_right(state: &DisclosureState, data: &DataItem, recipient: &Recipient) -> bool {
        recipient.kind == "provider"
            && state.rights.iter().any(|r| {
                matches!(r.status.as_str(), "open" | "reopened")
                    && r.opened_on <= state.today
                    && r.closes_after.is_none_or(|last| last >= state.today)
                    && r.provider_id == recipient.id
                    && Some(&r.case_oid) == data.case_oid.as_ref()
                    && r.registrar_id == data.registrar_id
            })
    }

    #[test]
    fn co_4_nothing_is_disclosed_without_positive_consent_except_under_co_5() {
        runner()
            .run(&(state(), data(), recipient()), |(state, data, recipient)| {
                let decision = decide(&state, &data, &recipient);
                if decision.allow {
                    let exception = matches!(decision.basis, Basis::OrganiserException { .. });
                    prop_assert!(state.consent == ConsentState::Positive || exception);
                    if !exception {
                        prop_assert_eq!(decision.basis, Basis::Consent(ConsentState::Positive));
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn co_3_a_prohibition_always_wins_over_consent() {
        runner()
            .run(&(state(), data(), recipient()), |(state, data, recipient)| {
                let decision = decide(&state, &data, &recipient);
                let matching = state.prohibitions.iter().any(|p| p.scope.covers(&data));
                if matching && !holds_open_right(&state, &data, &recipient) {
                    prop_assert!(!decision.allow);
                    prop_assert!(
                        matches!(decision.basis, Basis::Prohibition { .. }),
                        "{:?}",
                        decision.basis
                    );
                }
                // Turning the consent positive never lifts a matching prohibition.
                let positive = DisclosureState {
                    consent: ConsentState::Positive,
                    ..state.clone()
                };
                if matching && !holds_open_right(&state, &data, &recipient) {
                    prop_assert!(!decide(&positive, &data, &recipient).allow);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn co_5_exception_only_for_the_provider_holding_an_open_right_for_that_client_and_case() {
        // The generated cases must exercise both sides: exceptions granted, and refused to a
        // provider whose right for the case is closed or not yet open.
        let granted = std::cell::Cell::new(0);
        let refused_for_state = std::cell::Cell::new(0);
        runner()
            .run(&(state(), data(), recipient()), |(state, data, recipient)| {
                let decision = decide(&state, &data, &recipient);
                let exception = matches!(decision.basis, Basis::OrganiserException { .. });
                granted.set(granted.get() + usize::from(exception));
                let right_not_usable = recipient.kind == "provider"
                    && state.rights.iter().any(|r| {
                        r.provider_id == recipient.id
                            && Some(&r.case_oid) == data.case_oid.as_ref()
                            && r.registrar_id == data.registrar_id
                            && !r.usable_on(state.today)
                    });
                refused_for_state.set(refused_for_state.get() + usize::from(right_not_usable && !exception));
                prop_assert_eq!(exception, holds_open_right(&state, &data, &recipient));
                if let Basis::OrganiserException { right_id, case_oid } = &decision.basis {
                    let right = state.rights.iter().find(|r| &r.id == right_id).unwrap();
                    prop_assert_eq!(&right.provider_id, &recipient.id);
                    prop_assert!(right.status != "closed");
                    prop_assert!(right.closes_after.is_none_or(|last| last >= state.today));
                    prop_assert_eq!(Some(case_oid), data.case_oid.as_ref());
                    prop_assert!(decision.allow);
                }
                Ok(())
            })
            .unwrap();
        eprintln!(
            "co_5: {} exceptions, {} refused",
            granted.get(),
            refused_for_state.get()
        );
        assert!(granted.get() > 0, "no case exercised the exception");
        assert!(refused_for_state.get() > 0, "no case had a closed or future right");
    }

    #[test]
    fn co_3_prohibiting_one_document_leaves_the_others_disclosable() {
        let state = DisclosureState {
            consent: ConsentState::Positive,
            prohibitions: vec![ProhibitionInForce {
                id: "pr".into(),
                scope: ProhibitionScope::Document("d1".into()),
            }],
            rights: vec![],
            today: TODAY,
        };
        let recipient = Recipient {
            kind: "registrar".into(),
            id: "r2".into(),
        };
        let item = |doc: &str| DataItem {
            registrar_id: "r1".into(),
            service_task: Some("home_care".into()),
            document_id: Some(doc.into()),
            case_oid: None,
        };
        assert!(!decide(&state, &item("d1"), &recipient).allow);
        assert!(decide(&state, &item("d2"), &recipient).allow);
    }
}

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

/// A registry use right usable at the moment of the decision (open or reopened, within its
/// dates), of the client in question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableRight {
    pub id: String,
    /// The organiser: whose register the right writes into.
    pub registrar_id: String,
    pub provider_id: String,
    pub case_oid: String,
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
    pub usable_rights: Vec<UsableRight>,
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
        && let Some(right) = state
            .usable_rights
            .iter()
            .find(|r| r.provider_id == recipient.id && r.case_oid == case_oid && r.registrar_id == data.registrar_id)
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

    fn state() -> impl Strategy<Value = DisclosureState> {
        (
            consent(),
            proptest::collection::vec(scope(), 0..3),
            proptest::collection::vec((pick(&REGISTRARS), pick(&PROVIDERS), pick(&CASES)), 0..3),
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
                usable_rights: rights
                    .into_iter()
                    .enumerate()
                    .map(|(i, (registrar_id, provider_id, case_oid))| UsableRight {
                        id: format!("ru{i}"),
                        registrar_id,
                        provider_id,
                        case_oid,
                    })
                    .collect(),
            })
    }

    fn data() -> impl Strategy<Value = DataItem> {
        (
            pick(&REGISTRARS),
            proptest::option::of(pick(&TASKS)),
            proptest::option::of(pick(&DOCS)),
            proptest::option::of(pick(&CASES)),
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
            prop_oneof![Just("provider"), Just("registrar"), Just("organisation")],
            prop_oneof![pick(&PROVIDERS), pick(&REGISTRARS)],
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

    fn holds_open_right(state: &DisclosureState, data: &DataItem, recipient: &Recipient) -> bool {
        recipient.kind == "provider"
            && state.usable_rights.iter().any(|r| {
                r.provider_id == recipient.id
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
        runner()
            .run(&(state(), data(), recipient()), |(state, data, recipient)| {
                let decision = decide(&state, &data, &recipient);
                let exception = matches!(decision.basis, Basis::OrganiserException { .. });
                prop_assert_eq!(exception, holds_open_right(&state, &data, &recipient));
                if let Basis::OrganiserException { right_id, case_oid } = &decision.basis {
                    let right = state.usable_rights.iter().find(|r| &r.id == right_id).unwrap();
                    prop_assert_eq!(&right.provider_id, &recipient.id);
                    prop_assert_eq!(Some(case_oid), data.case_oid.as_ref());
                    prop_assert!(decision.allow);
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn co_3_prohibiting_one_document_leaves_the_others_disclosable() {
        let state = DisclosureState {
            consent: ConsentState::Positive,
            prohibitions: vec![ProhibitionInForce {
                id: "pr".into(),
                scope: ProhibitionScope::Document("d1".into()),
            }],
            usable_rights: vec![],
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

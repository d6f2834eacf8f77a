//! Special reasons (erityinen syy) for reaching a client without a care relationship (AX-5).
//!
//! The codes follow THL's classification "Asiakastietojen erityinen syy" (the classification
//! server is not reachable from here, so the list below is kept in code and must be compared
//! with THL's current version when it changes). A reason is always stated with a free-text
//! explanation, which goes to the usage log with the code and to the AU-10 report.

/// One code of the list and what it means.
pub struct SpecialReasonCode {
    pub code: &'static str,
    pub meaning: &'static str,
}

/// The codes a caller may state.
pub const SPECIAL_REASON_CODES: &[SpecialReasonCode] = &[
    SpecialReasonCode {
        code: "1",
        meaning: "urgent need: the client's safety or care cannot wait for a care relationship",
    },
    SpecialReasonCode {
        code: "2",
        meaning: "consultation or a professional's work for the client outside the care team",
    },
    SpecialReasonCode {
        code: "3",
        meaning: "handling of the client's matter that has no care relationship (complaint, appeal, request)",
    },
    SpecialReasonCode {
        code: "4",
        meaning: "a statutory task of supervision, inspection or investigation",
    },
    SpecialReasonCode {
        code: "9",
        meaning: "another reason based on the work task, explained in the free text",
    },
];

/// A stated special reason: a code of [`SPECIAL_REASON_CODES`] and its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialReason {
    pub code: &'static str,
    pub explanation: String,
}

impl SpecialReason {
    /// Errors name the field (`Special-Reason` or `Special-Reason-Explanation`) and the reason.
    pub fn parse(code: &str, explanation: Option<&str>) -> Result<Self, (&'static str, String)> {
        let Some(known) = SPECIAL_REASON_CODES.iter().find(|c| c.code == code.trim()) else {
            let codes: Vec<&str> = SPECIAL_REASON_CODES.iter().map(|c| c.code).collect();
            return Err((
                "Special-Reason",
                format!("is not a code of the special-reason list ({})", codes.join(", ")),
            ));
        };
        let explanation = explanation.map(str::trim).unwrap_or_default();
        if explanation.chars().count() < 10 || explanation.chars().count() > 500 {
            return Err((
                "Special-Reason-Explanation",
                "a special reason needs an explanation of 10-500 characters".to_owned(),
            ));
        }
        if explanation.chars().any(char::is_control) {
            return Err((
                "Special-Reason-Explanation",
                "must not contain control characters".to_owned(),
            ));
        }
        Ok(Self {
            code: known.code,
            explanation: explanation.to_owned(),
        })
    }

    /// The text the usage log keeps: the code, then the explanation.
    pub fn for_log(&self) -> String {
        format!("{}: {}", self.code, self.explanation)
    }
}

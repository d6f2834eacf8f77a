//! Call-recording audio over HTTP (CA-3, CA-8): the telephony system streams a contact's audio
//! in once; a listener streams it out on a listening grant, with `Range` for seeking.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, put, web};
use futures_util::StreamExt;
use rekisteri_calls::{Recording, StoredAudio};
use rekisteri_recordings::{DataKey, RecordingError};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::calls::request;
use crate::middleware::RequestId;
use crate::principal::Authenticated;
use crate::problem::{ApiError, FieldError, Problem, ProblemType};
use crate::{AppState, RunBlocking};

pub fn configure(config: &mut ServiceConfig) {
    config.service(upload_recording).service(audio);
}

fn storage_error(e: RecordingError) -> ApiError {
    match e {
        RecordingError::TooLarge { limit } => ApiError::problem(
            ProblemType::PayloadTooLarge,
            format!("A recording may be at most {limit} bytes."),
        ),
        RecordingError::UnsupportedAudio => ApiError::Validation(vec![FieldError::new(
            "body",
            "is not WAV, Ogg/Opus or MP3 audio (checked from the bytes)",
        )]),
        RecordingError::Body(_) => ApiError::problem(
            ProblemType::MalformedBody,
            "The request body could not be read to its end.",
        ),
        RecordingError::AlreadyExists => ApiError::problem(
            ProblemType::Conflict,
            "The contact already has its audio; a recording is never replaced or changed.",
        ),
        RecordingError::InvalidRange => ApiError::problem(
            ProblemType::RangeNotSatisfiable,
            "The requested range is not inside the recording.",
        ),
        RecordingError::Integrity => ApiError::problem(
            ProblemType::IntegrityFailure,
            "The stored recording failed its integrity check; the registrar has been alerted.",
        ),
        RecordingError::NotFound => ApiError::problem(
            ProblemType::IntegrityFailure,
            "The recording's audio is missing from storage; the registrar has been alerted.",
        ),
        // A key of ours that storage refused, storage itself, or our keys: failures of ours.
        e @ (RecordingError::InvalidKey | RecordingError::Storage(_) | RecordingError::Crypto) => ApiError::internal(e),
    }
}

/// Upload a contact's recording or voicemail (CA-3): the raw audio as the body (WAV, Ogg/Opus
/// or MP3, recognised from the bytes), streamed to storage and encrypted in chunks, never held
/// whole in memory. Once only: a recording is never replaced or changed.
#[utoipa::path(
    tag = "calls",
    params(("rid" = String, Path, description = "Registrar (organisation) id"), ("id" = String, Path, description = "Contact id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The audio: WAV, Ogg/Opus or MP3, at most 200 MB by default"),
    responses(
        (status = 201, body = Recording),
        (status = 400, description = "The body is not audio of an accepted type, or broke off", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The contact already has its audio", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A chat, or a call of a queue that is not recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/registrars/{rid}/contacts/{id}/recording")]
async fn upload_recording(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (rid, id) = path.into_inner();
    let principal = principal.0;
    let plan = {
        let (principal, request_id) = (principal.clone(), request_id.clone());
        state
            .run(move |conn, state| {
                let request = request(state, &principal, &rid, "call register: upload recording", &request_id);
                Ok(rekisteri_calls::begin_upload(conn, &request, &rid, &id)?)
            })
            .await?
    };
    let data_key = DataKey::generate().map_err(storage_error)?;
    let sealed_data_key = data_key
        .seal(&state.keyring, &plan.recording_id)
        .map_err(storage_error)?;
    let stored = state
        .audio
        .put(&plan.storage_key, &plan.recording_id, &data_key, body)
        .await
        .map_err(storage_error)?;
    let stored = StoredAudio {
        bytes: stored.bytes,
        sha256: stored.sha256,
        content_type: stored.audio_type.content_type().to_owned(),
        sealed_data_key,
    };
    // From here the commit and, if it fails, the object's removal run to their end even when
    // the client hangs up: a dropped handler must not leave audio that no row names.
    let location = format!("/v1/registrars/{}/contacts/{}", plan.registrar_id, plan.contact_id);
    let committed = actix_web::rt::spawn(async move {
        let committed = {
            let plan = plan.clone();
            state
                .run(move |conn, state| {
                    let request = request(
                        state,
                        &principal,
                        &plan.registrar_id,
                        "call register: upload recording",
                        &request_id,
                    );
                    Ok(rekisteri_calls::finish_upload(
                        conn,
                        &state.calls(),
                        &request,
                        &plan,
                        stored,
                    )?)
                })
                .await
        };
        if committed.is_err()
            && let Err(delete) = state.audio.delete(&plan.storage_key).await
        {
            log::error!("an uncommitted recording object could not be deleted: {delete}");
        }
        committed
    })
    .await
    .map_err(|e| ApiError::internal(format!("the upload's commit task failed: {e}")))?;
    let recording = committed?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(recording))
}

/// Tells the registrar that a granted recording's stored audio failed its check (CA-3).
async fn alert_integrity_failure(
    state: web::Data<AppState>,
    principal: rekisteri_accounts::Principal,
    request_id: RequestId,
    granted: rekisteri_calls::GrantedAudio,
) -> Result<(), ApiError> {
    state
        .run(move |_, state| {
            let request = request(
                state,
                &principal,
                &granted.registrar_id,
                "call register: listening",
                &request_id,
            );
            Ok(rekisteri_calls::record_integrity_failure(
                &state.calls(),
                &request,
                &granted,
            )?)
        })
        .await
}

/// A parsed `Range` header: the one range served, or none (the whole file).
enum Wanted {
    Whole,
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` and `bytes=-n` (RFC 9110 §14.1.2). A header that is not one byte
/// range (several ranges, another unit, nonsense) is ignored, as the RFC allows: the whole
/// file is served.
fn wanted(req: &HttpRequest, size: u64) -> Wanted {
    let Some(value) = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Wanted::Whole;
    };
    let value = value.trim();
    // The unit is case-insensitive (RFC 9110 §14.1).
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .and_then(|_| value.get(6..))
    else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    // Digits only: `u64::from_str` would also take a sign.
    let parse = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => match parse(last) {
            Some(0) | None => return Wanted::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
        },
        (false, true) => match parse(first) {
            Some(start) => start..size,
            None => return Wanted::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if end >= start => start..end.saturating_add(1).min(size),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if range.start >= size || range.start >= range.end {
        return Wanted::Unsatisfiable;
    }
    // Even a range of the whole file (a player's `bytes=0-`) is a 206: each chunk it reads is
    // authenticated, and the whole-file hash check stays for reads without `Range`.
    Wanted::Part(range)
}

/// Stream the audio of a listening grant (CA-8), to the user it was issued to, while it lasts
/// and the listening right holds (CA-12). `Range: bytes=…` answers 206 with `Content-Range`; a
/// whole read is checked against the stored hash before its first byte is sent (CA-3). Every
/// request is a logged use of the recording.
#[utoipa::path(
    tag = "calls",
    params(
        ("grant_id" = String, Path, description = "The grant's id from a listening request"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-65535`"),
    ),
    responses(
        (status = 200, description = "The whole recording, as the type it was recognised as", content(
            (Vec<u8> = "audio/wav"), (Vec<u8> = "audio/ogg"), (Vec<u8> = "audio/mpeg")
        )),
        (status = 206, description = "The requested range", content(
            (Vec<u8> = "audio/wav"), (Vec<u8> = "audio/ogg"), (Vec<u8> = "audio/mpeg")
        ), headers(("Content-Range" = String, description = "bytes START-END/SIZE"))),
        (status = 403, description = "The grant expired, or the listening right ended", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such grant for this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The audio was destroyed by retention", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range is outside the recording", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The stored audio failed its integrity check", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/listening-grants/{grant_id}/audio")]
async fn audio(
    state: web::Data<AppState>,
    principal: Authenticated,
    request_id: RequestId,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let grant_id = path.into_inner();
    let principal = principal.0;
    let granted = {
        let (principal, request_id) = (principal.clone(), request_id.clone());
        state
            .run(move |conn, state| {
                let request = request(state, &principal, "platform", "call register: listening", &request_id);
                Ok(rekisteri_calls::open_grant(
                    conn,
                    &state.calls(),
                    &request,
                    &grant_id,
                    "call register: listening",
                )?)
            })
            .await?
    };
    let data_key =
        DataKey::open(&state.keyring, &granted.recording_id, &granted.sealed_data_key).map_err(storage_error)?;
    let size = granted.bytes;
    let (status, range) = match wanted(&req, size) {
        Wanted::Unsatisfiable => {
            let mut response = actix_web::ResponseError::error_response(&storage_error(RecordingError::InvalidRange));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
        Wanted::Whole => {
            let verified = state
                .audio
                .verify(
                    &granted.storage_key,
                    &granted.recording_id,
                    &data_key,
                    &granted.sha256,
                    size,
                )
                .await;
            if let Err(e) = verified {
                if matches!(e, RecordingError::Integrity | RecordingError::NotFound) {
                    alert_integrity_failure(state.clone(), principal.clone(), request_id.clone(), granted.clone())
                        .await?;
                }
                return Err(storage_error(e));
            }
            (actix_web::http::StatusCode::OK, 0..size)
        }
        Wanted::Part(range) => (actix_web::http::StatusCode::PARTIAL_CONTENT, range),
    };
    let length = range.end - range.start;
    let content_range = format!("bytes {}-{}/{size}", range.start, range.end.saturating_sub(1));
    let alert = std::sync::Arc::new(std::sync::Once::new());
    let content_type = granted.content_type.clone();
    let stream = state
        .audio
        .read_range(&granted.storage_key, &granted.recording_id, &data_key, range, size)
        .map(move |chunk| {
            chunk.map_err(|e| {
                // The headers are gone already: the connection breaks, and the registrar hears
                // of the failed chunk through a security event.
                if matches!(e, RecordingError::Integrity | RecordingError::NotFound) {
                    let (state, principal, request_id, granted) =
                        (state.clone(), principal.clone(), request_id.clone(), granted.clone());
                    alert.call_once(move || {
                        actix_web::rt::spawn(async move {
                            if let Err(e) = alert_integrity_failure(state, principal, request_id, granted).await {
                                log::error!("a recording's integrity failure could not be logged: {e}");
                            }
                        });
                    });
                }
                actix_web::error::ErrorInternalServerError(e.to_string())
            })
        });
    let mut response = HttpResponse::build(status);
    response
        .content_type(content_type.as_str())
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .no_chunking(length);
    if status == actix_web::http::StatusCode::PARTIAL_CONTENT {
        response.insert_header((header::CONTENT_RANGE, content_range));
    }
    Ok(response.streaming(stream))
}

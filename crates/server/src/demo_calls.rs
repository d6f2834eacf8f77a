//! The demo's register of call and contact recordings (CA): a telephone service unit of the
//! first demo registrar with a recorded queue, a call agent and a call supervisor working in it,
//! and three contacts (a recorded call, a callback and a voicemail, the two with audio), so
//! that a newcomer can list contacts, ask to listen and fetch the audio with `Range`.

use rekisteri_accounts::{Organisation, Principal, Register, Role};
use rekisteri_calls::{CallRegister, ContactKind, NewContact, NewQueue, StoredAudio};
use rekisteri_db::DbConnection;
use rekisteri_recordings::{AudioStore, DataKey};
use time::{Duration, OffsetDateTime};

use crate::demo::{DemoUser, add_user, audit_context, during, oid, principal_of};

/// What the call-register part of the demo made.
pub(crate) struct SeededCalls {
    pub users: Vec<DemoUser>,
    pub contacts: usize,
}

/// A second of a 440 Hz tone as 8 kHz 16-bit mono WAV: small, and a real audio file.
fn tone_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..8000)
        .map(|n| {
            let phase = f64::from(n) * 440.0 * std::f64::consts::TAU / 8000.0;
            (phase.sin() * 8000.0) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut out = rekisteri_recordings::wav_header(data_len);
    out.reserve(samples.len() * 2);
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn seed(
    conn: &mut DbConnection,
    register: &Register,
    calls: &CallRegister,
    audio: &AudioStore,
    admin: &Principal,
    registrar: &Organisation,
    main_user: &DemoUser,
    domain: &str,
    now: &dyn Fn() -> OffsetDateTime,
) -> Result<SeededCalls, String> {
    let registrar_oid = registrar
        .oid
        .as_ref()
        .map(ToString::to_string)
        .ok_or_else(|| format!("{} has no OID", registrar.name))?;
    let unit = rekisteri_accounts::add_service_unit(
        conn,
        register,
        admin,
        &registrar.id,
        oid(&format!("{registrar_oid}.10.50"))?,
        &format!("{}, puhelinpalvelu", registrar.name),
        now(),
    )
    .map_err(during("adding the telephone service unit"))?;
    let mut users = Vec::new();
    for (role, local, what) in [
        (Role::CallSupervisor, "call-supervisor", "Call supervisor"),
        (Role::CallAgent, "call-agent", "Call agent"),
    ] {
        users.push(add_user(
            conn,
            register,
            admin,
            registrar,
            role,
            format!("{local}@{domain}.demo.test"),
            &format!("{what} ({})", registrar.name),
            vec![unit.id.clone()],
            now,
        )?);
    }
    let main = principal_of(conn, register, main_user, now())?;
    let agent = principal_of(conn, register, &users[1], now())?;
    fn request<'p>(
        principal: &'p Principal,
        registrar: &Organisation,
        purpose: &str,
        n: usize,
        now: OffsetDateTime,
    ) -> rekisteri_calls::Request<'p> {
        rekisteri_calls::Request {
            principal,
            audit: audit_context(principal, &registrar.id, purpose, 10_000 + n),
            now,
            access_cache: Default::default(),
        }
    }
    let queue = rekisteri_calls::create_queue(
        conn,
        calls,
        &request(&main, registrar, "demo seed: create queue", 0, now()),
        &registrar.id,
        NewQueue {
            name: "Sosiaalipalveluiden neuvonta".into(),
            service_unit_id: unit.id.clone(),
            recorded: true,
            recording_announcement: Some(
                "Puhelu nauhoitetaan palvelun laadun varmistamiseksi ja sovitun todentamiseksi.".into(),
            ),
        },
    )
    .map_err(during("creating the demo queue"))?;
    let executor = actix_web::rt::Runtime::new().map_err(during("starting the audio runtime"))?;
    let started = now() - Duration::hours(2);
    let contacts = [
        (ContactKind::Call, "+358401230001", Some(240), true),
        (ContactKind::Callback, "+358401230002", Some(180), false),
        (ContactKind::Voicemail, "+358401230003", Some(35), true),
    ];
    for (n, (kind, number, duration, with_audio)) in contacts.iter().enumerate() {
        let contact = rekisteri_calls::create_contact(
            conn,
            calls,
            &request(&agent, registrar, "demo seed: push contact", n + 1, now()),
            &registrar.id,
            NewContact {
                kind: *kind,
                queue_id: queue.id.clone(),
                caller_number: Some((*number).into()),
                secret_number: false,
                agent_id: (*kind != ContactKind::Voicemail).then(|| agent.account_id.clone()),
                answered: None,
                home_municipality: Some("837".into()),
                started_at: started + Duration::minutes(10 * n as i64),
                wait_seconds: Some(30 + 20 * n as i32),
                duration_seconds: *duration,
                client_name: None,
                client_identity_code: None,
            },
        )
        .map_err(during(format!("pushing demo contact {}", n + 1)))?;
        if !with_audio {
            continue;
        }
        let upload = request(&agent, registrar, "demo seed: upload recording", 100 + n, now());
        let plan = rekisteri_calls::begin_upload(conn, &upload, &registrar.id, &contact.id)
            .map_err(during("planning a demo upload"))?;
        let key = DataKey::generate().map_err(during("a data key"))?;
        let sealed_data_key = key
            .seal(&calls.keyring, &plan.recording_id)
            .map_err(during("sealing a data key"))?;
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes_of(tone_wav()))]);
        let stored = executor
            .block_on(audio.put(&plan.storage_key, &plan.recording_id, &key, body))
            .map_err(during("storing demo audio"))?;
        rekisteri_calls::finish_upload(
            conn,
            calls,
            &upload,
            &plan,
            StoredAudio {
                bytes: stored.bytes,
                sha256: stored.sha256,
                content_type: stored.audio_type.content_type().to_owned(),
                sealed_data_key,
            },
        )
        .map_err(during("recording demo audio"))?;
    }
    Ok(SeededCalls {
        users,
        contacts: contacts.len(),
    })
}

fn bytes_of(v: Vec<u8>) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(v)
}

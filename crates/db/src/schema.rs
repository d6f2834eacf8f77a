//! The diesel schema shared by both backends. Column types are the common subset: `Text` for
//! ids (UUIDs as text), `Binary` for ciphertexts and hashes, `Timestamp` for UTC instants.

diesel::table! {
    /// The version of everything authentication and access decisions read (one row, id 1).
    access_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    key_checks (purpose, key_id) {
        purpose -> Text,
        key_id -> Text,
        check_value -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    audit_chains (chain_id) {
        chain_id -> Text,
        last_seq -> BigInt,
        last_hash -> Binary,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Log entries of committed changes waiting for their place in the chain (PostgreSQL).
    audit_outbox (id) {
        id -> BigInt,
        created_at -> Timestamp,
        entry -> Text,
    }
}

diesel::table! {
    usage_log (chain_id, seq) {
        chain_id -> Text,
        seq -> BigInt,
        occurred_at -> Timestamp,
        registrar_id -> Text,
        log_controller_id -> Text,
        subject_index -> Nullable<Binary>,
        data_kind -> Text,
        data_id -> Nullable<Text>,
        outcome -> Text,
        actor_kind -> Text,
        actor_id -> Text,
        actor_name -> Nullable<Text>,
        on_behalf_of -> Nullable<Text>,
        service_unit_oid -> Nullable<Text>,
        purpose -> Text,
        access_basis -> Text,
        special_reason -> Nullable<Text>,
        request_id -> Text,
        calling_system -> Nullable<Text>,
        prev_hash -> Binary,
        hash -> Binary,
    }
}

diesel::table! {
    disclosure_log (chain_id, seq) {
        chain_id -> Text,
        seq -> BigInt,
        occurred_at -> Timestamp,
        registrar_id -> Text,
        subject_index -> Nullable<Binary>,
        description -> Text,
        discloser_kind -> Text,
        discloser_id -> Text,
        recipient_kind -> Text,
        recipient_id -> Text,
        recipient_name -> Nullable<Text>,
        purpose -> Text,
        legal_basis -> Text,
        request_id -> Text,
        prev_hash -> Binary,
        hash -> Binary,
    }
}

diesel::table! {
    security_events (chain_id, seq) {
        chain_id -> Text,
        seq -> BigInt,
        occurred_at -> Timestamp,
        organisation_id -> Nullable<Text>,
        event_type -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        details -> Text,
        request_id -> Nullable<Text>,
        prev_hash -> Binary,
        hash -> Binary,
    }
}

diesel::table! {
    audit_checkpoints (chain_id, seq, kind) {
        chain_id -> Text,
        seq -> BigInt,
        kind -> Text,
        hash -> Binary,
        signing_key_id -> Nullable<Text>,
        signature -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    organisations (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        oid -> Nullable<Text>,
        business_id -> Nullable<Text>,
        strong_authentication_required -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// CL-15: whole years an anonymised client is kept before deletion (migration 000009).
        anonymised_retention_years -> Integer,
        /// Source 000 §4: JSON {name, email, phone} (migration 000025).
        contact_person -> Nullable<Text>,
        data_protection_officer -> Nullable<Text>,
        /// VT-9: the registrar's own DVV permit reference (migration 000025).
        dvv_permit_reference -> Nullable<Text>,
    }
}

diesel::table! {
    service_units (id) {
        id -> Text,
        organisation_id -> Text,
        oid -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        organisation_id -> Text,
        email_index -> Binary,
        email -> Binary,
        first_name -> Binary,
        surname -> Binary,
        password_hash -> Nullable<Text>,
        status -> Text,
        closed_at -> Nullable<Timestamp>,
        last_login_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    account_roles (id) {
        id -> Text,
        account_id -> Text,
        role -> Text,
        valid_from -> Timestamp,
        valid_until -> Nullable<Timestamp>,
        granted_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    account_service_units (id) {
        id -> Text,
        account_id -> Text,
        service_unit_id -> Text,
        valid_from -> Timestamp,
        valid_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    invitations (token_hash) {
        token_hash -> Binary,
        account_id -> Text,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Binary,
        id -> Text,
        account_id -> Text,
        auth_method -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    login_throttle (throttle_key) {
        throttle_key -> Binary,
        failures -> Integer,
        window_started_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Text,
        organisation_id -> Text,
        name -> Text,
        secret_hash -> Binary,
        scopes -> Text,
        created_by -> Nullable<Text>,
        created_at -> Timestamp,
        secret_rotated_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        strong_user_authentication_attested_by -> Nullable<Text>,
        strong_user_authentication_attested_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (token_hash) {
        token_hash -> Binary,
        client_id -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    notification_outbox (id) {
        id -> Text,
        organisation_id -> Text,
        account_id -> Text,
        kind -> Text,
        details -> Text,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        state -> Text,
        attempts -> BigInt,
        next_attempt_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    change_history (id) {
        id -> BigInt,
        table_name -> Text,
        row_id -> Text,
        operation -> Text,
        actor -> Text,
    }
}

diesel::table! {
    service_areas (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        code -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    service_types (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        code -> Text,
        service_area_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    account_service_areas (id) {
        id -> Text,
        registrar_id -> Text,
        account_id -> Text,
        service_area_id -> Text,
        valid_from -> Timestamp,
        valid_until -> Nullable<Timestamp>,
        granted_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    clients (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        subject_index -> Nullable<Binary>,
        identity_code -> Nullable<Binary>,
        first_names -> Nullable<Binary>,
        surname -> Nullable<Binary>,
        gender -> Text,
        home_municipality -> Nullable<Text>,
        moved_in_on -> Nullable<Date>,
        moved_out_on -> Nullable<Date>,
        died_on -> Nullable<Date>,
        language -> Nullable<Text>,
        email -> Nullable<Binary>,
        phone -> Nullable<Binary>,
        next_of_kin -> Nullable<Binary>,
        address -> Nullable<Binary>,
        protection_order -> Bool,
        restricted -> Bool,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        anonymised_at -> Nullable<Timestamp>,
        /// CL-14, CL-16: year of birth, kept through anonymisation for age groups (migration 000009).
        birth_year -> Nullable<Integer>,
        /// VT-4: the temporary and postal addresses from VTJ, sealed like `address` (migration 000026).
        temporary_address -> Nullable<Binary>,
        postal_address -> Nullable<Binary>,
        /// VT-4: guardianship from VTJ (EDUNVALVONTA, EDUNVALVONTAVALTUUTUS) with its dates, sealed.
        guardianship -> Nullable<Binary>,
        /// VT-4: `month` or `year` when VTJ gave the date with that precision only; NULL: a full date.
        moved_in_on_precision -> Nullable<Text>,
        moved_out_on_precision -> Nullable<Text>,
        died_on_precision -> Nullable<Text>,
    }
}

diesel::table! {
    services (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        kind -> Text,
        service_type -> Text,
        service_name -> Text,
        quantity_centi -> BigInt,
        unit -> Text,
        unit_value_cents -> Nullable<BigInt>,
        valid_from -> Date,
        valid_to -> Date,
        provider_id -> Text,
        provider_unit_oid -> Nullable<Text>,
        decision_ref -> Nullable<Text>,
        status -> Text,
        closed_on -> Nullable<Date>,
        additional_info -> Nullable<Binary>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    service_events (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        service_id -> Text,
        client_id -> Text,
        delivered_on -> Date,
        quantity_centi -> BigInt,
        unit_price_cents -> BigInt,
        note -> Nullable<Binary>,
        recorded_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    proxies (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        subject_index -> Binary,
        identity_code -> Binary,
        first_names -> Binary,
        surname -> Binary,
        phone -> Nullable<Binary>,
        email -> Nullable<Binary>,
        valid_from -> Date,
        valid_to -> Nullable<Date>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    care_team_members (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        account_id -> Text,
        service_unit_id -> Text,
        team_role -> Nullable<Text>,
        valid_from -> Date,
        valid_until -> Nullable<Date>,
        added_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(service_units -> organisations (organisation_id));
diesel::joinable!(accounts -> organisations (organisation_id));
diesel::joinable!(account_roles -> accounts (account_id));
diesel::joinable!(account_service_units -> accounts (account_id));
diesel::joinable!(account_service_units -> service_units (service_unit_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(registrar_municipalities -> organisations (registrar_id));
diesel::allow_tables_to_appear_in_same_query!(
    access_version,
    organisations,
    service_units,
    accounts,
    account_roles,
    account_service_units,
    sessions,
    api_clients,
    api_tokens,
    notification_outbox,
    service_areas,
    service_types,
    account_service_areas,
    clients,
    services,
    service_events,
    proxies,
    care_team_members,
    client_death_closures,
    client_moves,
    registrar_municipalities
);

// Idempotency keys of creating POSTs (PL-2) and data-subject requests (CL-12): migration 000010.
diesel::table! {
    idempotency_keys (registrar_id, caller, idempotency_key) {
        registrar_id -> Text,
        caller -> Text,
        idempotency_key -> Text,
        id -> Text,
        method -> Text,
        path -> Text,
        request_hash -> Binary,
        state -> Text,
        status -> Nullable<Integer>,
        location -> Nullable<Text>,
        etag -> Nullable<Text>,
        content_type -> Nullable<Text>,
        withheld -> Bool,
        body -> Nullable<Binary>,
        disclosure -> Nullable<Binary>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        owner -> Nullable<Text>,
        written -> Bool,
    }
}

diesel::table! {
    data_subject_requests (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        kind -> Text,
        subject_index -> Binary,
        identity_code -> Binary,
        client_id -> Nullable<Text>,
        requester -> Nullable<Binary>,
        details -> Nullable<Binary>,
        received_on -> Date,
        first_due_on -> Date,
        due_on -> Date,
        extension_reason -> Nullable<Binary>,
        extension_notified_on -> Nullable<Date>,
        status -> Text,
        refusal_reasons -> Nullable<Binary>,
        complaint_route -> Nullable<Text>,
        closed_on -> Nullable<Date>,
        handled_by -> Nullable<Text>,
        created_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        /// Source 000 §4: how the requester's identity was verified (migration 000025).
        identity_verification -> Nullable<Text>,
    }
}

// Kanta informing, disclosure consent and prohibitions (CO), registry use rights and case
// documents (RU): migration 000012.
diesel::table! {
    kanta_informings (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        informed_at -> Timestamp,
        method -> Text,
        recorded_by -> Text,
        recorded_by_organisation -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    disclosure_consents (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        state -> Text,
        recorded_by -> Text,
        recorded_by_organisation -> Text,
        recorded_at -> Timestamp,
        seq -> BigInt,
    }
}

diesel::table! {
    disclosure_prohibitions (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        scope -> Text,
        target -> Nullable<Text>,
        recorded_by -> Text,
        recorded_by_organisation -> Text,
        recorded_at -> Timestamp,
        revoked_by -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    kanta_settings (registrar_id) {
        registrar_id -> Text,
        kanta_start_date -> Date,
        case_oid_root -> Text,
        last_case_number -> BigInt,
        closing_notice_working_days -> Integer,
        signed_document_types -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    provider_contracts (registrar_id, provider_id) {
        registrar_id -> Text,
        provider_id -> Text,
        contract_ref -> Text,
        kanta_joined_on -> Nullable<Date>,
        updated_at -> Timestamp,
        kanta_exemption -> Nullable<Text>,
    }
}

diesel::table! {
    voucher_provider_choices (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        service_id -> Text,
        provider_id -> Text,
        provider_unit_oid -> Text,
        reported_by -> Text,
        reported_at -> Timestamp,
    }
}

diesel::table! {
    registry_use_rights (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        client_id -> Text,
        service_id -> Text,
        provider_id -> Text,
        provider_unit_oid -> Text,
        case_oid -> Text,
        opened_on -> Date,
        service_ended_on -> Nullable<Date>,
        closes_after -> Nullable<Date>,
        closing_set_by_organiser -> Bool,
        status -> Text,
        closed_at -> Nullable<Timestamp>,
        reopen_reason -> Nullable<Text>,
        warned_for -> Nullable<Date>,
        unit_oid_changed -> Bool,
        opened_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    case_documents (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        case_oid -> Text,
        right_id -> Text,
        client_id -> Text,
        service_task -> Text,
        author_id -> Text,
        author_unit_oid -> Text,
        provider_id -> Text,
        document_type -> Text,
        structure_id -> Text,
        title -> Binary,
        document_time -> Timestamp,
        signature -> Nullable<Binary>,
        content_type -> Text,
        content -> Binary,
        local_copy -> Text,
        local_copy_marked_at -> Nullable<Timestamp>,
        local_copy_destroyed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    security_incidents (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        state -> Text,
        source -> Text,
        description -> Nullable<Binary>,
        document_id -> Nullable<Text>,
        discovered_at -> Timestamp,
        notify_by -> Timestamp,
        assessment -> Nullable<Binary>,
        notified_at -> Nullable<Timestamp>,
        reported_by -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        data_subjects_notified -> Nullable<Bool>,
        data_subjects_notified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    registry_notifications (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        recipient_id -> Text,
        kind -> Text,
        subject_id -> Text,
        details -> Text,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    will_service_outbox (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        kind -> Text,
        record_id -> Text,
        payload -> Binary,
        state -> Text,
        attempts -> BigInt,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

// VTJ change ingestion (migration 000013, VT-1..VT-13).
diesel::table! {
    vtj_state (registrar_id) {
        registrar_id -> Text,
        change_cursor -> Nullable<BigInt>,
        running_since -> Nullable<Timestamp>,
        run_id -> Nullable<Text>,
        last_run_started_at -> Nullable<Timestamp>,
        last_run_finished_at -> Nullable<Timestamp>,
        last_run_outcome -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    vtj_monitored (registrar_id, subject_index) {
        registrar_id -> Text,
        subject_index -> Binary,
        client_id -> Text,
        needs_load -> Bool,
        last_change_on -> Nullable<Date>,
    }
}

diesel::table! {
    vtj_staged (registrar_id, seq) {
        registrar_id -> Text,
        seq -> BigInt,
        source -> Text,
        change_cursor -> Nullable<BigInt>,
        subject_index -> Nullable<Binary>,
        message -> Binary,
        received_at -> Timestamp,
        outcome -> Nullable<Text>,
        reason -> Nullable<Text>,
        processed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Source 000: the municipalities whose residents a registrar's register serves (migration 000027).
    registrar_municipalities (municipality_code) {
        municipality_code -> Text,
        registrar_id -> Text,
    }
}

diesel::table! {
    /// VT-4: a client's move into another registrar's municipality, the receiving registrar's
    /// notice (migration 000027).
    client_moves (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        from_registrar_id -> Text,
        subject_index -> Binary,
        identity_code -> Binary,
        home_municipality -> Text,
        moved_on -> Nullable<Date>,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    client_death_closures (registrar_id, client_id) {
        registrar_id -> Text,
        client_id -> Text,
        died_on -> Date,
        services_closed -> Integer,
        proxies_ended -> Integer,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    client_previous_codes (registrar_id, subject_index) {
        registrar_id -> Text,
        subject_index -> Binary,
        client_id -> Text,
        identity_code -> Binary,
        corrected_at -> Timestamp,
    }
}

// The register of call and contact recordings (CA): migration 000019.

diesel::table! {
    call_queues (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        service_unit_id -> Text,
        name -> Text,
        recorded -> Bool,
        recording_announcement -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    call_queue_listeners (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        queue_id -> Text,
        account_id -> Text,
        granted_by -> Text,
        granted_at -> Timestamp,
        revoked_by -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    contacts (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        queue_id -> Text,
        kind -> Text,
        caller_number -> Nullable<Binary>,
        caller_number_index -> Nullable<Binary>,
        secret_number -> Bool,
        agent_id -> Nullable<Text>,
        answered -> Bool,
        home_municipality -> Nullable<Text>,
        started_at -> Timestamp,
        wait_seconds -> Nullable<Integer>,
        duration_seconds -> Nullable<Integer>,
        client_name -> Nullable<Binary>,
        subject_index -> Nullable<Binary>,
        identity_code -> Nullable<Binary>,
        recording_announcement -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    recordings (registrar_id, contact_id) {
        registrar_id -> Text,
        contact_id -> Text,
        id -> Text,
        content_type -> Text,
        bytes -> BigInt,
        sha256 -> Binary,
        data_key -> Binary,
        storage_key -> Text,
        stored_at -> Timestamp,
        destroyed_at -> Nullable<Timestamp>,
        destroyed_by_run -> Nullable<Text>,
    }
}

diesel::table! {
    legal_holds (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        contact_id -> Text,
        authority -> Text,
        case_reference -> Text,
        until_on -> Nullable<Date>,
        placed_by -> Text,
        placed_at -> Timestamp,
        released_by -> Nullable<Text>,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    processing_memos (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        contact_id -> Text,
        listener_id -> Text,
        reason_category -> Text,
        reason -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    processing_memo_entries (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        memo_id -> Text,
        kind -> Text,
        recipient_kind -> Text,
        recipient -> Binary,
        legal_basis -> Text,
        disclosed -> Binary,
        medium -> Nullable<Binary>,
        reason -> Nullable<Binary>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    listening_grants (registrar_id, id) {
        registrar_id -> Text,
        id -> Text,
        contact_id -> Text,
        account_id -> Text,
        memo_id -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    call_queues,
    call_queue_listeners,
    contacts,
    recordings,
    legal_holds,
    processing_memos,
    processing_memo_entries,
    listening_grants
);

diesel::table! {
    /// The scheduler's lease and run record of each periodic job (PL-8; see `lease`).
    job_leases (job) {
        job -> Text,
        holder -> Nullable<Text>,
        token -> BigInt,
        acquired_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        last_started_at -> Nullable<Timestamp>,
        last_finished_at -> Nullable<Timestamp>,
        last_outcome -> Nullable<Text>,
        last_counts -> Nullable<Text>,
        last_error -> Nullable<Text>,
        failures -> Integer,
        next_run_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// The running servers, each keeping its row alive: the owners of `Idempotency-Key` claims
    /// (PL-2, PL-17; see `rekisteri_idempotency`).
    server_instances (id) {
        id -> Text,
        started_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Key rotations (PL-6; see `key_rotation`): the newest decides the active keys.
    key_rotations (id) {
        id -> Text,
        from_data_key -> Text,
        to_data_key -> Text,
        from_blind_key -> Text,
        to_blind_key -> Text,
        state -> Text,
        started_at -> Timestamp,
        switched_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        values_resealed -> BigInt,
    }
}

diesel::table! {
    /// Each table's pass of a key rotation, committed with its batches.
    key_rotation_progress (rotation_id, target) {
        rotation_id -> Text,
        target -> Text,
        cursor -> Nullable<Text>,
        done -> Bool,
        rows_done -> BigInt,
    }
}

diesel::table! {
    /// The keys each running server holds and writes with (its heartbeat reports them).
    instance_keys (instance_id) {
        instance_id -> Text,
        held -> Text,
        data_key -> Text,
        blind_key -> Text,
        reported_at -> Timestamp,
    }
}

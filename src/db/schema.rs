// Written by hand to match migrations/{sqlite,postgres}; only column types that
// diesel's MultiConnection supports on both engines (Text, Integer, Timestamp).

diesel::table! {
    accounts (id) {
        id -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
        totp_secret -> Nullable<Text>,
        totp_last_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        account_id -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sign_in_policy (id) {
        id -> Integer,
        require_two_factor -> Integer,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
    }
}

diesel::table! {
    oidc_sign_ins (state_hash) {
        state_hash -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        account_id -> Text,
        state -> Text,
        created_at -> Timestamp,
        idle_expires_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    setup_codes (code_hash) {
        code_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    invitation_settings (id) {
        id -> Integer,
        organization_name -> Text,
        contact_email -> Text,
        sender_name -> Text,
        sender_address -> Text,
        public_url -> Text,
        validity_days -> Integer,
        custom_message -> Text,
        after_join_url -> Text,
        updated_at -> Timestamp,
        updated_by -> Nullable<Text>,
        reminder_days -> Nullable<Integer>,
    }
}

diesel::table! {
    form_submissions (submission_key) {
        submission_key -> Text,
        account_id -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        first_name -> Text,
        last_name -> Text,
        email -> Text,
        email_key -> Text,
        name_key -> Text,
        search_key -> Text,
        created_at -> Timestamp,
        invited_by -> Nullable<Text>,
        enrolled_at -> Nullable<Timestamp>,
        search_id -> Nullable<BigInt>,
        deactivated_at -> Nullable<Timestamp>,
        external_id -> Nullable<Text>,
        provisioned_by -> Nullable<Text>,
        updated_at -> Nullable<Timestamp>,
        api_user_id -> Nullable<Text>,
        client_request_token -> Nullable<Text>,
    }
}

diesel::table! {
    user_tags (user_id, tag_key) {
        user_id -> Text,
        tag_key -> Text,
        tag_value -> Text,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at -> Timestamp,
        created_by -> Nullable<Text>,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        superseded_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        delivery_failed_at -> Nullable<Timestamp>,
        delivery_error -> Nullable<Text>,
    }
}

diesel::table! {
    outbound_emails (id) {
        id -> Text,
        invitation_id -> Nullable<Text>,
        kind -> Text,
        sender_name -> Text,
        sender_address -> Text,
        reply_to -> Nullable<Text>,
        recipient -> Text,
        message_id -> Text,
        subject -> Text,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claim_token -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor_id -> Nullable<Text>,
        actor_email -> Nullable<Text>,
        action -> Text,
        subject_email -> Nullable<Text>,
        detail -> Text,
        client_ip -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
    }
}

diesel::table! {
    credentials (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        role -> Text,
        token_hash -> Nullable<Text>,
        key_id -> Nullable<Text>,
        sealed_secret -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(recovery_codes -> accounts (account_id));
diesel::joinable!(invitations -> users (user_id));
diesel::joinable!(user_tags -> users (user_id));
diesel::joinable!(outbound_emails -> invitations (invitation_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    sessions,
    setup_codes,
    invitation_settings,
    users,
    invitations,
    outbound_emails,
    audit_events,
    form_submissions,
    recovery_codes,
    sign_in_policy,
    oidc_sign_ins,
    credentials,
    user_tags,
);

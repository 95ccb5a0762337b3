-- Users, sessions / API tokens and login throttling (owned by yuncang.auth).
-- Roles: grower (grower_id: their orchards only), buyer (buyer_id: their orders and the public supply
-- offer), manager (cooperative_id: everything of their cooperative), admin (everything).
CREATE TABLE users (
    user_id        bigserial PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
    display_name   text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,                       -- Argon2id (argon2-cffi PHC string)
    role           text NOT NULL CHECK (role IN ('grower', 'buyer', 'manager', 'admin')),
    grower_id      text REFERENCES growers ON DELETE CASCADE,
    buyer_id       text,                                -- trading's buyer id (plain text: trading may be absent)
    cooperative_id text REFERENCES cooperatives ON DELETE CASCADE,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'grower'  OR grower_id IS NOT NULL),
    CHECK (role <> 'buyer'   OR buyer_id IS NOT NULL),
    CHECK (role <> 'manager' OR cooperative_id IS NOT NULL)
);
CREATE INDEX users_grower_idx ON users (grower_id);

-- A browser session (cookie) or an API bearer token. Only the SHA-256 of the token is stored, so a
-- leaked table does not let anyone sign in.
CREATE TABLE auth_tokens (
    token_sha256  bytea PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('session', 'bearer')),
    csrf_token    text NOT NULL,                        -- random, echoed in forms / X-CSRF-Token
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);
CREATE INDEX auth_tokens_expiry_idx ON auth_tokens (expires_at);

-- Failed sign-ins, per account and per client address, shared by every app process.
CREATE TABLE login_failures (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('user', 'ip')),
    subject     text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_idx ON login_failures (scope, subject, failed_at DESC);

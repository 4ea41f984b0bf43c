-- Principals (courts, agencies, admins), their public keys, and the replay guard for GW1 tokens.
CREATE TABLE principals (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  kind        text NOT NULL CHECK (kind IN ('court', 'agency', 'admin')),
  name        text NOT NULL,
  -- The court code in case numbers (e.g. 京0105); required for courts, null otherwise.
  court_code  text,
  scopes      text[] NOT NULL DEFAULT '{}',
  profile     jsonb NOT NULL DEFAULT '{}'::jsonb,
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'court') = (court_code IS NOT NULL))
);

CREATE TABLE principal_keys (
  kid           text PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
  principal_id  text NOT NULL REFERENCES principals (id),
  alg           text NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
  public_jwk    jsonb NOT NULL,
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  retired_at    timestamptz
);
CREATE INDEX principal_keys_principal ON principal_keys (principal_id);

-- A jti is remembered until its token could no longer be accepted (exp + clock skew).
CREATE TABLE used_jtis (
  iss         text NOT NULL,
  jti         text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (iss, jti)
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);

-- Every change to a principal or its keys, for the admin trail (who changed what, when).
CREATE TABLE principal_events (
  id            bigserial PRIMARY KEY,
  principal_id  text NOT NULL REFERENCES principals (id),
  actor         text NOT NULL,
  action        text NOT NULL,
  detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_id    text,
  at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX principal_events_principal ON principal_events (principal_id, id);

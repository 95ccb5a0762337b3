-- Reference data owned by the registry package.
CREATE TABLE townships (
    township_id  text PRIMARY KEY,          -- pinyin slug, e.g. 'shuanglong'
    name_zh      text NOT NULL UNIQUE,      -- 双龙镇
    name_en      text NOT NULL,
    lat          double precision NOT NULL, -- degrees north (WGS84)
    lon          double precision NOT NULL  -- degrees east
);

CREATE TABLE cooperatives (
    cooperative_id text PRIMARY KEY,
    name           text NOT NULL,
    township_id    text NOT NULL REFERENCES townships
);

CREATE TABLE households (
    household_id         text PRIMARY KEY,
    head_name            text NOT NULL,
    township_id          text NOT NULL REFERENCES townships,
    poverty_alleviated   boolean NOT NULL DEFAULT false,  -- 脱贫户
    members              integer NOT NULL DEFAULT 1 CHECK (members > 0)
);

CREATE TABLE growers (
    grower_id      text PRIMARY KEY,
    name           text NOT NULL,
    phone          text,
    household_id   text NOT NULL REFERENCES households,
    cooperative_id text REFERENCES cooperatives
);

CREATE TABLE orchards (
    orchard_id      text PRIMARY KEY,                  -- 'WS-0001'
    name            text NOT NULL,
    grower_id       text NOT NULL REFERENCES growers,
    cooperative_id  text REFERENCES cooperatives,
    township_id     text NOT NULL REFERENCES townships,
    area_mu         numeric(10, 2) NOT NULL CHECK (area_mu > 0),      -- mu (1 mu = 666.7 m²)
    elevation_m     integer NOT NULL CHECK (elevation_m BETWEEN 0 AND 3000),
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    planting_year   integer NOT NULL CHECK (planting_year BETWEEN 1950 AND 2100),
    tree_count      integer NOT NULL CHECK (tree_count >= 0),
    variety         text NOT NULL DEFAULT '巫山脆李',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orchards_grower_idx ON orchards (grower_id);
CREATE INDEX orchards_coop_idx ON orchards (cooperative_id);

-- A device is one field gateway (one per orchard in the seeded deployment). Its sensors are the
-- metrics of registry.metrics.METRICS; dev_eui is its LoRaWAN identity for ChirpStack uplinks.
CREATE TABLE devices (
    device_id     text PRIMARY KEY,          -- 'gw-0001'
    orchard_id    text NOT NULL REFERENCES orchards ON DELETE CASCADE,
    dev_eui       text UNIQUE,               -- 16 lowercase hex digits
    model         text NOT NULL DEFAULT 'YC-GW1',
    installed_at  timestamptz NOT NULL DEFAULT now(),
    active        boolean NOT NULL DEFAULT true
);
CREATE INDEX devices_orchard_idx ON devices (orchard_id);

"""The set-based SQL that builds the scaled bank (bench/bank.py runs it, in this order).

Every random choice is a hash of a stable key (`pg_temp.u(key, salt)`), so a build is
the same on every run and a value can be computed again where it is needed (a
thread's preview is its last message's body, computed by the same function).

Plans are staged in temporary tables: `bench_party` (one row per customer or
prospect), `bench_thread`, `bench_mplan` (one row per message, physically in time
order: ids follow time, as in a live database) and `bench_eplan` (the same for the
event log). Table names come from the models (`{message}` etc.); columns are the
models' own.
"""

from bench import bank_text as text

# Valid French mobile blocks (+33 6xx / 7xx); 699 is kept for the rare number that
# collides with one of the demo's.
PHONE_BLOCKS = [f"{b}" for b in [*range(600, 639), *range(640, 690), 695, 698, *range(730, 800)]]
SPARE_BLOCK = "699"
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]  # reserved: never a real person's inbox
ACCOUNT_SID = "AC" + "5c" * 16
STATUSES = ["received", "read", "delivered", "sent", "failed", "undelivered"]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _array(values: list[str]) -> str:
    return "ARRAY[" + ",".join(_literal(value) for value in values) + "]"


def _pick(values: list[str], key: str, salt: int) -> str:
    """SQL for one of `values`, chosen by the hash of `key`."""
    return f"({_array(values)})[1 + floor(pg_temp.u({key}, {salt}) * {len(values)})::int]"


def functions_sql(*, seed: int, templates: list[str]) -> list[str]:
    """The session's helper functions, in pg_temp: nothing is left in the database."""
    customer_lines = [line for customer, _advisor in text.TOPICS for line in customer]
    advisor_lines = [line for _customer, advisor in text.TOPICS for line in advisor]
    template_bodies = _array(templates) if templates else "ARRAY['']"
    return [
        f"""CREATE FUNCTION pg_temp.u(k bigint, salt integer) RETURNS float8 LANGUAGE sql IMMUTABLE AS
        $f$ SELECT (hashint8extended(k, salt + {seed} * 1000) & 4503599627370495)::float8 / 4503599627370496.0 $f$""",
        """CREATE FUNCTION pg_temp.cap(s text) RETURNS text LANGUAGE sql IMMUTABLE AS
        $f$ SELECT upper(left(s, 1)) || substr(s, 2) $f$""",
        # DjangoJSONEncoder's form of an aware UTC datetime.
        """CREATE FUNCTION pg_temp.iso(ts timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS
        $f$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $f$""",
        f"""CREATE FUNCTION pg_temp.phone(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS
        $f$ SELECT '+33' || ({_array(PHONE_BLOCKS)})[1 + mod(i, {len(PHONE_BLOCKS)})::int]
                || lpad(mod((i / {len(PHONE_BLOCKS)}) * 7919 + 4242, 1000000)::text, 6, '0') $f$""",
        f"""CREATE FUNCTION pg_temp.body(k bigint, inbound boolean, j integer, topic integer, closing boolean,
                                         first_name text) RETURNS text LANGUAGE sql IMMUTABLE AS
        $f$ SELECT CASE
          WHEN inbound AND j = 0 THEN
            pg_temp.cap({_pick(text.CUSTOMER_OPENERS, "k", 101)}
              || ({_array(customer_lines)})[topic * 3 + 1 + floor(pg_temp.u(k, 102) * 3)::int])
            || CASE WHEN pg_temp.u(k, 103) < 0.35 THEN ' ' || {_pick(text.CUSTOMER_CONTEXT, "k", 104)} ELSE '' END
          WHEN inbound THEN
            CASE WHEN pg_temp.u(k, 105) < 0.4 THEN {_pick(text.CUSTOMER_THANKS, "k", 106)}
                 ELSE {_pick(text.CUSTOMER_FOLLOW_UPS, "k", 107)}
                      || CASE WHEN pg_temp.u(k, 108) < 0.2 THEN ' ' || {_pick(text.CUSTOMER_CONTEXT, "k", 109)}
                              ELSE '' END
            END
          WHEN closing THEN {_pick(text.ADVISOR_CLOSINGS, "k", 110)}
          WHEN j <= 1 THEN
            'Bonjour' || CASE WHEN first_name = '' THEN ', ' ELSE ' ' || first_name || ', ' END
            || ({_array(advisor_lines)})[topic * 3 + 1 + floor(pg_temp.u(k, 111) * 3)::int]
            || CASE WHEN pg_temp.u(k, 112) < 0.4 THEN ' ' || {_pick(text.ADVISOR_FOLLOW_UPS, "k", 113)} ELSE '' END
          ELSE {_pick(text.ADVISOR_FOLLOW_UPS, "k", 114)}
        END $f$""",
        # What a message says: a template rendered with its variables, nothing for a
        # shared location, free text otherwise.
        f"""CREATE FUNCTION pg_temp.message_body(k bigint, inbound boolean, j integer, topic integer,
              closing boolean, first_name text, tmpl integer, author_name text, agency_name text, loc boolean)
            RETURNS text LANGUAGE sql IMMUTABLE AS
        $f$ SELECT CASE
          WHEN loc THEN ''
          WHEN tmpl > 0 THEN replace(replace(replace(({template_bodies})[tmpl],
                              '{{{{1}}}}', first_name), '{{{{2}}}}', author_name), '{{{{3}}}}', agency_name)
          ELSE pg_temp.body(k, inbound, j, topic, closing, first_name)
        END $f$""",
        """CREATE FUNCTION pg_temp.reason(code text, params jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
        $f$ SELECT jsonb_build_object('code', code, 'params', params) $f$""",
        """CREATE FUNCTION pg_temp.summary(id bigint, customer bigint, name text, status text, handler bigint,
              agency bigint, reason jsonb, unread bigint, at timestamptz, preview text, channel text,
              waiting timestamptz) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
        $f$ SELECT jsonb_build_object('id', id, 'customer', customer, 'name', name, 'status', status,
              'handler', handler, 'agency', agency, 'routing_reason_code', reason->>'code',
              'routing_reason_params', reason->'params', 'unread_count', unread,
              'last_activity_at', pg_temp.iso(at), 'last_message_preview', left(preview, 200),
              'last_inbound_channel', channel, 'waiting_since', pg_temp.iso(waiting)) $f$""",
    ]


# --- Who is in the bank ------------------------------------------------------------------------

SLOTS = """
CREATE TEMP TABLE bench_slot AS
SELECT row_number() OVER (ORDER BY pg_temp.u(b.k::bigint * 10000000 + g, 1), b.k, g) AS i,
       b.advisor_id, b.agency_id, b.online
FROM bench_book b, generate_series(1, b.size) AS g
"""

# Customers (i = 1..N) and prospects (i = N+1..N+P): names, channels, whether they
# wrote, and their thread's shape.
PARTY0 = """
CREATE TEMP TABLE bench_party0 AS
SELECT c.*,
       CASE WHEN pg_temp.u(c.i, 31) < 0.55 THEN 'closed' WHEN pg_temp.u(c.i, 31) < 0.80 THEN 'waiting'
            ELSE 'open' END AS status0,
       exp(1.1 * sqrt(-2 * ln(greatest(pg_temp.u(c.i, 21), 1e-12))) * cos(2 * pi() * pg_temp.u(c.i, 22))) AS w,
       4 + floor(pg_temp.u(c.i, 23) * 5)::int AS g,
       1 + pg_temp.u(c.i, 24) ^ 2 * 90 AS gap_days,
       c.has_wa AND (NOT c.has_sms OR pg_temp.u(c.i, 25) < 0.8) AS primary_wa,
       pg_temp.u(c.i, 30) < %(heavy_share)s AS heavy0
FROM (
  SELECT s.i, false AS prospect, s.agency_id, s.advisor_id, s.online,
         width_bucket(pg_temp.u(s.i, 2), %(fn_cum)s::float8[]) AS fn,
         width_bucket(pg_temp.u(s.i, 3), %(ln_cum)s::float8[]) AS ln,
         pg_temp.u(s.i, 4) < 0.6 AS has_wa,
         pg_temp.u(s.i, 4) >= 0.6 OR pg_temp.u(s.i, 5) < 0.75 AS has_sms,
         pg_temp.u(s.i, 6) < 0.3 AS has_email,
         pg_temp.u(s.i, 7) < CASE WHEN s.advisor_id IS NULL THEN 0.75 ELSE 0.7 END AS has_thread,
         %(now)s::timestamptz - (30 + pg_temp.u(s.i, 8) * 4350) * interval '1 day' AS born_draw
  FROM bench_slot s
  UNION ALL
  SELECT %(n)s + p, true,
         CASE WHEN pg_temp.u(%(n)s + p, 9) < 0.8 THEN %(online_id)s::bigint
              ELSE (%(branch_ids)s::bigint[])[1 + floor(pg_temp.u(%(n)s + p, 10) * %(branch_count)s)::int] END,
         NULL, false,
         width_bucket(pg_temp.u(%(n)s + p, 2), %(fn_cum)s::float8[]), NULL,
         pg_temp.u(%(n)s + p, 4) < 0.7, pg_temp.u(%(n)s + p, 4) >= 0.7, false, true, NULL
  FROM generate_series(1, %(prospects)s) AS p
) c
"""

PARTY1 = """
CREATE TEMP TABLE bench_party1 AS
SELECT p.*,
       p.heavy0 OR (p.advisor_id = ANY(%(showcase_ids)s::bigint[]) AND p.has_thread
                    AND row_number() OVER (PARTITION BY p.advisor_id, p.has_thread ORDER BY p.i) <= 3) AS heavy
FROM bench_party0 p
"""

# Message counts: log-normal, scaled to the total asked for, plus a few heavy threads
# (hundreds to thousands of messages). Times: the last message at `t_end`, episodes
# of g messages a few minutes apart, `gap` seconds between episodes.
PARTY2 = """
CREATE TEMP TABLE bench_party2 AS
SELECT q.*, least(q.g, q.n) - 1 AS jlast0,
       greatest(7200, least(q.gap_days * 86400,
                extract(epoch FROM q.t_end - (%(now)s::timestamptz - interval '1095 days'))
                / greatest(q.e - 1, 1))) AS gap
FROM (
  SELECT r.*, least(r.k0, r.n) AS k, (r.n + r.g - 1) / r.g AS e
  FROM (
    SELECT p.*,
           CASE WHEN p.heavy THEN 'open' ELSE p.status0 END AS status,
           CASE WHEN p.heavy THEN 500 + floor(pg_temp.u(p.i, 32) * 2500)::int
                ELSE greatest(1, round(p.w * (SELECT %(scaled_messages)s / sum(w) FROM bench_party1
                                               WHERE has_thread AND NOT heavy)))::int END AS n,
           CASE WHEN p.heavy OR p.status0 = 'open'
                THEN 1 + (pg_temp.u(p.i, 33) > 0.6)::int + (pg_temp.u(p.i, 33) > 0.9)::int
                WHEN p.status0 = 'closed' THEN (pg_temp.u(p.i, 33) < 0.2)::int ELSE 0 END AS k0,
           %(now)s::timestamptz - CASE
             WHEN p.heavy OR p.status0 = 'open' THEN 600 - ln(1 - pg_temp.u(p.i, 34)) * 2 * 86400
             WHEN p.status0 = 'waiting' THEN 600 - ln(1 - pg_temp.u(p.i, 34)) * 8 * 86400
             ELSE 3600 + pg_temp.u(p.i, 34) * 1090 * 86400 END * interval '1 second' AS t_end
    FROM bench_party1 p WHERE p.has_thread
  ) r
) q
UNION ALL
SELECT p.*, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM bench_party1 p WHERE NOT p.has_thread
"""

# Ids: customers in the order they joined, threads in the order they started, contact
# points by customer (three slots each: WhatsApp, SMS, email), prospects' after them.
PARTY = """
CREATE TEMP TABLE bench_party AS
SELECT x.*,
       CASE WHEN x.prospect THEN CASE WHEN x.has_wa THEN %(cpbase)s + 3 * %(n)s + x.pidx END
            WHEN x.has_wa THEN %(cpbase)s + 3 * (x.customer_id - %(cbase)s) - 2 END AS wa_cp,
       CASE WHEN x.prospect THEN CASE WHEN x.has_sms THEN %(cpbase)s + 3 * %(n)s + x.pidx END
            WHEN x.has_sms THEN %(cpbase)s + 3 * (x.customer_id - %(cbase)s) - 1 END AS sms_cp,
       CASE WHEN x.has_email THEN %(cpbase)s + 3 * (x.customer_id - %(cbase)s) END AS email_cp,
       CASE WHEN x.history THEN x.born + pg_temp.u(x.i, 71) * (%(now)s::timestamptz - x.born) END AS switch_at,
       CASE WHEN NOT x.has_wa THEN NULL
            WHEN x.prospect THEN CASE WHEN pg_temp.u(x.i, 17) < 0.5 THEN x.first_name ELSE {nickname} END
            WHEN pg_temp.u(x.i, 17) < 0.7 THEN x.first_name || ' ' || x.last_name
            WHEN pg_temp.u(x.i, 17) < 0.9 THEN x.first_name ELSE {nickname} END AS wa_display
FROM (
  SELECT y.*,
         CASE WHEN NOT y.prospect
              THEN %(cbase)s + row_number() OVER (PARTITION BY y.prospect ORDER BY y.born, y.i) END AS customer_id,
         CASE WHEN y.prospect THEN row_number() OVER (PARTITION BY y.prospect ORDER BY pg_temp.u(y.i, 90), y.i) END
           AS pidx,
         CASE WHEN y.has_thread
              THEN %(tbase)s + row_number() OVER (PARTITION BY y.has_thread ORDER BY y.t_first, y.i) END AS thread_id,
         NOT y.prospect AND y.advisor_id IS NOT NULL AND pg_temp.u(y.i, 70) < 0.2 AS history
  FROM (
    SELECT z.*,
           CASE WHEN z.prospect THEN z.t_first ELSE least(z.born_draw, z.t_first - interval '1 day') END AS born,
           (%(first_names)s::text[])[z.fn] AS first_name,
           coalesce((%(last_names)s::text[])[z.ln], '') AS last_name,
           'FR' || (10000000 + mod(z.i * 48271 + 7777, 90000000)) AS number,
           pg_temp.phone(z.i) AS phone,
           CASE WHEN pg_temp.u(z.i, 14) < 0.5
                THEN (%(first_ascii)s::text[])[z.fn] || '.' || (%(last_ascii)s::text[])[z.ln] || z.i
                ELSE left((%(first_ascii)s::text[])[z.fn], 1) || (%(last_ascii)s::text[])[z.ln] || '.' || z.i END
           || '@' || (%(domains)s::text[])[1 + mod(z.i, 3)::int] AS email
    FROM (
      SELECT p.*,
             CASE WHEN p.has_thread THEN p.t_end + (
               - (p.e - 1) * p.gap
               + CASE WHEN p.e > 1 THEN (2 * pg_temp.u(p.i * 65536 + 40000, 41) - 1) * least(10800, p.gap / 4)
                      ELSE 0 END
               - p.jlast0 * 420 + pg_temp.u(p.i * 65536, 42) * 300) * interval '1 second' END AS t_first
      FROM bench_party2 p
    ) z
  ) y
) x
"""

PARTY = PARTY.replace("{nickname}", _pick(text.PROSPECT_NICKNAMES, "x.i", 20))

# Whose book a customer was in before their current advisor (someone else of the agency).
PREVIOUS_ADVISORS = """
CREATE TEMP TABLE bench_prev AS
SELECT p.i, CASE WHEN a.advisor_id IS DISTINCT FROM p.advisor_id THEN a.advisor_id ELSE b.advisor_id END AS advisor_id,
       CASE WHEN a.advisor_id IS DISTINCT FROM p.advisor_id THEN a.name ELSE b.name END AS name
FROM bench_party p
JOIN bench_agency ag ON ag.agency_id = p.agency_id
CROSS JOIN LATERAL (SELECT floor(pg_temp.u(p.i, 72) * ag.colleague_count)::int AS pick) r
LEFT JOIN bench_colleague a ON a.agency_id = p.agency_id AND a.idx = 1 + r.pick
LEFT JOIN bench_colleague b ON b.agency_id = p.agency_id
                           AND b.idx = 1 + mod(r.pick + 1, greatest(ag.colleague_count, 1))
WHERE p.history
"""

FIX_NUMBERS = """
UPDATE bench_party SET number = 'FR9' || lpad(i::text, 9, '0')
WHERE number IN (SELECT customer_number FROM {customer})
"""
FIX_PHONES = f"""
UPDATE bench_party SET phone = '+33{SPARE_BLOCK}' || lpad(mod(i, 1000000)::text, 6, '0')
WHERE phone IN (SELECT address FROM {{contactpoint}} WHERE kind IN ('whatsapp', 'sms'))
"""
COLLISIONS = """
SELECT (SELECT count(*) FROM bench_party WHERE NOT prospect
          AND number IN (SELECT customer_number FROM {customer}))
     + (SELECT count(*) FROM bench_party WHERE phone IN (SELECT address FROM {contactpoint}))
     + (SELECT count(*) FROM (SELECT phone FROM bench_party GROUP BY phone HAVING count(*) > 1) d)
"""

CUSTOMERS = """
INSERT INTO {customer} (id, customer_number, first_name, last_name, preferred_language, typology, segment,
                        created_at, agency_id, dedicated_advisor_id)
SELECT customer_id, number, first_name, last_name,
       CASE WHEN pg_temp.u(i, 11) < 0.86 THEN 'fr' WHEN pg_temp.u(i, 11) < 0.96 THEN 'en' ELSE 'nl' END,
       CASE WHEN online OR pg_temp.u(i, 12) < 0.08 THEN 'online' ELSE 'traditional' END,
       CASE WHEN online THEN CASE WHEN pg_temp.u(i, 13) < 0.75 THEN 'mass' WHEN pg_temp.u(i, 13) < 0.95
                                  THEN 'affluent' ELSE 'professional' END
            WHEN pg_temp.u(i, 13) < 0.52 THEN 'mass' WHEN pg_temp.u(i, 13) < 0.76 THEN 'affluent'
            WHEN pg_temp.u(i, 13) < 0.90 THEN 'professional' ELSE 'private' END,
       born, agency_id, advisor_id
FROM bench_party WHERE NOT prospect ORDER BY customer_id
"""

CONTACT_POINTS = """
INSERT INTO {contactpoint} (id, kind, address, display_name, consent, consent_changed_at, consent_source,
                            created_at, customer_id, confirmed)
SELECT c.id, c.kind, c.address, c.display_name,
       CASE WHEN c.opted_out THEN 'opted_out' ELSE 'opted_in' END,
       CASE WHEN c.opted_out THEN c.born + pg_temp.u(c.id, 16) * (%(now)s::timestamptz - c.born) ELSE c.born END,
       CASE WHEN c.opted_out
            THEN 'keyword “STOP” in ' || CASE WHEN c.kind = 'whatsapp' THEN 'WhatsApp' ELSE 'SMS' END
                 || ' message SM' || md5('stop' || c.id)
            ELSE 'CRM import' END,
       c.born, c.customer_id, c.confirmed
FROM (
  SELECT wa_cp AS id, 'whatsapp' AS kind, phone AS address, wa_display AS display_name,
         pg_temp.u(i, 15) < 0.03 AS opted_out, born, customer_id,
         prospect OR pg_temp.u(i, 18) >= 0.005 AS confirmed
  FROM bench_party WHERE has_wa
  UNION ALL
  SELECT sms_cp, 'sms', phone, '', pg_temp.u(i, 19) < 0.03, born, customer_id, true
  FROM bench_party WHERE has_sms
  UNION ALL
  SELECT email_cp, 'email', email, '', false, born, customer_id, true
  FROM bench_party WHERE has_email
) c
ORDER BY c.id
"""

ASSIGNMENTS = """
INSERT INTO {advisorassignment} (started_at, ended_at, reason, advisor_id, changed_by_id, customer_id)
SELECT a.started_at, a.ended_at, a.reason, a.advisor_id, a.changed_by_id, a.customer_id
FROM (
  SELECT p.customer_id, p.born AS started_at, p.switch_at AS ended_at, 'Customer created' AS reason,
         CASE WHEN p.history THEN prev.advisor_id ELSE p.advisor_id END AS advisor_id,
         NULL::integer AS changed_by_id
  FROM bench_party p LEFT JOIN bench_prev prev ON prev.i = p.i
  WHERE NOT p.prospect
  UNION ALL
  SELECT p.customer_id, p.switch_at, NULL,
         'Reprise du portefeuille de ' || coalesce(prev.name, 'un conseiller parti'),
         p.advisor_id, ag.supervisor_user_id
  FROM bench_party p
  JOIN bench_agency ag ON ag.agency_id = p.agency_id
  LEFT JOIN bench_prev prev ON prev.i = p.i
  WHERE p.history
) a
ORDER BY a.customer_id, a.started_at
"""

# --- Conversations ------------------------------------------------------------------------------

# Who handles each thread and why, in the words routing uses (conversations/routing.py).
THREADS0 = """
CREATE TEMP TABLE bench_thread0 AS
SELECT p.thread_id AS id, p.i AS tkey, p.customer_id,
       CASE WHEN p.prospect THEN coalesce(p.wa_cp, p.sms_cp) END AS prospect_id,
       p.agency_id, p.advisor_id AS dedicated_id, p.status, p.n, p.k, p.g, p.e, p.t_end, p.gap, p.heavy,
       p.has_wa, p.has_sms, p.primary_wa, p.wa_cp, p.sms_cp, p.phone, p.switch_at,
       CASE WHEN p.prospect THEN '' ELSE p.first_name END AS first_name,
       CASE WHEN p.prospect THEN coalesce(p.wa_display, p.phone)
            ELSE p.first_name || ' ' || p.last_name END AS name,
       coalesce(p.wa_display, '') AS display_name,
       CASE WHEN p.history THEN prev.advisor_id END AS previous_advisor_id,
       CASE WHEN p.history THEN prev.name END AS previous_advisor_name,
       ag.name AS agency_name, ag.supervisor_advisor_id,
       CASE
         WHEN p.prospect THEN CASE WHEN pg_temp.u(p.i, 81) < 0.2 THEN c.advisor_id END
         WHEN p.advisor_id IS NULL THEN CASE WHEN pg_temp.u(p.i, 81) < 0.15 THEN c.advisor_id END
         WHEN p.heavy THEN p.advisor_id
         WHEN NOT d.present AND p.status <> 'closed' THEN d.stand_in
         WHEN pg_temp.u(p.i, 81) < 0.04 THEN c.advisor_id
         WHEN pg_temp.u(p.i, 81) < 0.06 THEN NULL
         ELSE p.advisor_id
       END AS handler_id,
       -- The routing reason as conversations/routing_reasons.py stores it: a code and its parameters.
       CASE
         WHEN p.prospect THEN CASE WHEN pg_temp.u(p.i, 81) < 0.2 AND c.advisor_id IS NOT NULL
                                   THEN pg_temp.reason('claimed', jsonb_build_object('advisor', c.username))
                                   ELSE pg_temp.reason('unknown_number', '{{}}') END
         WHEN p.advisor_id IS NULL THEN CASE WHEN pg_temp.u(p.i, 81) < 0.15 AND c.advisor_id IS NOT NULL
                                             THEN pg_temp.reason('claimed', jsonb_build_object('advisor', c.username))
                                             ELSE pg_temp.reason('pool_no_dedicated', '{{}}') END
         WHEN p.heavy THEN pg_temp.reason('dedicated', '{{}}')
         WHEN NOT d.present AND p.status <> 'closed' THEN
           pg_temp.reason(CASE WHEN d.stand_in IS NOT NULL THEN 'deputy' ELSE 'pool_no_deputy' END,
                          jsonb_build_object('advisor', d.username) || d.absence)
         WHEN pg_temp.u(p.i, 81) < 0.04 AND c.advisor_id IS NOT NULL
           THEN pg_temp.reason('claimed', jsonb_build_object('advisor', c.username))
         WHEN pg_temp.u(p.i, 81) < 0.06
           THEN pg_temp.reason('pool_no_deputy', jsonb_build_object('advisor', d.username, 'absence', 'away'))
         ELSE pg_temp.reason('dedicated', '{{}}')
       END AS reason,
       c.advisor_id AS colleague_id,
       CASE WHEN pg_temp.u(p.i, 82) < 0.7 THEN p.k ELSE 0 END AS unread_if_read_by_handler
FROM bench_party p
JOIN bench_agency ag ON ag.agency_id = p.agency_id
LEFT JOIN bench_advisor d ON d.advisor_id = p.advisor_id
LEFT JOIN bench_staff c ON c.agency_id = p.agency_id AND c.idx = 1 + floor(pg_temp.u(p.i, 80) * ag.staff_count)::int
LEFT JOIN bench_prev prev ON prev.i = p.i
WHERE p.has_thread
"""

THREADS = """
CREATE TEMP TABLE bench_thread AS
SELECT t.*, a.advisor_id AS author_id, a.name AS author_name,
       CASE WHEN t.handler_id IS NULL THEN t.k ELSE t.unread_if_read_by_handler END AS unread
FROM (SELECT t0.*, coalesce(t0.handler_id, t0.dedicated_id, t0.colleague_id, t0.supervisor_advisor_id) AS author
      FROM bench_thread0 t0) t
LEFT JOIN bench_advisor a ON a.advisor_id = t.author
"""

# One row per message, in time order; its id is its rank in time.
MESSAGE_PLAN = """
CREATE TEMP TABLE bench_mplan AS
SELECT %(mbase)s + row_number() OVER (ORDER BY x.at, x.thread_id, x.s) AS id, x.*
FROM (
  SELECT t.id AS thread_id, t.tkey, g.s, a.j, d.topic, d.inbound, d.wa,
         t.t_end + (- (t.e - 1 - a.ep) * t.gap
                    + CASE WHEN a.ep < t.e - 1 THEN (2 * pg_temp.u(b.ekey, 41) - 1) * least(10800, t.gap / 4)
                           ELSE 0 END
                    + (a.j - b.jlast) * 420 + pg_temp.u(a.key, 42) * 300) * interval '1 second' AS at,
         CASE WHEN NOT d.inbound AND d.wa AND a.j = 0 AND %(templates)s > 0
              THEN 1 + floor(pg_temp.u(a.key, 56) * %(templates)s)::int ELSE 0 END AS tmpl,
         CASE WHEN d.inbound THEN 0
              WHEN d.wa THEN CASE WHEN pg_temp.u(a.key, 53) < 0.62 THEN 1 WHEN pg_temp.u(a.key, 53) < 0.93 THEN 2
                                  WHEN pg_temp.u(a.key, 53) < 0.96 THEN 3 WHEN pg_temp.u(a.key, 53) < 0.98 THEN 4
                                  ELSE 5 END
              ELSE CASE WHEN pg_temp.u(a.key, 53) < 0.93 THEN 2 WHEN pg_temp.u(a.key, 53) < 0.97 THEN 3
                        WHEN pg_temp.u(a.key, 53) < 0.985 THEN 4 ELSE 5 END
         END AS st,
         CASE WHEN d.wa THEN t.wa_cp ELSE t.sms_cp END AS cp_id,
         CASE WHEN NOT d.inbound THEN t.author_id END AS author_id,
         NOT d.inbound AND g.s = t.n - 1 AND t.status = 'closed' AS closing,
         g.s = t.n - 1 AS last, b.tail, a.ep = t.e - 1 AS last_ep,
         d.attach, d.inbound AND d.wa AND g.s < t.n - 1 AND NOT d.attach AND pg_temp.u(a.key, 55) < 0.003 AS loc,
         d.inbound AND d.wa AND a.j = 1 AND d.prev_inbound IS FALSE AND pg_temp.u(a.key, 59) < 0.5 AS button,
         d.prev_inbound, t.handler_id IS NOT NULL AS handled, t.status = 'closed' AS thread_closed
  FROM bench_thread t
  CROSS JOIN LATERAL generate_series(0, t.n - 1) AS g(s)
  CROSS JOIN LATERAL (SELECT g.s / t.g AS ep, mod(g.s, t.g) AS j, t.tkey * 65536 + g.s AS key) a
  CROSS JOIN LATERAL (SELECT least(t.g, t.n - a.ep * t.g) - 1 AS jlast, t.tkey * 65536 + 40000 + a.ep AS ekey,
                             g.s >= t.n - t.k AS tail) b
  CROSS JOIN LATERAL (
    SELECT CASE WHEN b.tail THEN true WHEN g.s = t.n - t.k - 1 THEN false
                ELSE (mod(a.j, 2) = 0) <> (pg_temp.u(a.key, 50) < 0.15) END AS inbound,
           CASE WHEN g.s = 0 THEN NULL WHEN g.s - 1 >= t.n - t.k THEN true WHEN g.s - 1 = t.n - t.k - 1 THEN false
                ELSE (mod(mod(g.s - 1, t.g), 2) = 0) <> (pg_temp.u(a.key - 1, 50) < 0.15) END AS prev_inbound,
           CASE WHEN t.has_wa AND t.has_sms THEN t.primary_wa <> (pg_temp.u(b.ekey, 51) < 0.1) ELSE t.has_wa END AS wa,
           floor(pg_temp.u(b.ekey, 52) * 16)::int AS topic
  ) c0
  CROSS JOIN LATERAL (
    SELECT c0.inbound, c0.prev_inbound, c0.wa, c0.topic,
           c0.inbound AND c0.wa AND g.s < t.n - 1 AND pg_temp.u(a.key, 54) < 0.02 AS attach
  ) d
) x
ORDER BY x.at, x.thread_id, x.s
"""

_SID = "'SM' || md5('m' || (m.tkey * 65536 + m.s))"
_MEDIA_SID = "'ME' || md5('a' || (m.tkey * 65536 + m.s))"
_BODY = """pg_temp.message_body(m.tkey * 65536 + m.s, m.inbound, m.j, m.topic, m.closing, t.first_name, m.tmpl,
                               t.author_name, t.agency_name, m.loc)"""
_READ_AT = "least(m.at + (60 + pg_temp.u(m.tkey * 65536 + m.s, 57) * 7200) * interval '1 second', %(now)s)"

MESSAGES = f"""
INSERT INTO {{message}} (id, direction, channel, body, provider, provider_message_id, status, error_code,
  error_message, created_at, queued_at, sending_at, sent_at, delivered_at, read_at, failed_at, profile_name,
  wa_id, latitude, longitude, location_address, location_label, button_text, button_payload,
  replied_to_provider_id, consent_change, template_variables, raw, author_id, contact_point_id, replied_to_id,
  template_id, thread_id, delivery_attempts)
SELECT x.id, CASE WHEN x.inbound THEN 'inbound' ELSE 'outbound' END, x.channel, x.body, 'twilio', x.sid,
       (%(statuses)s::text[])[x.st + 1],
       CASE x.st WHEN 4 THEN CASE WHEN x.wa THEN '63016' ELSE '30008' END WHEN 5 THEN '30003' ELSE '' END,
       CASE x.st WHEN 4 THEN CASE WHEN x.wa THEN 'Failed to send freeform message because you are outside the '
                                                 'allowed window. Please use a Template.'
                                  ELSE 'Unknown error' END
                 WHEN 5 THEN 'Unreachable destination handset' ELSE '' END,
       x.at,
       CASE WHEN NOT x.inbound THEN x.at END,
       CASE WHEN NOT x.inbound THEN x.at + interval '0.4 second' END,
       CASE WHEN x.st IN (1, 2, 3, 5) THEN x.at + interval '1.1 second' END,
       CASE WHEN x.st IN (1, 2) THEN x.at + interval '3 second' END,
       CASE WHEN x.st = 1 THEN x.read_at END,
       CASE x.st WHEN 4 THEN x.at + interval '2 second' WHEN 5 THEN x.at + interval '6 second' END,
       CASE WHEN x.inbound AND x.wa THEN x.display_name ELSE '' END,
       CASE WHEN x.inbound AND x.wa THEN substr(x.phone, 2) ELSE '' END,
       x.latitude, x.longitude,
       CASE WHEN x.loc THEN '12 rue de la République, 69002 Lyon' ELSE '' END, '',
       CASE WHEN x.button THEN 'Oui, volontiers' ELSE '' END, CASE WHEN x.button THEN 'reprise_oui' ELSE '' END,
       '', '',
       CASE WHEN x.tmpl > 0 THEN jsonb_build_object('1', x.first_name, '2', x.author_name, '3', x.agency_name)
            ELSE jsonb_build_object() END,
       CASE WHEN NOT x.inbound THEN jsonb_build_object()
            WHEN x.wa THEN jsonb_build_object(
              'MessageSid', x.sid, 'SmsMessageSid', x.sid, 'SmsSid', x.sid, 'AccountSid', '{ACCOUNT_SID}',
              'From', 'whatsapp:' || x.phone, 'To', 'whatsapp:+33180000000', 'Body', x.body,
              'NumMedia', CASE WHEN x.attach THEN '1' ELSE '0' END, 'NumSegments', '1',
              'ProfileName', x.display_name, 'WaId', substr(x.phone, 2), 'SmsStatus', 'received',
              'ApiVersion', '2010-04-01', 'ReferralNumMedia', '0',
              'MessageType', CASE WHEN x.attach THEN 'image' WHEN x.loc THEN 'location'
                                  WHEN x.button THEN 'button' ELSE 'text' END)
              || CASE WHEN x.attach THEN jsonb_build_object('MediaUrl0', x.media_url,
                                                            'MediaContentType0', x.content_type)
                      WHEN x.loc THEN jsonb_build_object('Latitude', x.latitude::text, 'Longitude', x.longitude::text,
                                                         'Address', '12 rue de la République, 69002 Lyon')
                      WHEN x.button THEN jsonb_build_object('ButtonText', 'Oui, volontiers',
                                                            'ButtonPayload', 'reprise_oui')
                      ELSE jsonb_build_object() END
            ELSE jsonb_build_object(
              'MessageSid', x.sid, 'SmsMessageSid', x.sid, 'SmsSid', x.sid, 'AccountSid', '{ACCOUNT_SID}',
              'From', x.phone, 'To', '+33644630000', 'Body', x.body, 'NumMedia', '0', 'NumSegments',
              (1 + length(x.body) / 153)::text, 'SmsStatus', 'received', 'ApiVersion', '2010-04-01',
              'FromCountry', 'FR', 'ToCountry', 'FR', 'FromCity', '', 'FromState', '', 'FromZip', '',
              'ToCity', '', 'ToState', '', 'ToZip', '')
       END,
       x.author_id, x.cp_id, NULL,
       CASE WHEN x.tmpl > 0 THEN (%(template_ids)s::bigint[])[x.tmpl] END,
       x.thread_id, CASE WHEN x.inbound THEN 0 ELSE 1 END
FROM (
  SELECT m.*, t.first_name, t.display_name, t.phone, t.author_name, t.agency_name,
         CASE WHEN m.wa THEN 'whatsapp' ELSE 'sms' END AS channel,
         {_SID} AS sid, {_BODY} AS body, {_READ_AT} AS read_at,
         CASE WHEN m.loc THEN round((45.76 + (pg_temp.u(m.tkey * 65536 + m.s, 61) - 0.5) * 0.1)::numeric, 6) END
           AS latitude,
         CASE WHEN m.loc THEN round((4.83 + (pg_temp.u(m.tkey * 65536 + m.s, 62) - 0.5) * 0.1)::numeric, 6) END
           AS longitude,
         'https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/' || {_SID} || '/Media/' || {_MEDIA_SID}
           AS media_url,
         CASE WHEN pg_temp.u(m.tkey * 65536 + m.s, 58) < 0.8 THEN 'image/jpeg' ELSE 'application/pdf' END
           AS content_type
  FROM bench_mplan m JOIN bench_thread t ON t.id = m.thread_id
  OFFSET 0
) x
"""

ATTACHMENTS = f"""
CREATE TEMP TABLE bench_attach AS
SELECT %(abase)s + row_number() OVER (ORDER BY m.id) AS id, m.id AS message_id,
       CASE WHEN pg_temp.u(m.tkey * 65536 + m.s, 58) < 0.8 THEN 'image/jpeg' ELSE 'application/pdf' END
         AS content_type,
       40000 + floor(pg_temp.u(m.tkey * 65536 + m.s, 63) * 2000000)::bigint AS size,
       'https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/' || {_SID} || '/Media/' || {_MEDIA_SID}
         AS original_url,
       'attachments/' || to_char(m.at AT TIME ZONE 'UTC', 'YYYY/MM') || '/' || {_MEDIA_SID}
         || CASE WHEN pg_temp.u(m.tkey * 65536 + m.s, 58) < 0.8 THEN '.jpg' ELSE '.pdf' END AS file
FROM bench_mplan m WHERE m.attach
"""
ATTACHMENTS_INSERT = """
INSERT INTO {attachment} (id, message_id, position, content_type, size, original_url, file, state, error, attempts)
SELECT id, message_id, 0, content_type, size, original_url, file, 'stored', '', 1 FROM bench_attach ORDER BY id
"""

THREAD_AGGREGATES = f"""
CREATE TEMP TABLE bench_threadagg AS
SELECT a.*, left({_BODY}, 200) AS preview
FROM (
  SELECT thread_id, min(at) AS first_at, max(at) AS last_at,
         max(at) FILTER (WHERE inbound AND wa) AS last_wa_in, max(at) FILTER (WHERE inbound AND NOT wa) AS last_sms_in,
         min(at) FILTER (WHERE tail AND inbound) AS run_start, min(at) FILTER (WHERE last_ep) AS routed_at,
         max(id) FILTER (WHERE last) AS last_id
  FROM bench_mplan GROUP BY thread_id
) a
JOIN bench_mplan m ON m.id = a.last_id
JOIN bench_thread t ON t.id = a.thread_id
"""

THREADS_INSERT = """
INSERT INTO {thread} (id, status, routing_reason_code, routing_reason_params, routed_at, last_whatsapp_inbound_at,
  last_sms_inbound_at, last_email_inbound_at, last_webchat_inbound_at, last_inbound_channel, last_activity_at,
  last_message_preview, waiting_since, unread_count, created_at, agency_id, customer_id, handler_id, prospect_id,
  dedicated_advisor_id)
SELECT t.id, t.status, t.reason->>'code', t.reason->'params', a.routed_at, a.last_wa_in, a.last_sms_in, NULL, NULL,
       CASE WHEN a.last_wa_in IS NULL AND a.last_sms_in IS NULL THEN ''
            WHEN a.last_sms_in IS NULL OR a.last_wa_in > a.last_sms_in THEN 'whatsapp' ELSE 'sms' END,
       a.last_at, a.preview, CASE WHEN t.status = 'open' THEN a.run_start END,
       CASE WHEN t.status = 'open' THEN t.unread ELSE 0 END,
       a.first_at, t.agency_id, t.customer_id, t.handler_id, t.prospect_id, t.dedicated_id
FROM bench_thread t JOIN bench_threadagg a ON a.thread_id = t.id
ORDER BY t.id
"""

NOTES_PLAN = f"""
CREATE TEMP TABLE bench_note AS
SELECT %(nbase)s + row_number() OVER (ORDER BY n.at, n.thread_id) AS id, n.*
FROM (
  SELECT t.id AS thread_id, t.author_id, t.author_name,
         a.first_at + (a.last_at - a.first_at) * pg_temp.u(t.tkey, 61) AS at,
         {_pick(text.NOTES, "t.tkey", 62)} AS body
  FROM bench_thread t JOIN bench_threadagg a ON a.thread_id = t.id
  WHERE pg_temp.u(t.tkey, 60) < 0.03
) n
"""
NOTES_INSERT = """
INSERT INTO {note} (id, body, created_at, author_id, thread_id)
SELECT id, body, at, author_id, thread_id FROM bench_note ORDER BY id
"""

# --- The event log ---------------------------------------------------------------------------

# Events per message, to find where the log starts so that it holds the number asked for.
EVENT_HISTOGRAM = """
SELECT id / %(bucket)s AS b, min(at) AS since,
       sum(1 + CASE st WHEN 1 THEN 3 WHEN 2 THEN 2 WHEN 3 THEN 1 WHEN 4 THEN 1 WHEN 5 THEN 2 ELSE 0 END
           + (NOT inbound AND prev_inbound IS TRUE AND handled)::int + (s = 0)::int) AS events
FROM bench_mplan GROUP BY 1 ORDER BY 1 DESC
"""

# What each event needs of its message travels with it: the log is written from this
# plan alone (joined only to the thread), in time order.
_EV_MESSAGE = "m.inbound, m.wa, m.tkey, m.s, m.j, m.topic, m.tmpl, m.closing, m.loc, m.attach, m.button, m.author_id"
_EV_NO_MESSAGE = "NULL::boolean, NULL::boolean, NULL::bigint, NULL::integer, NULL::integer, NULL::integer, " + (
    "NULL::integer, NULL::boolean, NULL::boolean, NULL::boolean, NULL::boolean, NULL::bigint"
)
_EV_COLUMNS = (
    "at, ord, ref, type, thread_id, status, unread, waiting_since, mid, extra, mat, "
    "inbound, wa, tkey, s, j, topic, tmpl, closing, loc, attach, button, author_id"
)
EVENT_PLAN = f"""
CREATE TEMP TABLE bench_eplan AS
SELECT %(ebase)s + row_number() OVER (ORDER BY e.at, e.ord, e.ref, e.type, e.status) AS id, e.*
FROM (
  SELECT m.at, 2 AS ord, m.id AS ref, 'message.created' AS type, m.thread_id, NULL::text AS status,
         CASE WHEN m.inbound THEN row_number() OVER w ELSE 0 END AS unread,
         CASE WHEN m.inbound THEN min(m.at) OVER w END AS waiting_since, m.id AS mid, NULL::bigint AS extra,
         m.at AS mat, {_EV_MESSAGE}
  FROM (SELECT m.*, m.s - row_number() OVER (PARTITION BY m.thread_id, m.inbound ORDER BY m.s) AS grp
        FROM bench_mplan m WHERE m.id > %(cutoff)s) m
  WINDOW w AS (PARTITION BY m.thread_id, m.inbound, m.grp ORDER BY m.s)
  UNION ALL
  SELECT m.at + interval '1.1 second', 3, m.id, 'message.status', m.thread_id, 'sent', NULL, NULL, m.id, NULL,
         m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.st IN (1, 2, 3, 5)
  UNION ALL
  SELECT m.at + interval '3 second', 3, m.id, 'message.status', m.thread_id, 'delivered', NULL, NULL, m.id, NULL,
         m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.st IN (1, 2)
  UNION ALL
  SELECT {_READ_AT}, 3, m.id, 'message.status', m.thread_id, 'read', NULL, NULL, m.id, NULL, m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.st = 1
  UNION ALL
  SELECT m.at + CASE WHEN m.st = 4 THEN interval '2 second' ELSE interval '6 second' END, 3, m.id,
         'message.status', m.thread_id, CASE WHEN m.st = 4 THEN 'failed' ELSE 'undelivered' END, NULL, NULL, m.id,
         NULL, m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.st IN (4, 5)
  UNION ALL
  -- The handler opened the thread before answering: it was read.
  SELECT m.at - interval '1 minute', 1, m.id, 'thread.updated', m.thread_id, 'read', 0, NULL, m.id, NULL, m.at,
         {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND NOT m.inbound AND m.prev_inbound IS TRUE AND m.handled
  UNION ALL
  -- Routed when the conversation started.
  SELECT m.at, 1, m.id, 'thread.assigned', m.thread_id, NULL, 1, NULL, m.id, NULL, m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.s = 0
  UNION ALL
  SELECT m.at + least(interval '2 hours', (%(now)s::timestamptz - m.at) / 2), 4, m.id, 'thread.updated',
         m.thread_id, 'closed', 0, NULL, m.id, NULL, m.at, {_EV_MESSAGE}
  FROM bench_mplan m WHERE m.id > %(cutoff)s AND m.last AND m.thread_closed
  UNION ALL
  SELECT n.at, 5, n.id, 'note.created', n.thread_id, NULL, NULL, NULL, NULL, n.id, NULL, {_EV_NO_MESSAGE}
  FROM bench_note n WHERE n.at >= %(cutoff_at)s
  UNION ALL
  SELECT t.switch_at, 6, t.id, 'customer.reassigned', t.id, NULL, NULL, NULL, NULL, NULL, NULL, {_EV_NO_MESSAGE}
  FROM bench_thread t WHERE t.switch_at >= %(cutoff_at)s
) e ({_EV_COLUMNS})
ORDER BY e.at, e.ord, e.ref, e.type, e.status
"""

_X_BODY = _BODY.replace("m.", "e.")
_MESSAGE_JSON = """jsonb_build_object(
  'id', x.mid, 'thread', x.thread_id, 'direction', CASE WHEN x.inbound THEN 'inbound' ELSE 'outbound' END,
  'channel', CASE WHEN x.wa THEN 'whatsapp' ELSE 'sms' END, 'body', x.body,
  'status', CASE WHEN x.inbound THEN 'received' ELSE 'queued' END, 'error_code', '', 'error_message', '',
  'author', x.author_id, 'created_at', pg_temp.iso(x.mat),
  'profile_name', CASE WHEN x.inbound AND x.wa THEN x.display_name ELSE '' END,
  'location', CASE WHEN x.loc THEN jsonb_build_object(
      'latitude', round((45.76 + (pg_temp.u(x.tkey * 65536 + x.s, 61) - 0.5) * 0.1)::numeric, 6)::text,
      'longitude', round((4.83 + (pg_temp.u(x.tkey * 65536 + x.s, 62) - 0.5) * 0.1)::numeric, 6)::text,
      'address', '12 rue de la République, 69002 Lyon', 'label', '') END,
  'button', CASE WHEN x.button THEN jsonb_build_object('text', 'Oui, volontiers', 'payload', 'reprise_oui') END,
  'replied_to', NULL, 'consent_change', '',
  'attachments', CASE WHEN x.attach THEN jsonb_build_array(jsonb_build_object(
      'id', att.id, 'content_type', att.content_type, 'state', 'stored', 'size', att.size, 'error', ''))
      ELSE jsonb_build_array() END)"""


def _summary(*, status: str, unread: str, at: str, preview: str, channel: str, waiting: str) -> str:
    return (
        f"pg_temp.summary(x.thread_id, x.customer_id, x.name, {status}, x.handler_id, x.agency_id, x.reason, "
        f"{unread}, {at}, {preview}, {channel}, {waiting})"
    )


_FAILED_WA = "Failed to send freeform message because you are outside the allowed window. Please use a Template."
EVENTS = f"""
INSERT INTO {{event}} (id, type, payload, created_at, agency_id, thread_id)
SELECT x.id, x.type,
  CASE x.type
    WHEN 'message.created' THEN jsonb_build_object('message', {_MESSAGE_JSON}, 'thread_summary', {
    _summary(
        status="CASE WHEN x.inbound THEN 'open' ELSE 'waiting' END",
        unread="x.unread",
        at="x.mat",
        preview="x.body",
        channel="CASE WHEN x.inbound = x.wa THEN 'whatsapp' ELSE 'sms' END",
        waiting="x.waiting_since",
    )
})
    WHEN 'message.status' THEN jsonb_build_object('message', x.mid, 'status', x.status,
      'error_code', CASE x.status WHEN 'failed' THEN CASE WHEN x.wa THEN '63016' ELSE '30008' END
                                  WHEN 'undelivered' THEN '30003' ELSE '' END,
      'error_message', CASE x.status WHEN 'failed' THEN CASE WHEN x.wa THEN '{_FAILED_WA}' ELSE 'Unknown error' END
                                     WHEN 'undelivered' THEN 'Unreachable destination handset' ELSE '' END)
    WHEN 'thread.assigned' THEN jsonb_build_object('thread_summary', {
    _summary(
        status="'open'",
        unread="1",
        at="x.mat",
        preview="x.body",
        channel="CASE WHEN x.wa THEN 'whatsapp' ELSE 'sms' END",
        waiting="x.mat",
    )
}, 'previous_handler', NULL, 'handler', x.handler_id, 'reason', x.reason->>'code',
  'reason_params', x.reason->'params')
    WHEN 'thread.updated' THEN jsonb_build_object('thread_summary', {
    _summary(
        status="CASE WHEN x.status = 'closed' THEN 'closed' ELSE 'open' END",
        unread="0",
        at="CASE WHEN x.status = 'closed' THEN x.mat ELSE x.mat - interval '2 minutes' END",
        preview="CASE WHEN x.status = 'closed' THEN x.body ELSE '' END",
        channel="CASE WHEN x.has_wa THEN 'whatsapp' ELSE 'sms' END",
        waiting="NULL::timestamptz",
    )
}, 'by', x.thread_author_id, 'change', CASE WHEN x.status = 'closed' THEN 'status' ELSE 'read' END)
    WHEN 'note.created' THEN jsonb_build_object('note', jsonb_build_object('id', n.id, 'body', n.body,
      'author', n.author_id, 'author_name', n.author_name, 'created_at', pg_temp.iso(n.at)))
    WHEN 'customer.reassigned' THEN jsonb_build_object('customer', x.customer_id,
      'previous_advisor', x.previous_advisor_id, 'advisor', x.dedicated_id, 'handler', x.handler_id,
      'reason', 'Reprise du portefeuille de ' || coalesce(x.previous_advisor_name, 'un conseiller parti'))
  END,
  x.at, x.agency_id, x.thread_id
FROM (
  SELECT e.*, t.customer_id, t.name, t.handler_id, t.agency_id, t.reason, t.display_name, t.has_wa, t.dedicated_id,
         t.author_id AS thread_author_id, t.previous_advisor_id, t.previous_advisor_name,
         CASE WHEN e.type IN ('message.created', 'thread.assigned', 'thread.updated') THEN {_X_BODY} END AS body
  FROM bench_eplan e JOIN bench_thread t ON t.id = e.thread_id
  OFFSET 0
) x
LEFT JOIN bench_attach att ON att.message_id = x.mid
LEFT JOIN bench_note n ON n.id = x.extra
"""

# --- Loading fast, and the schema's own checks afterwards -------------------------------------

DEFERRED_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = ANY(%(tables)s::regclass[]) AND contype IN ('f', 'u')
ORDER BY contype DESC, conrelid::regclass::text, conname
"""
DEFERRED_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(tables)s::regclass[]) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
ORDER BY 1
"""
# Columns that must be given a value (NOT NULL and no default): every one of them is in
# the INSERT for its table, or the build stops before writing anything.
REQUIRED_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %(table)s AND is_nullable = 'NO'
  AND column_default IS NULL AND is_identity = 'NO'
"""

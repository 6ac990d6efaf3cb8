-- The plans bench/plans/fixes.sql runs (twice: the first pass warms the cache).
\qecho
\qecho ==== Inbox, mine, chloe (47,000 book): first page of 50, one index range per branch
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.*, c.*, h.*, u.*
FROM ((SELECT id, last_activity_at FROM thread_fix
       WHERE handler_id = :chloe AND status <> 'closed' ORDER BY last_activity_at DESC, id DESC LIMIT 51)
      UNION
      (SELECT id, last_activity_at FROM thread_fix
       WHERE dedicated_advisor_id = :chloe AND status <> 'closed' ORDER BY last_activity_at DESC, id DESC LIMIT 51)
      ORDER BY last_activity_at DESC, id DESC LIMIT 51) page
JOIN thread_fix t ON t.id = page.id
LEFT JOIN crm_customer c ON c.id = t.customer_id
LEFT JOIN crm_advisor h ON h.id = t.handler_id
LEFT JOIN auth_user u ON u.id = h.user_id
ORDER BY page.last_activity_at DESC, page.id DESC;

\qecho ==== Inbox, mine, chloe: a later page (after the 2,000th row), the same cost
SELECT last_activity_at AS at, id AS tid FROM thread_fix
WHERE (handler_id = :chloe OR dedicated_advisor_id = :chloe) AND status <> 'closed'
ORDER BY last_activity_at DESC, id DESC OFFSET 2000 LIMIT 1 \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM ((SELECT id, last_activity_at FROM thread_fix
       WHERE handler_id = :chloe AND status <> 'closed' AND (last_activity_at, id) < (:'at', :tid)
       ORDER BY last_activity_at DESC, id DESC LIMIT 51)
      UNION
      (SELECT id, last_activity_at FROM thread_fix
       WHERE dedicated_advisor_id = :chloe AND status <> 'closed' AND (last_activity_at, id) < (:'at', :tid)
       ORDER BY last_activity_at DESC, id DESC LIMIT 51)
      ORDER BY last_activity_at DESC, id DESC LIMIT 51) page;

\qecho ==== Inbox, pool, chloes online centre (34,000 pool threads)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM thread_fix WHERE agency_id = 2 AND handler_id IS NULL AND status <> 'closed'
ORDER BY last_activity_at DESC, id DESC LIMIT 51;

\qecho ==== Inbox, closed, alice (herself and the colleague she covers, 91; her agencys pool)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM (
  (SELECT id, last_activity_at FROM thread_fix WHERE handler_id = :alice AND status = 'closed'
   ORDER BY last_activity_at DESC, id DESC LIMIT 51)
  UNION (SELECT id, last_activity_at FROM thread_fix WHERE handler_id = 91 AND status = 'closed'
   ORDER BY last_activity_at DESC, id DESC LIMIT 51)
  UNION (SELECT id, last_activity_at FROM thread_fix WHERE dedicated_advisor_id = :alice AND status = 'closed'
   ORDER BY last_activity_at DESC, id DESC LIMIT 51)
  UNION (SELECT id, last_activity_at FROM thread_fix WHERE dedicated_advisor_id = 91 AND status = 'closed'
   ORDER BY last_activity_at DESC, id DESC LIMIT 51)
  UNION (SELECT id, last_activity_at FROM thread_fix WHERE agency_id = 1 AND handler_id IS NULL
   AND status = 'closed' ORDER BY last_activity_at DESC, id DESC LIMIT 51)
  ORDER BY last_activity_at DESC, id DESC LIMIT 51) page;

\qecho ==== Unread badges, chloe (handles 39,000 threads): without the needless ORDER BY
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, unread_count FROM thread_fix WHERE handler_id = :chloe AND unread_count > 0 AND status <> 'closed';

\qecho ==== Search by last name in chloes tab (Roux: ~1,000 customers bank-wide), trigram index
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t JOIN crm_customer c ON c.id = t.customer_id
WHERE (upper(c.last_name::text) LIKE '%ROUX%' OR upper(c.first_name::text) LIKE '%ROUX%')
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== The same for the commonest name, Martin (~32,000 customers bank-wide)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t JOIN crm_customer c ON c.id = t.customer_id
WHERE (upper(c.last_name::text) LIKE '%MARTIN%' OR upper(c.first_name::text) LIKE '%MARTIN%')
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== Martin, scope first: chloes own customers (BitmapAnd of the trigram and advisor indexes)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM crm_customer c JOIN thread_fix t ON t.customer_id = c.id
WHERE c.dedicated_advisor_id = :chloe AND upper(c.last_name::text) LIKE '%MARTIN%' AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== Search by phone (either form, normalised to E.164 first): exact address
SELECT address AS phone FROM crm_contactpoint WHERE customer_id IN (SELECT id FROM crm_customer WHERE dedicated_advisor_id = :chloe)
  AND kind = 'whatsapp' ORDER BY id LIMIT 1 \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t
WHERE (t.customer_id IN (SELECT customer_id FROM crm_contactpoint WHERE address = :'phone')
       OR t.prospect_id IN (SELECT id FROM crm_contactpoint WHERE address = :'phone'))
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== Search by the start of a phone number (06 24 00 …): prefix on the pattern index
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t
WHERE t.customer_id IN (SELECT customer_id FROM crm_contactpoint WHERE address LIKE '+3362400%')
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== Search by customer number (upper-cased, prefix): the existing _like index
SELECT customer_number AS number FROM crm_customer WHERE dedicated_advisor_id = :chloe ORDER BY id LIMIT 1 \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t JOIN crm_customer c ON c.id = t.customer_id
WHERE c.customer_number LIKE :'number' || '%'
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== API /customers/?phone=: the kind the number is stored under, so (kind, address) is used
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT c.id FROM crm_customer c
WHERE EXISTS (SELECT 1 FROM crm_contactpoint p WHERE p.customer_id = c.id AND p.kind IN ('whatsapp', 'sms')
              AND p.address = :'phone')
ORDER BY c.id DESC LIMIT 51;

\qecho ==== API /customers/?search=<last name> (an API key: every agency), trigram index
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT c.id FROM crm_customer c
WHERE upper(c.last_name::text) LIKE '%BRETON%' OR upper(c.first_name::text) LIKE '%BRETON%'
ORDER BY c.id DESC LIMIT 51;

\qecho ==== API /threads/?handler=<id>: in id order from (handler_id, id)
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM thread_fix WHERE handler_id = 363 ORDER BY id DESC LIMIT 51;

\qecho ==== Thread page: the timelines events of a 2,900-message thread
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, type FROM conversations_event WHERE thread_id = 11384
  AND type IN ('thread.assigned', 'consent.changed', 'customer.reassigned', 'contact_point.confirmed') ORDER BY id;

\qecho ==== Websocket catch-up, alice, 20,000 events behind: one id range, visibility joined per event
SELECT max(id) - 20000 AS since FROM conversations_event \gset
SELECT min(id) AS floor FROM conversations_event
WHERE created_at >= (SELECT created_at FROM conversations_event WHERE id = :since) - interval '30 seconds' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT e.id, e.type, e.thread_id, e.payload FROM conversations_event e
JOIN thread_fix t ON t.id = e.thread_id
WHERE e.id > least(:since, :floor)
  AND (t.handler_id IN (:alice, 91) OR t.dedicated_advisor_id IN (:alice, 91)
       OR (t.handler_id IS NULL AND t.agency_id = 1)
       OR (e.type = 'thread.assigned' AND e.payload -> 'previous_handler' IN ('2'::jsonb, '91'::jsonb)))
ORDER BY e.id LIMIT 2001;

\qecho ==== Websocket catch-up, chloe, nothing missed
SELECT max(id) AS since FROM conversations_event \gset
SELECT min(id) AS floor FROM conversations_event
WHERE created_at >= (SELECT created_at FROM conversations_event WHERE id = :since) - interval '30 seconds' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT e.id, e.type, e.thread_id, e.payload FROM conversations_event e
JOIN thread_fix t ON t.id = e.thread_id
WHERE e.id > least(:since, :floor)
  AND (t.handler_id IN (:chloe, 89) OR t.dedicated_advisor_id IN (:chloe, 89)
       OR (t.handler_id IS NULL AND t.agency_id = 2)
       OR (e.type = 'thread.assigned' AND e.payload -> 'previous_handler' IN ('4'::jsonb, '89'::jsonb)))
ORDER BY e.id LIMIT 2001;

\qecho ==== Admin, sam: customers of his agency named Breton, first page, no full count
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT c.id FROM crm_customer c
WHERE c.agency_id = 1 AND (upper(c.last_name::text) LIKE '%BRETON%' OR upper(c.first_name::text) LIKE '%BRETON%')
ORDER BY c.last_name, c.first_name, c.id DESC LIMIT 101;


\qecho ==== Search by last name, Roux, chloe: thread search text in one GIN index with its owner
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM ((SELECT id, last_activity_at FROM thread_fix
                 WHERE handler_id = :chloe AND status <> 'closed' AND search_text LIKE '%ROUX%')
                UNION (SELECT id, last_activity_at FROM thread_fix
                 WHERE dedicated_advisor_id = :chloe AND status <> 'closed' AND search_text LIKE '%ROUX%')) m
ORDER BY last_activity_at DESC, id DESC LIMIT 51;

\qecho ==== The same for Martin
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id FROM ((SELECT id, last_activity_at FROM thread_fix
                 WHERE handler_id = :chloe AND status <> 'closed' AND search_text LIKE '%MARTIN%')
                UNION (SELECT id, last_activity_at FROM thread_fix
                 WHERE dedicated_advisor_id = :chloe AND status <> 'closed' AND search_text LIKE '%MARTIN%')) m
ORDER BY last_activity_at DESC, id DESC LIMIT 51;

\qecho ==== Search by phone, the contact points resolved first (one query), then their threads by id
SELECT coalesce(array_agg(customer_id) FILTER (WHERE customer_id IS NOT NULL), '{}') AS customers,
       coalesce(array_agg(id) FILTER (WHERE customer_id IS NULL), '{}') AS prospects
FROM crm_contactpoint WHERE address = :'phone' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT t.id FROM thread_fix t
WHERE (t.customer_id = ANY(:'customers'::bigint[]) OR t.prospect_id = ANY(:'prospects'::bigint[]))
  AND (t.handler_id = :chloe OR t.dedicated_advisor_id = :chloe) AND t.status <> 'closed'
ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 51;

\qecho ==== Websocket catch-up, alice, 20,000 behind, visibility checked per event (OFFSET 0 keeps it a nested loop)
SELECT max(id) - 20000 AS since FROM conversations_event \gset
SELECT min(id) AS floor FROM conversations_event
WHERE created_at >= (SELECT created_at FROM conversations_event WHERE id = :since) - interval '30 seconds' \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT e.id, e.type, e.thread_id, e.payload FROM conversations_event e
CROSS JOIN LATERAL (SELECT 1 FROM thread_fix t WHERE t.id = e.thread_id
  AND (t.handler_id IN (:alice, 91) OR t.dedicated_advisor_id IN (:alice, 91)
       OR (t.handler_id IS NULL AND t.agency_id = 1)
       OR (e.type = 'thread.assigned' AND e.payload -> 'previous_handler' IN ('2'::jsonb, '91'::jsonb)))
  OFFSET 0) visible
WHERE e.id > least(:since, :floor)
ORDER BY e.id LIMIT 2001;

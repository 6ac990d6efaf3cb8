-- The fixes proposed for issue 14, tried on a bank built by bench/bank.py, and rolled back.
--   psql -h 127.0.0.1 -U postgres attitre_scale -v alice=2 -v chloe=4 -f bench/plans/fixes.sql > bench/plans/1M/fixes.txt
-- Ids are the demo's (alice 2, chloe 4, agencies 1 and 2), the same in every bank
-- bench/bank.py builds. Nothing here changes the database: it all ends in ROLLBACK.
\set ON_ERROR_STOP on
\pset pager off
BEGIN;

-- 1. The customer's dedicated advisor, copied onto the thread (customer_create,
--    customer_reassign and prospect_link_to_customer would keep it), so that every inbox
--    tab is a condition on one table that one index answers in order. Tried on a copy of
--    the table: an UPDATE would leave HOT chains that hide indexes created in the same
--    transaction from it (pg_index.indcheckxmin).
CREATE TABLE thread_fix AS
SELECT t.*, c.dedicated_advisor_id,
       upper(coalesce(c.first_name || ' ' || c.last_name || ' ' || c.customer_number, p.display_name, '')) AS search_text
FROM conversations_thread t LEFT JOIN crm_customer c ON c.id = t.customer_id LEFT JOIN crm_contactpoint p ON p.id = t.prospect_id
ORDER BY t.id;
ALTER TABLE thread_fix ADD PRIMARY KEY (id);
CREATE INDEX ON thread_fix (customer_id);

-- 2. Keyset indexes for the tabs: (owner, last activity, id), open and closed apart.
CREATE INDEX thread_open_by_handler ON thread_fix (handler_id, last_activity_at, id)
  WHERE status <> 'closed';
CREATE INDEX thread_open_by_dedicated ON thread_fix (dedicated_advisor_id, last_activity_at, id)
  WHERE status <> 'closed';
CREATE INDEX thread_open_in_pool ON thread_fix (agency_id, last_activity_at, id)
  WHERE handler_id IS NULL AND status <> 'closed';
CREATE INDEX thread_closed_by_handler ON thread_fix (handler_id, last_activity_at, id)
  WHERE status = 'closed';
CREATE INDEX thread_closed_by_dedicated ON thread_fix (dedicated_advisor_id, last_activity_at, id)
  WHERE status = 'closed';
CREATE INDEX thread_closed_in_pool ON thread_fix (agency_id, last_activity_at, id)
  WHERE handler_id IS NULL AND status = 'closed';
-- 3. The unread badges: only the threads that have some.
CREATE INDEX thread_unread ON thread_fix (handler_id) INCLUDE (unread_count)
  WHERE unread_count > 0 AND status <> 'closed';
-- 4. Search: trigrams for names (the expressions Django's icontains writes), a pattern
--    index for addresses (exact and prefix: +3362400…, an email), customer numbers by
--    the existing crm_customer_customer_number_…_like index.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX customer_name_trgm ON crm_customer
  USING gin (upper(last_name::text) gin_trgm_ops, upper(first_name::text) gin_trgm_ops);
CREATE INDEX contact_point_address_pattern ON crm_contactpoint (address varchar_pattern_ops);
-- 4b. Or the words a thread is found by (names, customer number; a prospect's profile name) on
--     the thread itself, in one GIN index with its owner (btree_gin): the search is then one
--     index scan among the owner's threads, however common the name.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX thread_search_by_handler ON thread_fix USING gin (handler_id, search_text gin_trgm_ops)
  WHERE status <> 'closed';
CREATE INDEX thread_search_by_dedicated ON thread_fix USING gin (dedicated_advisor_id, search_text gin_trgm_ops)
  WHERE status <> 'closed';
-- 5. The thread page's timeline events, and the API's handler filter in id order.
CREATE INDEX event_timeline ON conversations_event (thread_id, id)
  WHERE type IN ('thread.assigned', 'consent.changed', 'customer.reassigned', 'contact_point.confirmed');
CREATE INDEX thread_handler_id_order ON thread_fix (handler_id, id);
-- 6. The admin's list and search within an agency.
CREATE INDEX customer_agency_name ON crm_customer (agency_id, last_name, first_name);
ANALYZE thread_fix;
ANALYZE crm_customer;
ANALYZE crm_contactpoint;
ANALYZE conversations_event;

ANALYZE thread_fix;
-- Write the build's dirty pages out now, so that the plans below do not pay for it.
CHECKPOINT;

\o /dev/null
\ir fixes_queries.sql
\o
\ir fixes_queries.sql

ROLLBACK;

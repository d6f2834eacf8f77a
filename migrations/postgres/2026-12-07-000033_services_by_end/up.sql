-- The services that keep a client visible (CL-13: ended on or after the cut-off, or not ended),
-- found by their end (PL-15, issue 22 point 5). The anonymisation run's walk, its check of each
-- batch and the due list ask "has this client a service ending on or after the cut-off": when
-- few services do (a register past its clients' last services, as in the benchmark), PostgreSQL
-- answers that from the visible services once, and without an index on the end it read every
-- service of the registrar for it, in every batch: 1 000 000 services per 10 000 clients. The
-- rule's two arms (closed: its closing date; not closed: the end of its validity) are one partial
-- index each, which the planner combines (BitmapOr). SQLite asks per client through
-- `services_client` and needs neither.
CREATE INDEX services_open_until ON services (registrar_id, valid_to) WHERE closed_on IS NULL;
CREATE INDEX services_closed_until ON services (registrar_id, closed_on) WHERE closed_on IS NOT NULL;

DROP TABLE listening_grants;
DROP TABLE processing_memo_entries;
DROP TABLE processing_memos;
DROP TABLE legal_holds;
DROP TABLE recordings;
DROP TABLE contacts;
DROP TABLE call_queue_listeners;
DROP TABLE call_queues;

DROP TABLE page_outbox;

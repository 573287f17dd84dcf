DROP TABLE message_outbox;

DROP TABLE withdrawn_tokens;

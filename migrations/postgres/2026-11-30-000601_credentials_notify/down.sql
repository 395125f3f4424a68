DROP TRIGGER credentials_notify ON credentials;

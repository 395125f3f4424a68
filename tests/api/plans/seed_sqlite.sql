-- 100,000 users with the status mix of bench/: 20% enrolled, 10% expired, 4% delivery
-- failed, 3% sending, the rest pending; names and addresses as examples/seed.rs makes them.
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999),
firsts(k, name) AS (VALUES (0,'Ada'),(1,'Alan'),(2,'Grace'),(3,'Edsger'),(4,'Barbara'),(5,'Donald'),(6,'Frances'),(7,'John'),(8,'Margaret'),(9,'Dennis'),(10,'Ken'),(11,'Radia'),(12,'Tim'),(13,'Vint'),(14,'Hedy'),(15,'Katherine'),(16,'Dorothy'),(17,'Mary'),(18,'Linus'),(19,'Guido'),(20,'Bjarne'),(21,'James'),(22,'Anders'),(23,'Yukihiro'),(24,'Larry'),(25,'Rasmus'),(26,'Brendan'),(27,'Sophie'),(28,'Ruth'),(29,'Karen'),(30,'Leslie'),(31,'Niklaus'),(32,'Tony'),(33,'Robin'),(34,'Shafi'),(35,'Silvio'),(36,'Whitfield'),(37,'Martin'),(38,'Adi'),(39,'Ron')),
lasts(k, name) AS (VALUES (0,'Lovelace'),(1,'Turing'),(2,'Hopper'),(3,'Dijkstra'),(4,'Liskov'),(5,'Knuth'),(6,'Allen'),(7,'McCarthy'),(8,'Hamilton'),(9,'Ritchie'),(10,'Thompson'),(11,'Perlman'),(12,'Berners-Lee'),(13,'Cerf'),(14,'Lamarr'),(15,'Johnson'),(16,'Vaughan'),(17,'Jackson'),(18,'Torvalds'),(19,'van Rossum'),(20,'Stroustrup'),(21,'Gosling'),(22,'Hejlsberg'),(23,'Matsumoto'),(24,'Wall'),(25,'Lerdorf'),(26,'Eich'),(27,'Wilson'),(28,'Teitelman'),(29,'Sparck Jones'),(30,'Lamport'),(31,'Wirth'),(32,'Hoare'),(33,'Milner'),(34,'Goldwasser'),(35,'Micali'),(36,'Diffie'),(37,'Hellman'),(38,'Shamir'),(39,'Rivest'),(40,'Adleman'),(41,'Kay'),(42,'Engelbart'),(43,'Sutherland'),(44,'Backus'),(45,'Codd'),(46,'Gray'),(47,'Stonebraker'),(48,'Cook'),(49,'Karp')),
people AS (
  SELECT i, f.name AS first, l.name AS last,
         lower(f.name) || '.' || replace(lower(l.name), ' ', '') || '.' || i || '@example.com' AS email
  FROM n JOIN firsts f ON f.k = i % 40 JOIN lasts l ON l.k = (i / 40) % 50)
INSERT INTO users (id, first_name, last_name, email, email_key, name_key, search_key, created_at, enrolled_at, search_id)
SELECT printf('00000000-0000-7000-8000-%012d', i), first, last, email, email,
       lower(last) || ' ' || lower(first), lower(first) || ' ' || lower(last) || ' ' || email,
       strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (100000 - i) || ' seconds'),
       CASE WHEN i % 100 < 20 THEN strftime('%Y-%m-%d %H:%M:%f', 'now') END,
       i + 1
FROM people;
INSERT INTO invitations (id, user_id, token_hash, created_at, expires_at, used_at, sent_at, delivery_failed_at, delivery_error)
SELECT 'inv-' || id, id, 'hash-' || id, created_at,
       CASE WHEN n % 100 BETWEEN 20 AND 29 THEN strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 days') ELSE strftime('%Y-%m-%d %H:%M:%f', 'now', '+14 days') END,
       enrolled_at,
       CASE WHEN n % 100 BETWEEN 30 AND 36 THEN NULL ELSE created_at END,
       CASE WHEN n % 100 BETWEEN 30 AND 33 THEN created_at END,
       CASE WHEN n % 100 BETWEEN 30 AND 33 THEN '550 5.1.1 Mailbox unavailable' END
FROM (SELECT id, created_at, enrolled_at, search_id - 1 AS n FROM users WHERE id LIKE '00000000-0000-7000-8000-%');

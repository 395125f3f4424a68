-- 100,000 users with the status mix of bench/: 20% enrolled, 10% expired, 4% delivery
-- failed, 3% sending, the rest pending; names and addresses as examples/seed.rs makes them.
WITH firsts(k, name) AS (SELECT k - 1, name FROM unnest(ARRAY['Ada','Alan','Grace','Edsger','Barbara','Donald','Frances','John','Margaret','Dennis','Ken','Radia','Tim','Vint','Hedy','Katherine','Dorothy','Mary','Linus','Guido','Bjarne','James','Anders','Yukihiro','Larry','Rasmus','Brendan','Sophie','Ruth','Karen','Leslie','Niklaus','Tony','Robin','Shafi','Silvio','Whitfield','Martin','Adi','Ron']) WITH ORDINALITY AS t(name, k)),
lasts(k, name) AS (SELECT k - 1, name FROM unnest(ARRAY['Lovelace','Turing','Hopper','Dijkstra','Liskov','Knuth','Allen','McCarthy','Hamilton','Ritchie','Thompson','Perlman','Berners-Lee','Cerf','Lamarr','Johnson','Vaughan','Jackson','Torvalds','van Rossum','Stroustrup','Gosling','Hejlsberg','Matsumoto','Wall','Lerdorf','Eich','Wilson','Teitelman','Sparck Jones','Lamport','Wirth','Hoare','Milner','Goldwasser','Micali','Diffie','Hellman','Shamir','Rivest','Adleman','Kay','Engelbart','Sutherland','Backus','Codd','Gray','Stonebraker','Cook','Karp']) WITH ORDINALITY AS t(name, k)),
people AS (
  SELECT i, f.name AS first, l.name AS last,
         lower(f.name) || '.' || replace(lower(l.name), ' ', '') || '.' || i || '@example.com' AS email
  FROM generate_series(0, 99999) AS i JOIN firsts f ON f.k = i % 40 JOIN lasts l ON l.k = (i / 40) % 50)
INSERT INTO users (id, first_name, last_name, email, email_key, name_key, search_key, created_at, enrolled_at, search_id)
SELECT '00000000-0000-7000-8000-' || lpad(i::text, 12, '0'), first, last, email, email,
       lower(last) || ' ' || lower(first), lower(first) || ' ' || lower(last) || ' ' || email,
       (now() AT TIME ZONE 'UTC') - (100000 - i) * interval '1 second',
       CASE WHEN i % 100 < 20 THEN (now() AT TIME ZONE 'UTC') END, i + 1
FROM people;
INSERT INTO invitations (id, user_id, token_hash, created_at, expires_at, used_at, sent_at, delivery_failed_at, delivery_error)
SELECT 'inv-' || id, id, 'hash-' || id, created_at,
       CASE WHEN n % 100 BETWEEN 20 AND 29 THEN (now() AT TIME ZONE 'UTC') - interval '1 day' ELSE (now() AT TIME ZONE 'UTC') + interval '14 days' END,
       enrolled_at,
       CASE WHEN n % 100 BETWEEN 30 AND 36 THEN NULL ELSE created_at END,
       CASE WHEN n % 100 BETWEEN 30 AND 33 THEN created_at END,
       CASE WHEN n % 100 BETWEEN 30 AND 33 THEN '550 5.1.1 Mailbox unavailable' END
FROM (SELECT id, created_at, enrolled_at, search_id - 1 AS n FROM users WHERE id LIKE '00000000-0000-7000-8000-%') AS u;

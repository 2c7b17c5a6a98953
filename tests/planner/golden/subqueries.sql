# title: a CTE of one source becomes a fragment in its place
WITH r AS (SELECT store_id, sum(qty) AS s FROM lake.main.items GROUP BY store_id) SELECT st.city, r.s FROM r JOIN shop.main.stores AS st ON st.id = r.store_id;
fragment __fragment_0 lake: SELECT "items"."store_id" AS "store_id", SUM("items"."qty") AS "s" FROM "items" AS "items" GROUP BY "items"."store_id";
fragment __fragment_1 shop: SELECT "st"."id" AS "id", "st"."city" AS "city" FROM "stores" AS "st";
residual: WITH "r" AS (SELECT * FROM "__fragment_0") SELECT "st"."city" AS "city", "r"."s" AS "s" FROM "r" AS "r" JOIN "__fragment_1" AS "st" ON "st"."id" = "r"."store_id";

# title: a derived table of one source keeps its alias
SELECT c.name, t.total FROM pg.public.customers AS c JOIN (SELECT customer_id, sum(price) AS total FROM lake.main.items AS i JOIN lake.main.events AS e ON e.id = i.order_id GROUP BY customer_id) AS t ON t.customer_id = c.id;
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id", SUM("i"."price") AS "total" FROM "items" AS "i" JOIN "events" AS "e" ON "e"."id" = "i"."order_id" GROUP BY "e"."customer_id";
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
residual: SELECT "c"."name" AS "name", "t"."total" AS "total" FROM "__fragment_1" AS "c" JOIN "__fragment_0" AS "t" ON "t"."customer_id" = "c"."id";
join: __fragment_0.customer_id = __fragment_1.id either way

# title: an uncorrelated IN sub-query of another source
SELECT c.name FROM pg.public.customers AS c WHERE c.id IN (SELECT customer_id FROM lake.main.events WHERE kind = 'click');
fragment __fragment_0 lake: SELECT "events"."customer_id" AS "customer_id" FROM "events" AS "events" WHERE "events"."kind" = 'click';
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
residual: SELECT "c"."name" AS "name" FROM "__fragment_1" AS "c" WHERE "c"."id" IN (SELECT * FROM "__fragment_0");
join: __fragment_0.customer_id = __fragment_1.id directed
dynamic filter: __fragment_0.customer_id -> __fragment_1.id

# title: a correlated EXISTS stays with its outer query
SELECT c.name FROM pg.public.customers AS c WHERE EXISTS (SELECT 1 FROM lake.main.events AS e WHERE e.customer_id = c.id AND e.kind = 'buy');
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e" WHERE "e"."kind" = 'buy';
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
residual: SELECT "c"."name" AS "name" FROM "__fragment_1" AS "c" WHERE EXISTS(SELECT 1 AS "1" FROM "__fragment_0" AS "e" WHERE "e"."customer_id" = "c"."id");
join: __fragment_1.id = __fragment_0.customer_id directed
dynamic filter: __fragment_1.id -> __fragment_0.customer_id

# title: a scalar sub-query of one source
SELECT p.name, p.price FROM my.shop.products AS p WHERE p.price > (SELECT avg(price) FROM lake.main.items);
fragment __fragment_0 lake: SELECT AVG("items"."price") AS "_col_0" FROM "items" AS "items";
fragment __fragment_1 my: SELECT `p`.`name` AS `name`, `p`.`price` AS `price` FROM `shop`.`products` AS `p`;
residual: SELECT "p"."name" AS "name", "p"."price" AS "price" FROM "__fragment_1" AS "p" WHERE "p"."price" > (SELECT * FROM "__fragment_0");

# title: a derived table's outputs that nothing outside reads are not computed by the source
SELECT d.k FROM (SELECT o.customer_id AS k, SUM(o.amount) AS s, MAX(o.status) AS m FROM pg.public.orders AS o GROUP BY 1) AS d JOIN lake.main.events AS e ON e.customer_id = d.k;
fragment __fragment_0 pg: SELECT "o"."customer_id" AS "k" FROM "public"."orders" AS "o" GROUP BY "o"."customer_id";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
residual: SELECT "d"."k" AS "k" FROM "__fragment_0" AS "d" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "d"."k";
join: __fragment_1.customer_id = __fragment_0.k either way

# title: an output its own ORDER BY reads stays, and so does every output of a DISTINCT
SELECT d.k, x.k FROM (SELECT o.customer_id AS k, SUM(o.amount) AS s FROM pg.public.orders AS o GROUP BY 1 ORDER BY s DESC LIMIT 5) AS d JOIN (SELECT DISTINCT c.id AS k, c.region AS r FROM pg.public.customers AS c) AS x ON x.k = d.k JOIN lake.main.events AS e ON e.customer_id = d.k;
fragment __fragment_0 pg: SELECT DISTINCT "c"."id" AS "k", "c"."region" AS "r" FROM "public"."customers" AS "c";
fragment __fragment_1 pg: SELECT "o"."customer_id" AS "k", SUM("o"."amount") AS "s" FROM "public"."orders" AS "o" GROUP BY "o"."customer_id" ORDER BY "s" DESC LIMIT 5;
fragment __fragment_2 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
residual: SELECT "d"."d.k" AS "k", "x"."x.k" AS "k_2" FROM (SELECT "d"."k" AS "d.k" FROM "__fragment_1" AS "d") AS "d" JOIN (SELECT "x"."k" AS "x.k" FROM "__fragment_0" AS "x") AS "x" ON "x"."x.k" = "d"."d.k" JOIN "__fragment_2" AS "e" ON "e"."customer_id" = "d"."d.k";
join: __fragment_0.k = __fragment_1.k either way
join: __fragment_2.customer_id = __fragment_1.k either way
dynamic filter: __fragment_1.k -> __fragment_0.k
dynamic filter: __fragment_1.k -> __fragment_2.customer_id
dynamic filter: __fragment_0.k -> __fragment_2.customer_id

# title: an unread output holding a sub-query stays (its table is already one the plan reads); the other unread one goes
SELECT d.k FROM (SELECT o.customer_id AS k, (SELECT COUNT(*) FROM lake.main.events AS e WHERE e.customer_id = o.customer_id) AS n, o.amount AS a FROM pg.public.orders AS o) AS d JOIN lake.main.items AS i ON i.order_id = d.k;
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "o"."customer_id" AS "customer_id" FROM "public"."orders" AS "o";
fragment __fragment_2 lake: SELECT "i"."order_id" AS "order_id" FROM "items" AS "i";
residual: SELECT "d"."k" AS "k" FROM (SELECT "o"."customer_id" AS "k", (SELECT COUNT(*) AS "_col_0" FROM "__fragment_0" AS "e" WHERE "e"."customer_id" = "o"."customer_id") AS "n" FROM "__fragment_1" AS "o") AS "d" JOIN "__fragment_2" AS "i" ON "i"."order_id" = "d"."k";
join: __fragment_1.customer_id = __fragment_0.customer_id directed
dynamic filter: __fragment_1.customer_id -> __fragment_0.customer_id

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

# title: single-table conjuncts go into their tables' fragments
SELECT c.name, o.at FROM pg.public.customers AS c JOIN lake.main.events AS o ON o.customer_id = c.id WHERE c.region = 'north' AND o.kind = 'buy' AND c.tier > 1;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."region" = 'north' AND "c"."tier" > 1;
fragment __fragment_1 lake: SELECT "o"."customer_id" AS "customer_id", "o"."at" AS "at" FROM "events" AS "o" WHERE "o"."kind" = 'buy';
residual: SELECT "c"."name" AS "name", "o"."at" AS "at" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "o" ON "o"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

# title: a LEFT JOIN's ON condition on its right side goes into the right side's fragment
SELECT c.name, e.kind FROM pg.public.customers AS c LEFT JOIN lake.main.events AS e ON e.customer_id = c.id AND e.kind = 'buy' WHERE c.active;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."active";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e" WHERE "e"."kind" = 'buy';
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" LEFT JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";

# title: a WHERE condition on the null-supplying side stays in DataFusion
SELECT c.name, e.kind FROM pg.public.customers AS c LEFT JOIN lake.main.events AS e ON e.customer_id = c.id WHERE e.kind IS NULL;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" LEFT JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id" WHERE "e"."kind" IS NULL;

# title: MySQL compares text ignoring case: pushed as a wider filter and re-checked
SELECT p.name, i.qty FROM my.shop.products AS p JOIN lake.main.items AS i ON i.product_id = p.id WHERE p.category = 'Tools';
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`category` AS `category` FROM `shop`.`products` AS `p` WHERE `p`.`category` = 'Tools';
fragment __fragment_1 lake: SELECT "i"."product_id" AS "product_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "p"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "p" JOIN "__fragment_1" AS "i" ON "i"."product_id" = "p"."id" WHERE "p"."category" = 'Tools';
not pushed: filter "p"."category" = 'Tools' on my.shop.products: text comparison in this source follows its collation (case/accent-insensitive); pushed as a wider filter and re-checked
join: __fragment_1.product_id = __fragment_0.id either way
local filter: __fragment_0 p: "p"."category" = 'Tools'
dynamic filter: __fragment_0.id -> __fragment_1.product_id

# title: a negated text comparison is not wider in MySQL: it stays
SELECT p.name, i.qty FROM my.shop.products AS p JOIN lake.main.items AS i ON i.product_id = p.id WHERE p.category <> 'Tools';
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`category` AS `category` FROM `shop`.`products` AS `p`;
fragment __fragment_1 lake: SELECT "i"."product_id" AS "product_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "p"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "p" JOIN "__fragment_1" AS "i" ON "i"."product_id" = "p"."id" WHERE "p"."category" <> 'Tools';
not pushed: filter "p"."category" <> 'Tools' on my.shop.products: text comparison in this source follows its collation (case/accent-insensitive)
join: __fragment_1.product_id = __fragment_0.id either way
local filter: __fragment_0 p: "p"."category" <> 'Tools'
dynamic filter: __fragment_0.id -> __fragment_1.product_id

# title: SQLite stores dates as text: a date comparison stays
SELECT s.city, i.qty FROM shop.main.stores AS s JOIN lake.main.items AS i ON i.store_id = s.id WHERE s.opened > DATE '2020-01-01';
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city", "s"."opened" AS "opened" FROM "stores" AS "s";
fragment __fragment_1 lake: SELECT "i"."store_id" AS "store_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "s"."city" AS "city", "i"."qty" AS "qty" FROM "__fragment_0" AS "s" JOIN "__fragment_1" AS "i" ON "i"."store_id" = "s"."id" WHERE "s"."opened" > CAST('2020-01-01' AS DATE);
not pushed: filter "s"."opened" > CAST('2020-01-01' AS DATE) on shop.main.stores: dates and timestamps are stored as text in this source
join: __fragment_1.store_id = __fragment_0.id either way
local filter: __fragment_0 s: "s"."opened" > CAST('2020-01-01' AS DATE)
dynamic filter: __fragment_0.id -> __fragment_1.store_id

# title: SQLite's LIKE ignores case
SELECT s.city, i.qty FROM shop.main.stores AS s JOIN lake.main.items AS i ON i.store_id = s.id WHERE s.city LIKE 'Ber%';
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
fragment __fragment_1 lake: SELECT "i"."store_id" AS "store_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "s"."city" AS "city", "i"."qty" AS "qty" FROM "__fragment_0" AS "s" JOIN "__fragment_1" AS "i" ON "i"."store_id" = "s"."id" WHERE "s"."city" LIKE 'Ber%';
not pushed: filter "s"."city" LIKE 'Ber%' on shop.main.stores: LIKE ignores case in this source's dialect
join: __fragment_1.store_id = __fragment_0.id either way
local filter: __fragment_0 s: "s"."city" LIKE 'Ber%'
dynamic filter: __fragment_0.id -> __fragment_1.store_id

# title: constant date arithmetic is folded before it is pushed
SELECT o.id, e.kind FROM pg.public.orders AS o JOIN lake.main.events AS e ON e.customer_id = o.customer_id WHERE o.ordered_at <= DATE '1998-12-01' - INTERVAL '90' DAY;
fragment __fragment_0 pg: SELECT "o"."id" AS "id", "o"."customer_id" AS "customer_id" FROM "public"."orders" AS "o" WHERE "o"."ordered_at" <= (CAST('1998-09-02' AS DATE));
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "o"."id" AS "id", "e"."kind" AS "kind" FROM (SELECT "o"."customer_id" AS "o.customer_id", "o"."id" AS "id" FROM "__fragment_0" AS "o") AS "o" JOIN (SELECT "e"."customer_id" AS "e.customer_id", "e"."kind" AS "kind" FROM "__fragment_1" AS "e") AS "e" ON "e"."e.customer_id" = "o"."o.customer_id";
join: __fragment_1.customer_id = __fragment_0.customer_id either way

# title: an OR across tables implies a wider filter per table
SELECT c.name, e.kind FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id WHERE (c.tier = 1 AND e.kind = 'a') OR (c.tier = 2 AND e.kind = 'b');
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."tier" AS "tier" FROM "public"."customers" AS "c" WHERE "c"."tier" = 1 OR "c"."tier" = 2;
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e" WHERE "e"."kind" = 'a' OR "e"."kind" = 'b';
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id" WHERE ("c"."tier" = 1 AND "e"."kind" = 'a') OR ("c"."tier" = 2 AND "e"."kind" = 'b');
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

# title: a column read as text is never compared in its source
SELECT d.id, e.kind FROM pg.public.docs AS d JOIN lake.main.events AS e ON e.id = d.id WHERE d.body = 'x';
fragment __fragment_0 pg: SELECT "d"."id" AS "id", CAST("d"."body" AS TEXT) AS "body" FROM "public"."docs" AS "d";
fragment __fragment_1 lake: SELECT "e"."id" AS "id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "d"."d.id" AS "id", "e"."kind" AS "kind" FROM (SELECT "d"."body" AS "body", "d"."id" AS "d.id" FROM "__fragment_0" AS "d") AS "d" JOIN (SELECT "e"."id" AS "e.id", "e"."kind" AS "kind" FROM "__fragment_1" AS "e") AS "e" ON "e"."e.id" = "d"."d.id" WHERE "d"."body" = 'x';
not pushed: filter "d"."body" = 'x' on pg.public.docs: column "d"."body" is read as text (its type has no exact Arrow reading in the source)
join: __fragment_1.id = __fragment_0.id either way
local filter: __fragment_0 d: "d"."body" = 'x'
dynamic filter: __fragment_0.id -> __fragment_1.id

# title: filters on both sides of a join
SELECT c.name, e.kind FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id WHERE c.tier = 3 AND e.kind = 'x';
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."tier" = 3;
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e" WHERE "e"."kind" = 'x';
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

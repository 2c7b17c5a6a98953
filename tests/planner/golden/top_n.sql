# title: LIMIT with OFFSET on a single table is pushed as LIMIT + OFFSET
SELECT s.city FROM shop.main.stores AS s LIMIT 10 OFFSET 5;
fragment __fragment_0 shop: SELECT "s"."city" AS "city" FROM "stores" AS "s" LIMIT 15;
residual: SELECT "s"."city" AS "city" FROM "__fragment_0" AS "s" LIMIT 10 OFFSET 5;

# title: ORDER BY + LIMIT over the table's own columns, NULL ordering explicit
SELECT s.id, s.city FROM shop.main.stores AS s WHERE s.id > 3 ORDER BY s.id DESC LIMIT 4;
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s" WHERE "s"."id" > 3 ORDER BY "s"."id" DESC NULLS FIRST LIMIT 4;
residual: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "__fragment_0" AS "s" ORDER BY "s"."id" DESC LIMIT 4;

# title: ORDER BY an output alias of a column
SELECT s.id AS k FROM shop.main.stores AS s ORDER BY k LIMIT 2;
fragment __fragment_0 shop: SELECT "s"."id" AS "id" FROM "stores" AS "s" ORDER BY "s"."id" NULLS LAST LIMIT 2;
residual: SELECT "s"."id" AS "k" FROM "__fragment_0" AS "s" ORDER BY "k" LIMIT 2;

# title: a filter that stays in DataFusion blocks the LIMIT
SELECT s.city FROM shop.main.stores AS s WHERE s.city LIKE 'a%' LIMIT 3;
fragment __fragment_0 shop: SELECT "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT "s"."city" AS "city" FROM "__fragment_0" AS "s" WHERE "s"."city" LIKE 'a%' LIMIT 3;
not pushed: filter "s"."city" LIKE 'a%' on shop.main.stores: LIKE ignores case in this source's dialect
not pushed: LIMIT on shop.main.stores: the query has a filter that stays in DataFusion
local filter: __fragment_0 s: "s"."city" LIKE 'a%'

# title: text ordering in PostgreSQL follows its collation: the top-N stays
SELECT r.currency FROM cached.public.rates AS r ORDER BY r.currency LIMIT 3;
fragment __fragment_0 cached: SELECT "r"."currency" AS "currency" FROM "public"."rates" AS "r";
residual: SELECT "r"."currency" AS "currency" FROM "__fragment_0" AS "r" ORDER BY "r"."currency" LIMIT 3;
not pushed: LIMIT on cached.public.rates: the query has ORDER BY that cannot be pushed (text ordering follows the source's collation, not byte order)

# title: a LIMIT over a join applies to the join's result
SELECT c.name, e.kind FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id LIMIT 5;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id" LIMIT 5;
not pushed: LIMIT on pg.public.customers below the join: the join does not match lake.main.events's primary key (id) column for column
join: __fragment_1.customer_id = __fragment_0.id either way

# title: DISTINCT blocks the LIMIT
SELECT DISTINCT s.city FROM shop.main.stores AS s LIMIT 5;
fragment __fragment_0 shop: SELECT "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT DISTINCT "s"."city" AS "city" FROM "__fragment_0" AS "s" LIMIT 5;
not pushed: LIMIT on shop.main.stores: the query has DISTINCT

# title: top-N below LEFT JOINs on the joined tables' primary keys: exact, pushed into the FROM table
SELECT i.order_id, i.price, c.name, s.city FROM lake.main.items AS i LEFT JOIN pg.public.customers AS c ON i.order_id = c.id LEFT JOIN shop.main.stores AS s ON s.id = i.store_id ORDER BY i.price DESC LIMIT 10;
fragment __fragment_0 lake: SELECT "i"."order_id" AS "order_id", "i"."store_id" AS "store_id", "i"."price" AS "price" FROM "items" AS "i" ORDER BY "i"."price" DESC LIMIT 10;
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_2 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT "i"."order_id" AS "order_id", "i"."price" AS "price", "c"."name" AS "name", "s"."city" AS "city" FROM "__fragment_0" AS "i" LEFT JOIN (SELECT "c"."id" AS "c.id", "c"."name" AS "name" FROM "__fragment_1" AS "c") AS "c" ON "i"."order_id" = "c"."c.id" LEFT JOIN (SELECT "s"."city" AS "city", "s"."id" AS "s.id" FROM "__fragment_2" AS "s") AS "s" ON "s"."s.id" = "i"."store_id" ORDER BY "i"."price" DESC LIMIT 10;

# title: top-N below a LEFT JOIN chain, with OFFSET and a filter on the FROM table
SELECT i.order_id, i.price, p.name, s.city FROM lake.main.items AS i LEFT JOIN my.shop.products AS p ON i.product_id = p.id LEFT JOIN shop.main.stores AS s ON s.id = i.store_id WHERE i.qty > 2 ORDER BY i.price DESC, i.order_id LIMIT 10 OFFSET 5;
fragment __fragment_0 lake: SELECT "i"."order_id" AS "order_id", "i"."product_id" AS "product_id", "i"."store_id" AS "store_id", "i"."price" AS "price" FROM "items" AS "i" WHERE "i"."qty" > 2 ORDER BY "i"."price" DESC, "i"."order_id" LIMIT 15;
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name` FROM `shop`.`products` AS `p`;
fragment __fragment_2 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT "i"."order_id" AS "order_id", "i"."price" AS "price", "p"."name" AS "name", "s"."city" AS "city" FROM "__fragment_0" AS "i" LEFT JOIN (SELECT "p"."id" AS "p.id", "p"."name" AS "name" FROM "__fragment_1" AS "p") AS "p" ON "i"."product_id" = "p"."p.id" LEFT JOIN (SELECT "s"."city" AS "city", "s"."id" AS "s.id" FROM "__fragment_2" AS "s") AS "s" ON "s"."s.id" = "i"."store_id" ORDER BY "i"."price" DESC, "i"."order_id" LIMIT 10 OFFSET 5;

# title: top-N below an inner join on the joined table's primary key: pushed, with a fallback plan
SELECT o.id, o.amount, p.name FROM pg.public.orders AS o JOIN my.shop.products AS p ON p.id = o.customer_id ORDER BY o.amount DESC LIMIT 20;
fragment __fragment_0 pg: SELECT "o"."id" AS "id", "o"."customer_id" AS "customer_id", "o"."amount" AS "amount" FROM "public"."orders" AS "o" ORDER BY "o"."amount" DESC LIMIT 20;
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name` FROM `shop`.`products` AS `p`;
residual: SELECT "o"."o.id" AS "id", "o"."amount" AS "amount", "p"."name" AS "name" FROM (SELECT "o"."amount" AS "amount", "o"."customer_id" AS "customer_id", "o"."id" AS "o.id" FROM "__fragment_0" AS "o") AS "o" JOIN (SELECT "p"."id" AS "p.id", "p"."name" AS "name" FROM "__fragment_1" AS "p") AS "p" ON "p"."p.id" = "o"."customer_id" ORDER BY "o"."amount" DESC LIMIT 20;
join: __fragment_1.id = __fragment_0.customer_id either way
dynamic filter: __fragment_0.customer_id -> __fragment_1.id

# title: a WHERE on the LEFT JOIN's null-supplying table that keeps null-extended rows stays in DataFusion: no top-N below the join
SELECT i.order_id, p.name FROM lake.main.items AS i LEFT JOIN my.shop.products AS p ON i.product_id = p.id WHERE COALESCE(p.category, 'x') = 'x' ORDER BY i.order_id LIMIT 10;
fragment __fragment_0 lake: SELECT "i"."order_id" AS "order_id", "i"."product_id" AS "product_id" FROM "items" AS "i";
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`category` AS `category` FROM `shop`.`products` AS `p`;
residual: SELECT "i"."order_id" AS "order_id", "p"."name" AS "name" FROM "__fragment_0" AS "i" LEFT JOIN "__fragment_1" AS "p" ON "i"."product_id" = "p"."id" WHERE COALESCE("p"."category", 'x') = 'x' ORDER BY "i"."order_id" LIMIT 10;
not pushed: LIMIT on lake.main.items below the join: the query has a filter that stays in DataFusion

# title: a join on a column that is not the joined table's key may match several rows: no top-N below it
SELECT i.order_id, s.name FROM lake.main.items AS i LEFT JOIN my.shop.suppliers AS s ON i.store_id = s.nation_id ORDER BY i.order_id LIMIT 10;
fragment __fragment_0 lake: SELECT "i"."order_id" AS "order_id", "i"."store_id" AS "store_id" FROM "items" AS "i";
fragment __fragment_1 my: SELECT `s`.`name` AS `name`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
residual: SELECT "i"."order_id" AS "order_id", "s"."name" AS "name" FROM "__fragment_0" AS "i" LEFT JOIN "__fragment_1" AS "s" ON "i"."store_id" = "s"."nation_id" ORDER BY "i"."order_id" LIMIT 10;
not pushed: LIMIT on lake.main.items below the join: the join does not match my.shop.suppliers's primary key (id) column for column

# title: a residual that only passes the one fragment through is dropped
SELECT s.id, s.city FROM shop.main.stores AS s;
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
residual: none

# title: a residual that renames is kept
SELECT s.id AS store, s.city FROM shop.main.stores AS s;
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT "s"."id" AS "store", "s"."city" AS "city" FROM "__fragment_0" AS "s";

# title: window functions stay in DataFusion
SELECT c.name, row_number() OVER (PARTITION BY c.region ORDER BY c.id) AS r FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."region" AS "region" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", ROW_NUMBER() OVER (PARTITION BY "c"."region" ORDER BY "c"."id") AS "r" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way

# title: set operations across sources
SELECT name FROM pg.public.customers UNION ALL SELECT name FROM my.shop.products;
fragment __fragment_0 my: SELECT `products`.`name` AS `name` FROM `shop`.`products` AS `products`;
fragment __fragment_1 pg: SELECT "customers"."name" AS "name" FROM "public"."customers" AS "customers";
residual: SELECT * FROM "__fragment_1" UNION ALL SELECT * FROM "__fragment_0";

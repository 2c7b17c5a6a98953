# title: a NOT EXISTS sub-query's table reads distinct keys from PostgreSQL (5 statuses in 1,000,000 rows)
SELECT p.id FROM my.shop.products AS p WHERE NOT EXISTS (SELECT 1 FROM pg.public.orders AS o WHERE o.status = p.category);
fragment __fragment_0 pg: SELECT DISTINCT "o"."status" AS "status" FROM "public"."orders" AS "o";
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`category` AS `category` FROM `shop`.`products` AS `p`;
residual: SELECT "p"."id" AS "id" FROM "__fragment_1" AS "p" WHERE NOT EXISTS(SELECT 1 AS "1" FROM "__fragment_0" AS "o" WHERE "o"."status" = "p"."category");
join: __fragment_1.category = __fragment_0.status directed
dynamic filter: __fragment_1.category -> __fragment_0.status

# title: an IN sub-query correlated on a duplicate-heavy column, its filter pushed below the DISTINCT
SELECT p.id FROM my.shop.products AS p WHERE p.supplier_id IN (SELECT o.qty FROM pg.public.orders AS o WHERE o.status = p.name AND o.amount > 10);
fragment __fragment_0 pg: SELECT DISTINCT "o"."qty" AS "qty", "o"."status" AS "status" FROM "public"."orders" AS "o" WHERE "o"."amount" > 10;
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`name` AS `name`, `p`.`supplier_id` AS `supplier_id` FROM `shop`.`products` AS `p`;
residual: SELECT "p"."id" AS "id" FROM "__fragment_1" AS "p" WHERE "p"."supplier_id" IN (SELECT "o"."qty" AS "qty" FROM "__fragment_0" AS "o" WHERE "o"."status" = "p"."name");
join: __fragment_1.name = __fragment_0.status directed
join: __fragment_0.qty = __fragment_1.supplier_id directed
dynamic filter: __fragment_0.qty -> __fragment_1.supplier_id

# title: a unique key (no statistics of its distinct values): read as it is
SELECT p.id FROM my.shop.products AS p WHERE EXISTS (SELECT 1 FROM pg.public.orders AS o WHERE o.customer_id = p.id);
fragment __fragment_0 pg: SELECT "o"."customer_id" AS "customer_id" FROM "public"."orders" AS "o";
fragment __fragment_1 my: SELECT `p`.`id` AS `id` FROM `shop`.`products` AS `p`;
residual: SELECT "p"."id" AS "id" FROM "__fragment_1" AS "p" WHERE EXISTS(SELECT 1 AS "1" FROM "__fragment_0" AS "o" WHERE "o"."customer_id" = "p"."id");
join: __fragment_1.id = __fragment_0.customer_id directed
dynamic filter: __fragment_1.id -> __fragment_0.customer_id

# title: a float column is never deduplicated in the source (-0.0 and 0.0 are one value there)
SELECT p.id FROM my.shop.products AS p WHERE EXISTS (SELECT 1 FROM pg.public.orders AS o WHERE o.status = p.category AND o.score > p.price);
fragment __fragment_0 pg: SELECT "o"."status" AS "status", "o"."score" AS "score" FROM "public"."orders" AS "o";
fragment __fragment_1 my: SELECT `p`.`id` AS `id`, `p`.`category` AS `category`, `p`.`price` AS `price` FROM `shop`.`products` AS `p`;
residual: SELECT "p"."id" AS "id" FROM "__fragment_1" AS "p" WHERE EXISTS(SELECT 1 AS "1" FROM "__fragment_0" AS "o" WHERE "o"."status" = "p"."category" AND "o"."score" > "p"."price");
join: __fragment_1.category = __fragment_0.status directed
dynamic filter: __fragment_1.category -> __fragment_0.status

# title: a join reads every row
SELECT p.id, o.qty FROM my.shop.products AS p JOIN pg.public.orders AS o ON o.status = p.category;
fragment __fragment_0 my: SELECT `p`.`id` AS `id`, `p`.`category` AS `category` FROM `shop`.`products` AS `p`;
fragment __fragment_1 pg: SELECT "o"."qty" AS "qty", "o"."status" AS "status" FROM "public"."orders" AS "o";
residual: SELECT "p"."id" AS "id", "o"."qty" AS "qty" FROM "__fragment_0" AS "p" JOIN "__fragment_1" AS "o" ON "o"."status" = "p"."category";
join: __fragment_1.status = __fragment_0.category either way

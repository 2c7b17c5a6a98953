# title: a restricted small side builds a dynamic filter for a large probe
SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i ON i.order_id = c.id WHERE c.region = 'north' AND c.tier = 2;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."region" = 'north' AND "c"."tier" = 2;
fragment __fragment_1 lake: SELECT "i"."order_id" AS "order_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "c"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "i" ON "i"."order_id" = "c"."id";
join: __fragment_1.order_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.order_id

# title: an unrestricted build restricts nothing
SELECT c.name, i.qty FROM pg.public.customers AS c JOIN lake.main.items AS i ON i.order_id = c.id;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "i"."order_id" AS "order_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "c"."name" AS "name", "i"."qty" AS "qty" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "i" ON "i"."order_id" = "c"."id";
join: __fragment_1.order_id = __fragment_0.id either way

# title: a probe with a cache rule takes no dynamic filter
SELECT e.kind, r.rate FROM lake.main.events AS e JOIN cached.public.rates AS r ON r.day = e.at WHERE e.kind = 'x';
fragment __fragment_0 lake: SELECT "e"."kind" AS "kind", "e"."at" AS "at" FROM "events" AS "e" WHERE "e"."kind" = 'x';
fragment __fragment_1 cached: SELECT "r"."day" AS "day", "r"."rate" AS "rate" FROM "public"."rates" AS "r";
residual: SELECT "e"."kind" AS "kind", "r"."rate" AS "rate" FROM "__fragment_0" AS "e" JOIN "__fragment_1" AS "r" ON "r"."day" = "e"."at";
join: __fragment_1.day = __fragment_0.at either way

# title: an IN sub-query's fragment restricts the outer table
SELECT e.kind FROM lake.main.events AS e WHERE e.customer_id IN (SELECT id FROM pg.public.customers WHERE region = 'south');
fragment __fragment_0 pg: SELECT "customers"."id" AS "id" FROM "public"."customers" AS "customers" WHERE "customers"."region" = 'south';
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "e"."kind" AS "kind" FROM "__fragment_1" AS "e" WHERE "e"."customer_id" IN (SELECT * FROM "__fragment_0");
join: __fragment_0.id = __fragment_1.customer_id directed
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

# title: a correlation restricts the inner side only
SELECT c.name FROM pg.public.customers AS c WHERE c.tier = 1 AND EXISTS (SELECT 1 FROM lake.main.events AS e WHERE e.customer_id = c.id);
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."tier" = 1;
residual: SELECT "c"."name" AS "name" FROM "__fragment_1" AS "c" WHERE EXISTS(SELECT 1 AS "1" FROM "__fragment_0" AS "e" WHERE "e"."customer_id" = "c"."id");
join: __fragment_1.id = __fragment_0.customer_id directed
dynamic filter: __fragment_1.id -> __fragment_0.customer_id

# title: chains: a probe restricted by one build builds for the next
SELECT n.name, c.city, i.qty FROM pg.public.nation AS n JOIN my.shop.suppliers AS s ON s.nation_id = n.id JOIN lake.main.items AS i ON i.product_id = s.id JOIN shop.main.stores AS c ON c.id = i.store_id WHERE n.name = 'FRANCE';
fragment __fragment_0 pg: SELECT "n"."id" AS "id", "n"."name" AS "name" FROM "public"."nation" AS "n" WHERE "n"."name" = 'FRANCE';
fragment __fragment_1 my: SELECT `s`.`id` AS `id`, `s`.`nation_id` AS `nation_id` FROM `shop`.`suppliers` AS `s`;
fragment __fragment_2 lake: SELECT "i"."product_id" AS "product_id", "i"."store_id" AS "store_id", "i"."qty" AS "qty" FROM "items" AS "i";
fragment __fragment_3 shop: SELECT "c"."id" AS "id", "c"."city" AS "city" FROM "stores" AS "c";
residual: SELECT "n"."name" AS "name", "c"."city" AS "city", "i"."qty" AS "qty" FROM (SELECT "n"."id" AS "n.id", "n"."name" AS "name" FROM "__fragment_0" AS "n") AS "n" JOIN (SELECT "s"."id" AS "s.id", "s"."nation_id" AS "nation_id" FROM "__fragment_1" AS "s") AS "s" ON "s"."nation_id" = "n"."n.id" JOIN "__fragment_2" AS "i" ON "i"."product_id" = "s"."s.id" JOIN (SELECT "c"."city" AS "city", "c"."id" AS "c.id" FROM "__fragment_3" AS "c") AS "c" ON "c"."c.id" = "i"."store_id";
join: __fragment_1.nation_id = __fragment_0.id either way
join: __fragment_2.product_id = __fragment_1.id either way
join: __fragment_3.id = __fragment_2.store_id either way
dynamic filter: __fragment_0.id -> __fragment_1.nation_id
dynamic filter: __fragment_1.id -> __fragment_2.product_id

# title: a local filter narrows a build's keys
SELECT s.city, i.qty FROM shop.main.stores AS s JOIN lake.main.items AS i ON i.store_id = s.id WHERE s.city LIKE 'B%';
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
fragment __fragment_1 lake: SELECT "i"."store_id" AS "store_id", "i"."qty" AS "qty" FROM "items" AS "i";
residual: SELECT "s"."city" AS "city", "i"."qty" AS "qty" FROM "__fragment_0" AS "s" JOIN "__fragment_1" AS "i" ON "i"."store_id" = "s"."id" WHERE "s"."city" LIKE 'B%';
not pushed: filter "s"."city" LIKE 'B%' on shop.main.stores: LIKE ignores case in this source's dialect
join: __fragment_1.store_id = __fragment_0.id either way
local filter: __fragment_0 s: "s"."city" LIKE 'B%'
dynamic filter: __fragment_0.id -> __fragment_1.store_id

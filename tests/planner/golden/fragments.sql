# title: a table fragment: projection, filter, order and limit
SELECT s.id, s.city FROM shop.main.stores AS s WHERE s.id < 40 ORDER BY s.id LIMIT 3;
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s" WHERE "s"."id" < 40 ORDER BY "s"."id" NULLS LAST LIMIT 3;
residual: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "__fragment_0" AS "s" ORDER BY "s"."id" LIMIT 3;

# title: a join group's fragment reads its columns as alias.column, joined by a WHERE in the source
SELECT o.qty, c.region, e.kind FROM pg.public.orders AS o JOIN pg.public.customers AS c ON c.id = o.customer_id AND c.tier > o.qty JOIN lake.main.events AS e ON e.customer_id = c.id;
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "o"."qty" AS "o.qty", "c"."id" AS "c.id", "c"."region" AS "c.region" FROM "public"."orders" AS "o" CROSS JOIN "public"."customers" AS "c" WHERE "c"."id" = "o"."customer_id" AND "c"."tier" > "o"."qty";
residual: SELECT "__g1"."o.qty" AS "qty", "__g1"."c.region" AS "region", "e"."kind" AS "kind" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "e" ON "e"."customer_id" = "__g1"."c.id";
join: __fragment_0.customer_id = __fragment_1.c.id either way

# title: a join group whose second member joins a third source keeps that condition in the residual
SELECT c.name, e.kind FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id JOIN pg.public.orders AS o ON o.customer_id = c.id AND o.id = e.id;
fragment __fragment_0 lake: SELECT "e"."id" AS "id", "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "c.id", "c"."name" AS "c.name", "o"."id" AS "o.id" FROM "public"."customers" AS "c" CROSS JOIN "public"."orders" AS "o" WHERE "o"."customer_id" = "c"."id";
residual: SELECT "__g1"."c.name" AS "name", "e"."kind" AS "kind" FROM "__fragment_1" AS "__g1" JOIN "__fragment_0" AS "e" ON "e"."customer_id" = "__g1"."c.id" WHERE "__g1"."o.id" = "e"."id";
join: __fragment_1.o.id = __fragment_0.id either way
join: __fragment_0.customer_id = __fragment_1.c.id either way

# title: a partial-aggregate fragment groups by the columns the residual uses
SELECT st.city, count(i.qty) FROM shop.main.stores AS st JOIN lake.main.items AS i ON i.store_id = st.id WHERE i.price > 10 GROUP BY st.city;
fragment __fragment_0 shop: SELECT "st"."id" AS "id", "st"."city" AS "city" FROM "stores" AS "st";
fragment __fragment_1 lake: SELECT "i"."store_id" AS "store_id", COUNT("i"."qty") AS "__partial_0" FROM "items" AS "i" WHERE "i"."price" > 10 GROUP BY "i"."store_id";
residual: SELECT "st"."city" AS "city", COALESCE(SUM("i"."__partial_0"), 0) AS "_col_1" FROM "__fragment_0" AS "st" JOIN "__fragment_1" AS "i" ON "i"."store_id" = "st"."id" GROUP BY "st"."city";
join: __fragment_1.store_id = __fragment_0.id either way

# title: a join group with a filter on each member
SELECT c.name, o.amount, e.kind FROM pg.public.customers AS c, pg.public.orders AS o, lake.main.events AS e WHERE o.customer_id = c.id AND e.customer_id = c.id AND c.active AND o.status = 'open';
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "c.id", "c"."name" AS "c.name", "o"."amount" AS "o.amount" FROM "public"."customers" AS "c" CROSS JOIN "public"."orders" AS "o" WHERE "o"."customer_id" = "c"."id" AND "c"."active" AND "o"."status" = 'open';
residual: SELECT "__g1"."c.name" AS "name", "__g1"."o.amount" AS "amount", "e"."kind" AS "kind" FROM "__fragment_1" AS "__g1", "__fragment_0" AS "e" WHERE "e"."customer_id" = "__g1"."c.id";
join: __fragment_0.customer_id = __fragment_1.c.id either way

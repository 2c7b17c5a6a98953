# title: aggregates of one table are computed partially in its source below the join
SELECT c.region, sum(o.qty) AS total, count(*) AS n FROM pg.public.customers AS c JOIN lake.main.items AS o ON o.order_id = c.id GROUP BY c.region;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."region" AS "region" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "o"."order_id" AS "order_id", SUM("o"."qty") AS "__partial_0", COUNT(*) AS "__partial_1" FROM "items" AS "o" GROUP BY "o"."order_id";
residual: SELECT "c"."region" AS "region", CAST(SUM("o"."__partial_0") AS BIGINT) AS "total", COALESCE(SUM("o"."__partial_1"), 0) AS "n" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "o" ON "o"."order_id" = "c"."id" GROUP BY "c"."region";
join: __fragment_1.order_id = __fragment_0.id either way

# title: grouping by the table's key would hardly reduce the rows
SELECT e.id, count(c.id) FROM lake.main.events AS e JOIN pg.public.customers AS c ON c.id = e.customer_id GROUP BY e.id;
fragment __fragment_0 lake: SELECT "e"."id" AS "id", "e"."customer_id" AS "customer_id" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "c"."id" AS "id" FROM "public"."customers" AS "c";
residual: SELECT "e"."e.id" AS "id", COUNT("c"."c.id") AS "_col_1" FROM (SELECT "e"."customer_id" AS "customer_id", "e"."id" AS "e.id" FROM "__fragment_0" AS "e") AS "e" JOIN (SELECT "c"."id" AS "c.id" FROM "__fragment_1" AS "c") AS "c" ON "c"."c.id" = "e"."customer_id" GROUP BY "e"."e.id";
not pushed: partial aggregation of pg.public.customers: grouping by id would hardly reduce the rows
join: __fragment_1.id = __fragment_0.customer_id either way

# title: an unnamed aggregate output keeps DataFusion's name
SELECT s.city, max(i.price), min(i.qty) FROM shop.main.stores AS s JOIN lake.main.items AS i ON i.store_id = s.id GROUP BY s.city;
fragment __fragment_0 shop: SELECT "s"."id" AS "id", "s"."city" AS "city" FROM "stores" AS "s";
fragment __fragment_1 lake: SELECT "i"."store_id" AS "store_id", MAX("i"."price") AS "__partial_0", MIN("i"."qty") AS "__partial_1" FROM "items" AS "i" GROUP BY "i"."store_id";
residual: SELECT "s"."city" AS "city", MAX("i"."__partial_0") AS "_col_1", MIN("i"."__partial_1") AS "_col_2" FROM "__fragment_0" AS "s" JOIN "__fragment_1" AS "i" ON "i"."store_id" = "s"."id" GROUP BY "s"."city";
join: __fragment_1.store_id = __fragment_0.id either way

# title: COUNT(DISTINCT ...) is not split
SELECT c.region, count(DISTINCT o.product_id) FROM pg.public.customers AS c JOIN lake.main.items AS o ON o.order_id = c.id GROUP BY c.region;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."region" AS "region" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "o"."order_id" AS "order_id", "o"."product_id" AS "product_id" FROM "items" AS "o";
residual: SELECT "c"."region" AS "region", COUNT(DISTINCT "o"."product_id") AS "_col_1" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "o" ON "o"."order_id" = "c"."id" GROUP BY "c"."region";
join: __fragment_1.order_id = __fragment_0.id either way

# title: a float SUM is not pushed to PostgreSQL
SELECT e.kind, sum(o.score) FROM lake.main.events AS e JOIN pg.public.orders AS o ON o.customer_id = e.customer_id GROUP BY e.kind;
fragment __fragment_0 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
fragment __fragment_1 pg: SELECT "o"."customer_id" AS "customer_id", "o"."score" AS "score" FROM "public"."orders" AS "o";
residual: SELECT "e"."kind" AS "kind", SUM("o"."score") AS "_col_1" FROM (SELECT "e"."customer_id" AS "e.customer_id", "e"."kind" AS "kind" FROM "__fragment_0" AS "e") AS "e" JOIN (SELECT "o"."customer_id" AS "o.customer_id", "o"."score" AS "score" FROM "__fragment_1" AS "o") AS "o" ON "o"."o.customer_id" = "e"."e.customer_id" GROUP BY "e"."kind";
not pushed: partial aggregate SUM("o"."score"): floating-point sums depend on summation order
join: __fragment_1.customer_id = __fragment_0.customer_id either way

# title: no partial aggregation without grouping keys: over no rows it would still return one, and the join would keep it
SELECT MAX(i.price) AS m, c.region FROM lake.main.items AS i CROSS JOIN pg.public.customers AS c WHERE i.qty > 1000 GROUP BY c.region;
fragment __fragment_0 lake: SELECT "i"."price" AS "price" FROM "items" AS "i" WHERE "i"."qty" > 1000;
fragment __fragment_1 pg: SELECT "c"."region" AS "region" FROM "public"."customers" AS "c";
residual: SELECT MAX("i"."price") AS "m", "c"."region" AS "region" FROM "__fragment_0" AS "i" CROSS JOIN "__fragment_1" AS "c" GROUP BY "c"."region";
not pushed: partial aggregation of lake.main.items: without grouping keys it returns a row even when no row is kept

# title: statistics say grouping by the join key keeps 90% of the rows: not pushed
SELECT e.kind, SUM(o.amount) AS s FROM pg.public.orders AS o JOIN lake.main.events AS e ON e.at = o.ordered_at GROUP BY e.kind;
fragment __fragment_0 pg: SELECT "o"."amount" AS "amount", "o"."ordered_at" AS "ordered_at" FROM "public"."orders" AS "o";
fragment __fragment_1 lake: SELECT "e"."kind" AS "kind", "e"."at" AS "at" FROM "events" AS "e";
residual: SELECT "e"."kind" AS "kind", SUM("o"."amount") AS "s" FROM "__fragment_0" AS "o" JOIN "__fragment_1" AS "e" ON "e"."at" = "o"."ordered_at" GROUP BY "e"."kind";
not pushed: partial aggregation of pg.public.orders: grouping by ordered_at keeps about 90% of the rows (pushed at most 10%)
join: __fragment_1.at = __fragment_0.ordered_at either way

# title: statistics say grouping by the join key keeps 50 groups of 1,000,000 rows: pushed
SELECT e.kind, SUM(o.amount) AS s FROM pg.public.orders AS o JOIN lake.main.events AS e ON e.id = o.qty GROUP BY e.kind;
fragment __fragment_0 pg: SELECT "o"."qty" AS "qty", SUM("o"."amount") AS "__partial_0" FROM "public"."orders" AS "o" GROUP BY "o"."qty";
fragment __fragment_1 lake: SELECT "e"."id" AS "id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "e"."kind" AS "kind", CAST(SUM("o"."__partial_0") AS DECIMAL(22, 2)) AS "s" FROM "__fragment_0" AS "o" JOIN "__fragment_1" AS "e" ON "e"."id" = "o"."qty" GROUP BY "e"."kind";
join: __fragment_1.id = __fragment_0.qty either way

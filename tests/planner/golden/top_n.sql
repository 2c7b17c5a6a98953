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
join: __fragment_1.customer_id = __fragment_0.id either way

# title: DISTINCT blocks the LIMIT
SELECT DISTINCT s.city FROM shop.main.stores AS s LIMIT 5;
fragment __fragment_0 shop: SELECT "s"."city" AS "city" FROM "stores" AS "s";
residual: SELECT DISTINCT "s"."city" AS "city" FROM "__fragment_0" AS "s" LIMIT 5;
not pushed: LIMIT on shop.main.stores: the query has DISTINCT

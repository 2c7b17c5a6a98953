# title: one source that runs everything takes the whole query
SELECT c.region, count(*) AS n FROM pg.public.customers AS c JOIN pg.public.orders AS o ON o.customer_id = c.id WHERE o.status = 'open' GROUP BY c.region ORDER BY n DESC LIMIT 5;
fragment __fragment_0 pg: SELECT "c"."region" AS "region", COUNT(*) AS "n" FROM "public"."customers" AS "c" JOIN "public"."orders" AS "o" ON "o"."customer_id" = "c"."id" WHERE "o"."status" = 'open' GROUP BY "c"."region" ORDER BY "n" DESC LIMIT 5;
residual: none

# title: a file source takes a whole query with an average and a division
SELECT store_id, avg(price) AS p, sum(qty) / count(*) AS q FROM lake.main.items GROUP BY store_id;
fragment __fragment_0 lake: SELECT "items"."store_id" AS "store_id", AVG("items"."price") AS "p", SUM("items"."qty") / COUNT(*) AS "q" FROM "items" AS "items" GROUP BY "items"."store_id";
residual: none

# title: an ordinal over a computed output is pushed in parentheses
SELECT c.tier + 1, count(*) FROM pg.public.customers AS c GROUP BY 1 ORDER BY 1;
fragment __fragment_0 pg: SELECT "c"."tier" + 1 AS "_col_0", COUNT(*) AS "_col_1" FROM "public"."customers" AS "c" GROUP BY "c"."tier" + 1 ORDER BY ("c"."tier" + 1);
residual: none

# title: SQLite runs no whole queries: a fragment with the filter, the rest in DataFusion
SELECT city, count(*) FROM shop.main.stores WHERE opened > DATE '2020-01-01' GROUP BY city;
fragment __fragment_0 shop: SELECT "stores"."city" AS "city", "stores"."opened" AS "opened" FROM "stores" AS "stores";
residual: SELECT "stores"."city" AS "city", COUNT(*) AS "_col_1" FROM "__fragment_0" AS "stores" WHERE "stores"."opened" > CAST('2020-01-01' AS DATE) GROUP BY "stores"."city";
not pushed: filter "stores"."opened" > CAST('2020-01-01' AS DATE) on shop.main.stores: dates and timestamps are stored as text in this source
local filter: __fragment_0 stores: "stores"."opened" > CAST('2020-01-01' AS DATE)

# title: a source with a cache rule is read per table, never whole
SELECT r.currency, max(r.rate) FROM cached.public.rates AS r GROUP BY r.currency;
fragment __fragment_0 cached: SELECT "r"."currency" AS "currency", "r"."rate" AS "rate" FROM "public"."rates" AS "r";
residual: SELECT "r"."currency" AS "currency", MAX("r"."rate") AS "_col_1" FROM "__fragment_0" AS "r" GROUP BY "r"."currency";

# title: text ordering in PostgreSQL is pushed with the byte-order collation "C" made explicit
SELECT name FROM pg.public.customers ORDER BY name LIMIT 3;
fragment __fragment_0 pg: SELECT "customers"."name" AS "name" FROM "public"."customers" AS "customers" ORDER BY ("customers"."name") COLLATE "C" LIMIT 3;
residual: none

# title: MIN/MAX and ranges over text in PostgreSQL: COLLATE "C" on the column
SELECT min(name) AS lo, max(name) AS hi FROM pg.public.customers WHERE name > 'b' AND name < 'q';
fragment __fragment_0 pg: SELECT MIN("customers"."name" COLLATE "C") AS "lo", MAX("customers"."name" COLLATE "C") AS "hi" FROM "public"."customers" AS "customers" WHERE "customers"."name" COLLATE "C" > 'b' AND "customers"."name" COLLATE "C" < 'q';
residual: none

# title: SELECT DISTINCT orders by output names only: text ORDER BY stays local
SELECT DISTINCT name FROM pg.public.customers ORDER BY name;
fragment __fragment_0 pg: SELECT "customers"."name" AS "name" FROM "public"."customers" AS "customers";
residual: SELECT DISTINCT "customers"."name" AS "name" FROM "__fragment_0" AS "customers" ORDER BY "name";
not pushed: whole query to pg: text ordering follows the source's collation, not byte order

# title: a correlated scalar sub-query is not pushed whole to PostgreSQL (it runs once per outer row there)
SELECT c.name FROM pg.public.customers c WHERE c.tier = (SELECT max(o.qty) FROM pg.public.orders o WHERE o.customer_id = c.id);
fragment __fragment_0 pg: SELECT "o"."customer_id" AS "customer_id", "o"."qty" AS "qty" FROM "public"."orders" AS "o";
fragment __fragment_1 pg: SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."tier" AS "tier" FROM "public"."customers" AS "c";
residual: SELECT "c"."name" AS "name" FROM "__fragment_1" AS "c" WHERE "c"."tier" = (SELECT MAX("o"."qty") AS "_col_0" FROM "__fragment_0" AS "o" WHERE "o"."customer_id" = "c"."id");
not pushed: whole query to pg: a correlated scalar sub-query runs once per outer row in this source; DataFusion decorrelates it into one grouped join
join: __fragment_1.id = __fragment_0.customer_id directed
dynamic filter: __fragment_1.id -> __fragment_0.customer_id

# title: a correlated EXISTS is pushed whole (PostgreSQL runs it as a semi-join)
SELECT c.name FROM pg.public.customers c WHERE EXISTS (SELECT 1 FROM pg.public.orders o WHERE o.customer_id = c.id);
fragment __fragment_0 pg: SELECT "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE EXISTS(SELECT 1 AS "1" FROM "public"."orders" AS "o" WHERE "o"."customer_id" = "c"."id");
residual: none

# title: a query over no source table
SELECT 1 AS one, 'a' AS letter;
residual: SELECT 1 AS "one", 'a' AS "letter";

# title: a derived table's outputs are typed by DataFusion, so the outer query's ORDER BY over them is pushed too (TPC-H Q13)
SELECT d.n, count(*) AS k FROM (SELECT c.id, count(o.id) AS n FROM pg.public.customers AS c LEFT JOIN pg.public.orders AS o ON o.customer_id = c.id GROUP BY c.id) AS d GROUP BY d.n ORDER BY k DESC, d.n DESC;
fragment __fragment_0 pg: SELECT "d"."n" AS "n", COUNT(*) AS "k" FROM (SELECT "c"."id" AS "id", COUNT("o"."id") AS "n" FROM "public"."customers" AS "c" LEFT JOIN "public"."orders" AS "o" ON "o"."customer_id" = "c"."id" GROUP BY "c"."id") AS "d" GROUP BY "d"."n" ORDER BY "k" DESC, "n" DESC;
residual: none

# title: a derived table's text output ordered in PostgreSQL by byte order
SELECT d.r FROM (SELECT substring(c.region, 1, 2) AS r FROM pg.public.customers AS c) AS d GROUP BY d.r ORDER BY d.r;
fragment __fragment_0 pg: SELECT "d"."r" AS "r" FROM (SELECT SUBSTRING("c"."region" FROM 1 FOR 2) AS "r" FROM "public"."customers" AS "c") AS "d" GROUP BY "d"."r" ORDER BY ("d"."r") COLLATE "C";
residual: none

# title: AVG of a decimal column pushed to PostgreSQL as DataFusion computes it: the scaled sum over the count, truncated at 4 more digits
SELECT o.status, AVG(o.amount) AS a FROM pg.public.orders AS o GROUP BY o.status;
fragment __fragment_0 pg: SELECT "o"."status" AS "status", TRUNC(SUM("o"."amount") * 1.0000000000000000 / NULLIF(COUNT("o"."amount"), 0), 6) AS "a" FROM "public"."orders" AS "o" GROUP BY "o"."status";
residual: none

# title: AVG of a float column stays in DataFusion (summation order changes the last digits)
SELECT o.status, AVG(o.score) AS a FROM pg.public.orders AS o GROUP BY o.status;
fragment __fragment_0 pg: SELECT "o"."status" AS "status", "o"."score" AS "score" FROM "public"."orders" AS "o";
residual: SELECT "o"."status" AS "status", AVG("o"."score") AS "a" FROM "__fragment_0" AS "o" GROUP BY "o"."status";
not pushed: whole query to pg: AVG is not among the source's pushable operations

# title: a comparison with a scalar sub-query is typed by the sub-query's output, not by the text its WHERE filters on (TPC-H Q22)
SELECT c.id FROM pg.public.customers AS c WHERE c.tier > (SELECT AVG(o.amount) FROM pg.public.orders AS o WHERE o.status > 'open');
fragment __fragment_0 pg: SELECT "c"."id" AS "id" FROM "public"."customers" AS "c" WHERE "c"."tier" > (SELECT TRUNC(SUM("o"."amount") * 1.0000000000000000 / NULLIF(COUNT("o"."amount"), 0), 6) AS "_col_0" FROM "public"."orders" AS "o" WHERE "o"."status" COLLATE "C" > 'open');
residual: none

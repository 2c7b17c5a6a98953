# title: a fragment returns only the columns the residual uses
SELECT c.name FROM pg.public.customers AS c JOIN lake.main.events AS e ON e.customer_id = c.id WHERE c.region = 'west';
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."region" = 'west';
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way
dynamic filter: __fragment_0.id -> __fragment_1.customer_id

# title: a count over a table still reads one column
SELECT count(*) FROM pg.public.customers AS c CROSS JOIN lake.main.events AS e;
fragment __fragment_0 pg: SELECT "c"."id" AS "id" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."id" AS "id" FROM "events" AS "e";
residual: SELECT COUNT(*) AS "_col_0" FROM "__fragment_0" AS "c" CROSS JOIN "__fragment_1" AS "e";

# title: a read-as-text column is cast to text in its source
SELECT d.body, e.kind FROM pg.public.docs AS d JOIN lake.main.events AS e ON e.id = d.id;
fragment __fragment_0 pg: SELECT "d"."id" AS "id", CAST("d"."body" AS TEXT) AS "body" FROM "public"."docs" AS "d";
fragment __fragment_1 lake: SELECT "e"."id" AS "id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "d"."body" AS "body", "e"."kind" AS "kind" FROM (SELECT "d"."body" AS "body", "d"."id" AS "d.id" FROM "__fragment_0" AS "d") AS "d" JOIN (SELECT "e"."id" AS "e.id", "e"."kind" AS "kind" FROM "__fragment_1" AS "e") AS "e" ON "e"."e.id" = "d"."d.id";
join: __fragment_1.id = __fragment_0.id either way

# title: a LEFT JOIN whose WHERE rejects its null-extended rows is the inner join it is: the filter goes into the joined table's fragment
SELECT c.name, e.kind FROM pg.public.customers AS c LEFT JOIN lake.main.events AS e ON e.customer_id = c.id WHERE UPPER(e.kind) = 'BUY';
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e" WHERE UPPER("e"."kind") = 'BUY';
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";
join: __fragment_1.customer_id = __fragment_0.id either way

# title: a RIGHT JOIN rejected on its left side by a comparison of two tables
SELECT c.name, e.kind FROM pg.public.customers AS c RIGHT JOIN lake.main.events AS e ON e.customer_id = c.id WHERE c.tier > e.customer_id;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name", "c"."tier" AS "tier" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id" WHERE "c"."tier" > "e"."customer_id";
join: __fragment_1.customer_id = __fragment_0.id either way

# title: a FULL JOIN rejected on one side keeps the other: a LEFT JOIN
SELECT c.name, e.kind FROM pg.public.customers AS c FULL JOIN lake.main.events AS e ON e.customer_id = c.id WHERE c.region = 'north';
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c" WHERE "c"."region" = 'north';
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" LEFT OUTER JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id";

# title: a WHERE true on null-extended rows (COALESCE, IS NULL, an OR with the other side) leaves the outer join as written
SELECT c.name, e.kind FROM pg.public.customers AS c LEFT JOIN lake.main.events AS e ON e.customer_id = c.id WHERE COALESCE(e.kind, 'buy') = 'buy' OR e.customer_id IS NULL;
fragment __fragment_0 pg: SELECT "c"."id" AS "id", "c"."name" AS "name" FROM "public"."customers" AS "c";
fragment __fragment_1 lake: SELECT "e"."customer_id" AS "customer_id", "e"."kind" AS "kind" FROM "events" AS "e";
residual: SELECT "c"."name" AS "name", "e"."kind" AS "kind" FROM "__fragment_0" AS "c" LEFT JOIN "__fragment_1" AS "e" ON "e"."customer_id" = "c"."id" WHERE COALESCE("e"."kind", 'buy') = 'buy' OR "e"."customer_id" IS NULL;
